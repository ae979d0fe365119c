"""Model registry: ``register_model`` names a constructor, ``get_model(name, **kwargs)`` builds it.

Registering a model is enough to get it tested: ``tests/test_models_all.py`` runs every registered name.
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Callable
from typing import Any

import flax.linen as nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
  """Decorator: registers a model constructor under ``name`` (names are unique)."""

  def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    if name in _REGISTRY:
      raise ValueError(f"model name {name!r} is already registered")
    _REGISTRY[name] = fn
    return fn

  return wrap


def list_models(pattern: str = "*") -> list[str]:
  """Registered model names matching a shell-style ``pattern`` (e.g. ``'resnet*'``), sorted."""
  return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def model_arguments(name: str) -> list[str]:
  """The keyword arguments the registered model ``name`` accepts (besides ``pretrained``)."""
  _check_name(name)
  return [p.name for p in inspect.signature(_REGISTRY[name]).parameters.values()
          if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _check_name(name: str) -> None:
  if name not in _REGISTRY:
    raise ValueError(f"model={name!r} is not registered; accepted names: {', '.join(list_models())}.")


def _check_kwargs(name: str, kwargs: dict[str, Any]) -> None:
  params = inspect.signature(_REGISTRY[name]).parameters.values()
  if any(p.kind == p.VAR_KEYWORD for p in params):
    return
  unknown = sorted(set(kwargs) - set(model_arguments(name)))
  if unknown:
    raise ValueError(f"model {name!r} does not take {', '.join(map(repr, unknown))}; accepted arguments: "
                     f"{', '.join(model_arguments(name))} (and pretrained).")


def get_model(name: str, pretrained: Any = None, **kwargs: Any) -> Any:
  """Builds the registered model ``name`` with ``kwargs`` (``conv_mode``, ``antialias``, ``num_classes``, ...).

  Args:
    name: a registered name (``list_models()``).
    pretrained: ``None`` (default): return the model only. Otherwise a weight source (see
      ``jaxborders.models.pretrained.load_pretrained``): ``True`` (the model's default registered checkpoint), a
      registered checkpoint name (``list_checkpoints()``), a URL, or a local ``.pth`` / ``.safetensors`` /
      ``.msgpack`` file; a ``num_classes`` other than the checkpoint's gets a freshly initialised head.
    **kwargs: the model's own arguments; an unknown one raises ``ValueError`` listing the accepted ones.

  Returns:
    The unbound Flax module; with ``pretrained``, the pair ``(module, variables)``.

  Example:
    >>> get_model('resnet18', num_classes=10).num_classes
    10
  """
  _check_name(name)
  _check_kwargs(name, kwargs)
  model = _REGISTRY[name](**kwargs)
  if pretrained is None or pretrained is False:
    return model
  from jaxborders.models.pretrained import load_pretrained  # local: pretrained imports this module

  return model, load_pretrained(model, pretrained, model_name=name)


__all__ = ["register_model", "list_models", "get_model", "model_arguments"]
