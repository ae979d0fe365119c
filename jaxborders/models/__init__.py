"""Models: a registry of Flax linen networks, every one taking ``conv_mode`` and ``antialias``.

Each family module registers its names on import (``register_model``); ``get_model(name, **kwargs)`` builds
one and ``list_models('resnet*')`` lists them. Every model follows one contract (``jaxborders.models.common``):
``model.apply(variables, x, train=...)`` returns the output, ``intermediates(model, variables, x)`` the named
maps in network order, ``model.min_input_size()`` the computed smallest input.
"""

from jaxborders.models import bagnet, densenet, hardnet, quadrant_net, resnet, resnet3d, small, vgg  # noqa: F401
from jaxborders.models.common import (AntiAlias, check_conv_mode, intermediate_shapes, intermediates,
                                      min_input_size, parameter_order, parse_antialias)
from jaxborders.models.registry import get_model, list_models, register_model

__all__ = ["get_model", "list_models", "register_model", "AntiAlias", "parse_antialias", "check_conv_mode",
           "intermediates", "intermediate_shapes", "min_input_size", "parameter_order"]
