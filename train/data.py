"""Data sources: how a ``data.source`` name becomes arrays (see ``train/README.md``).

A source is a module with ``DEFAULTS`` (its ``data.*`` keys and defaults), ``SPLITS`` (``'train'``, ``'val'``
and any test splits) and ``load(data_config, split, seed)`` returning ``{'image', 'label'}`` numpy arrays
(in memory) or a ``Stream``. ``'NAME'`` resolves to ``jaxborders.data.NAME``; a dotted name is a full module
path (``'train.synthetic'``).
"""

from __future__ import annotations

import importlib
from types import ModuleType

import ml_collections
import numpy as np

from jaxborders.data.stream import DataMissingError, Stream  # re-exported: sources raise / return these


def get_source(name: str) -> ModuleType:
  """The source module of ``name``; ValueError listing the known sources if there is none."""
  candidates = [name] if "." in name else [f"jaxborders.data.{name}"]
  for module_name in candidates:
    try:
      module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
      if e.name and module_name.startswith(e.name):
        continue
      raise
    missing = [a for a in ("DEFAULTS", "SPLITS", "load") if not hasattr(module, a)]
    if missing:
      raise ValueError(f"data.source={name!r}: module {module_name} lacks {', '.join(missing)} (see train/README.md).")
    return module
  raise ValueError(f"data.source={name!r} is not a data source; accepted values: {', '.join(map(repr, list_sources()))} "
                   "or a full module path.")


def list_sources() -> list[str]:
  import pkgutil

  import jaxborders.data
  names = []
  for m in pkgutil.iter_modules(jaxborders.data.__path__):
    try:
      module = importlib.import_module(f"jaxborders.data.{m.name}")
    except ImportError:  # a source whose optional dependency is not installed is still a source
      names.append(m.name)
      continue
    if all(hasattr(module, a) for a in ("DEFAULTS", "SPLITS", "load")):  # helpers (pipeline, transforms) are not
      names.append(m.name)
  return sorted(names) + ["train.synthetic"]


def source_config(data_config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The data section completed with the source's defaults for keys the config does not set."""
  source = get_source(data_config.source)
  merged = dict(source.DEFAULTS)
  merged.update({k: v for k, v in data_config.items()})
  return ml_collections.ConfigDict(merged)


def load_split(data_config: ml_collections.ConfigDict, split: str, seed: int) -> dict[str, np.ndarray] | Stream:
  """Loads one split, checking the in-memory format."""
  source = get_source(data_config.source)
  out = source.load(source_config(data_config), split, seed)
  if isinstance(out, Stream):
    return out
  if not isinstance(out, dict) or "image" not in out or "label" not in out:
    raise ValueError(f"data source {data_config.source!r} must return {{'image', 'label'}} or a Stream for {split!r}.")
  image, label = np.asarray(out["image"], np.float32), np.asarray(out["label"], np.int32)
  if image.ndim < 3 or label.shape != image.shape[:1]:
    raise ValueError(f"data source {data_config.source!r} split {split!r}: image must be (N, ..., C) and label (N,); "
                     f"got {image.shape} and {label.shape}.")
  return {"image": image, "label": label}


__all__ = ["DataMissingError", "Stream", "get_source", "list_sources", "source_config", "load_split"]
