"""Model registry: ``register_model`` names a constructor, ``get_model(name, **kwargs)`` builds it.

Registering a model is enough to get it tested: ``tests/test_models_all.py`` runs every registered name.
"""

from __future__ import annotations

import fnmatch
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


def get_model(name: str, **kwargs: Any) -> nn.Module:
  """Builds the registered model ``name`` with ``kwargs`` (``conv_mode``, ``antialias``, ``num_classes``, ...)."""
  if name not in _REGISTRY:
    raise ValueError(f"model={name!r} is not registered; accepted names: {', '.join(list_models())}.")
  return _REGISTRY[name](**kwargs)


__all__ = ["register_model", "list_models", "get_model"]
