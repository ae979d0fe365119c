"""Models: a registry of Flax linen networks, every one taking ``conv_mode`` and ``antialias``.

Families register themselves on import; import the family modules here so ``get_model`` sees them all.
"""

import importlib as _importlib

from jaxborders.models.common import AntiAlias, check_conv_mode, parse_antialias
from jaxborders.models.registry import get_model, list_models, register_model

# Each family module registers its names. Families are imported if present so that the package works while
# the zoo grows.
for _family in ("small", "resnet", "resnet3d", "vgg", "densenet", "bagnet", "hardnet", "quadrant_net"):
  try:
    _importlib.import_module(f"jaxborders.models.{_family}")
  except ModuleNotFoundError as _e:
    if _e.name != f"jaxborders.models.{_family}":
      raise

__all__ = ["get_model", "list_models", "register_model", "AntiAlias", "parse_antialias", "check_conv_mode"]
