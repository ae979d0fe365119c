"""PyTorch ``state_dict`` <-> Flax ``variables`` for the model zoo (torchvision, antialiased-cnns, Hara naming).

    import jaxborders.convert as convert
    model = jaxborders.models.get_model('resnet50')
    variables = convert.from_torch_state_dict(model, 'resnet50-0676ba61.pth')   # or a dict, or .safetensors
    logits = model.apply(variables, x_nhwc, train=False)
    state_dict = convert.to_torch_state_dict(model, variables)                  # torch.Tensor values

The name map is derived from the Flax variable tree, not tabulated: each Flax module path becomes a torch
module path (``layer1_0`` -> ``layer1.0``: a ``_<digits>`` suffix is a Sequential index) with per-family
adjustments (ResNet: ``downsample_conv`` / ``downsample_bn`` -> ``downsample.0`` / ``.1``; VGG:
``vgg.torch_layer_names``; DenseNet: a ``features.`` prefix), and each leaf a torch attribute:

========================= ===========================  =====================================================
Flax                      torch                        layout
========================= ===========================  =====================================================
params ``kernel`` (conv)  ``weight``                   (*k, I, O) <-> (O, I, *k)
params ``kernel`` (dense) ``weight``                   (I, O) <-> (O, I)
params ``scale``          ``weight`` (BatchNorm)
params ``bias``           ``bias``
batch_stats ``mean``      ``running_mean``
batch_stats ``var``       ``running_var``
(none)                    ``num_batches_tracked``      optional on import (old torchvision files lack it);
                                                       exported as ``num_batches_tracked`` (default 0)
========================= ===========================  =====================================================

Naming ``'antialiased'`` (antialiased-cnns, and CWB's ``models_fconv_lpf``, which uses the same modules): in a
stride-2 block the BlurPool sits in a Sequential before the conv that follows it, so ResNet's
``layerN.0.conv2.weight`` (Basic) / ``conv3.weight`` (Bottleneck) become ``conv2.1.weight`` / ``conv3.1.weight``
and the shortcut's ``downsample.0`` / ``.1`` become ``downsample.1`` / ``.2``; the fixed BlurPool ``filt``
buffers (``maxpool.1.filt``, ``conv2.0.filt``, ``downsample.0.filt``) are ignored on import and written on export
(ResNets only; for VGG / DenseNet the ``filt`` buffers are ignored on import and not exported).
``naming='auto'`` picks ``antialiased`` on import when the state_dict has such keys, on export when the model
uses BlurPool; else ``torchvision`` (also Hara's 3D ResNets, which share it).

A state_dict that does not fit (missing, unexpected or mis-shaped keys) raises ``StateDictMismatchError`` (a
``ValueError``) naming every offending key; nothing is returned half-loaded. Import then export gives back the
input exactly (bit for bit), and export then import gives back the variables exactly.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
from flax import traverse_util
import jax
import jax.numpy as jnp
import numpy as np

from jaxborders.ops.checks import check_choice

NAMINGS: tuple[str, ...] = ("auto", "torchvision", "antialiased")


class StateDictMismatchError(ValueError):
  """A state_dict that does not fit the model; ``missing``, ``unexpected`` and ``mismatched`` list the keys."""

  def __init__(self, missing: list[str], unexpected: list[str], mismatched: list[str], naming: str):
    self.missing, self.unexpected, self.mismatched = missing, unexpected, mismatched
    parts = []
    if missing:
      parts.append(f"missing keys: {', '.join(missing)}")
    if unexpected:
      parts.append(f"unexpected keys: {', '.join(unexpected)}")
    if mismatched:
      parts.append(f"mis-shaped keys: {', '.join(mismatched)}")
    super().__init__(f"state_dict does not fit the model (naming={naming!r}); nothing was loaded. " + "; ".join(parts))


# ---------------------------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------------------------


def _default_module_name(path: tuple[str, ...]) -> str:
  """``('layer1_0', 'conv1')`` -> ``'layer1.0.conv1'``: a ``_<digits>`` suffix is a Sequential index."""
  return ".".join(re.sub(r"_(\d+)(?=_|$)", r".\1", p) for p in path)


def _resnet_module_name(model: nn.Module, path: tuple[str, ...], naming: str) -> str:
  """ResNet / 3D ResNet (torchvision, Hara; antialiased-cnns shifts indices in stride-2 blocks)."""
  aa = naming == "antialiased"
  strided = bool(path) and re.fullmatch(r"layer[2-9]_0", path[0]) is not None  # first block of stages 2-4
  out = []
  for p in path:
    if p == "downsample_conv":
      out.append("downsample.1" if aa and strided else "downsample.0")
    elif p == "downsample_bn":
      out.append("downsample.2" if aa and strided else "downsample.1")
    elif aa and strided and p == ("conv2" if model.block == "basic" else "conv3"):
      out.append(f"{p}.1")
    else:
      out.append(_default_module_name((p,)))
  return ".".join(out)


def _resnet_filters(model: nn.Module, naming: str) -> dict[str, tuple[int, ...]]:
  """antialiased-cnns BlurPool ``filt`` buffers of a ResNet: name -> (C, 1, *k) shape (k = filter size)."""
  from jaxborders.models.common import parse_antialias

  if naming != "antialiased":
    return {}
  aa = parse_antialias(model.antialias)
  size = aa.size if aa.method == "blur" else 3
  k = (size,) * model.rank
  base = model.width  # the stem's channels; the stages have width * (1, 2, 4, 8), as in ResNet.__call__
  names = {"maxpool.1.filt": (base, 1, *k)}
  expansion = 1 if model.block == "basic" else 4
  in_ch = base * expansion
  for stage, width in enumerate((2 * base, 4 * base, 8 * base), start=2):
    main = "conv2.0.filt" if model.block == "basic" else "conv3.0.filt"
    names[f"layer{stage}.0.{main}"] = (width, 1, *k)
    names[f"layer{stage}.0.downsample.0.filt"] = (in_ch, 1, *k)
    in_ch = width * expansion
  return names


def _vgg_module_name(model: nn.Module, path: tuple[str, ...], naming: str) -> str:
  """torchvision VGG (``features.<i>``, ``classifier.<i>``); antialiased-cnns' VGG shifts ``features`` indices
  (a BlurPool after every MaxPool), which ``vgg.torch_layer_names`` computes from the configuration."""
  from jaxborders.models.vgg import torch_layer_names

  names = torch_layer_names(model.depth, model.batch_norm, antialiased=naming == "antialiased")
  return ".".join([names.get(path[0], path[0]), *path[1:]]) if path else ""


def _densenet_module_name(model: nn.Module, path: tuple[str, ...], naming: str) -> str:
  """torchvision DenseNet: everything but the classifier lives under ``features``."""
  del model, naming
  name = _default_module_name(path)
  return name if not path or path[0] == "classifier" else f"features.{name}"


# Family hooks, looked up by model class name (and its bases): module path -> torch module name, and the BlurPool
# buffers written on export. Other families fall back to ``_default_module_name`` and export no buffers. With
# ``antialiased`` naming every ``*.filt`` buffer is ignored on import.
_MODULE_NAMERS: dict[str, Callable[[nn.Module, tuple[str, ...], str], str]] = {
    "ResNet": _resnet_module_name, "VGG": _vgg_module_name, "DenseNet": _densenet_module_name}
_FILTER_BUFFERS: dict[str, Callable[[nn.Module, str], dict[str, tuple[int, ...]]]] = {"ResNet": _resnet_filters}


def _family_hook(model: nn.Module, table: dict[str, Any]) -> Any:
  for cls in type(model).__mro__:
    if cls.__name__ in table:
      return table[cls.__name__]
  return None


def _expected_variables(model: nn.Module, input_shape: tuple[int, ...] | None) -> Any:
  if input_shape is None:
    if hasattr(model, "example_input_shape"):
      input_shape = model.example_input_shape(1)
    else:
      raise ValueError(f"{type(model).__name__} has no example_input_shape(); pass input_shape=(1, ..., C).")
  x = jax.ShapeDtypeStruct(tuple(input_shape), jnp.float32)
  return jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x), x)


def _spec(model: nn.Module, variables: Mapping[str, Any], naming: str):
  """torch key -> (collection, flax path, flax shape, kind); plus the optional keys (num_batches_tracked, filt)."""
  namer = _family_hook(model, _MODULE_NAMERS)
  module_name = (lambda p: namer(model, p, naming)) if namer else _default_module_name
  spec, bn_modules = {}, []
  for collection in ("params", "batch_stats"):
    for path, leaf in traverse_util.flatten_dict(variables.get(collection, {})).items():
      module, name = module_name(path[:-1]), path[-1]
      shape = tuple(leaf.shape)
      if collection == "params" and name == "kernel":
        kind = "conv" if len(shape) >= 3 else "dense"
        attr = "weight"
      elif collection == "params" and name in ("scale", "bias"):
        kind, attr = "vector", {"scale": "weight", "bias": "bias"}[name]
      elif collection == "batch_stats" and name in ("mean", "var"):
        kind, attr = "vector", {"mean": "running_mean", "var": "running_var"}[name]
        if name == "mean":
          bn_modules.append(module)
      else:
        raise ValueError(f"cannot map Flax variable {collection}/{'/'.join(path)} to a torch name.")
      spec[f"{module}.{attr}" if module else attr] = (collection, path, shape, kind)
  tracked = [f"{m}.num_batches_tracked" for m in bn_modules]
  filters = (_family_hook(model, _FILTER_BUFFERS) or (lambda m, n: {}))(model, naming)
  return spec, tracked, filters


def _torch_shape(shape: tuple[int, ...], kind: str) -> tuple[int, ...]:
  if kind == "conv":
    return (shape[-1], shape[-2], *shape[:-2])
  if kind == "dense":
    return (shape[1], shape[0])
  return shape


def _to_torch_layout(a: np.ndarray, kind: str) -> np.ndarray:
  if kind == "conv":
    return np.ascontiguousarray(np.transpose(a, (a.ndim - 1, a.ndim - 2, *range(a.ndim - 2))))
  if kind == "dense":
    return np.ascontiguousarray(a.T)
  return a


def _to_flax_layout(a: np.ndarray, kind: str) -> np.ndarray:
  if kind == "conv":
    return np.transpose(a, (*range(2, a.ndim), 1, 0))
  if kind == "dense":
    return a.T
  return a


def _as_numpy(v: Any) -> np.ndarray:
  if hasattr(v, "detach"):  # torch.Tensor, without importing torch
    v = v.detach().cpu()
    if str(v.dtype) == "torch.bfloat16":
      v = v.float()  # numpy has no bfloat16; float32 holds it exactly
    return v.numpy()
  return np.asarray(v)


def _resolve_naming(naming: str, keys: Any = None, model: nn.Module | None = None) -> str:
  check_choice("naming", naming, NAMINGS)
  if naming != "auto":
    return naming
  if keys is not None:
    # BlurPool buffers, or the indices they shift: torchvision never has conv2.1 / conv3.1 / downsample.2.
    aa = any(k.endswith(".filt") or re.search(r"\.(conv2|conv3)\.1\.weight$|\.downsample\.2\.", k) for k in keys)
    return "antialiased" if aa else "torchvision"
  from jaxborders.models.common import parse_antialias

  return "antialiased" if parse_antialias(getattr(model, "antialias", None)).method == "blur" else "torchvision"


# ---------------------------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------------------------


def load_torch_file(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """Reads a state_dict from a ``torch.save`` file (``weights_only=True``) or a ``.safetensors`` file.

  A checkpoint dict holding the weights under ``'state_dict'`` or ``'model'`` (antialiased-cnns releases) is
  unwrapped, and a ``module.`` prefix (DataParallel) on every key is removed. Returns NumPy arrays.
  """
  path = os.fspath(path)
  if not os.path.exists(path):
    raise FileNotFoundError(f"no such weight file: {path}")
  state = _read_safetensors(path) if path.endswith(".safetensors") else _read_torch_save(path)
  if not isinstance(state, Mapping):
    raise ValueError(f"{path} does not hold a state_dict (a mapping of names to tensors), got {type(state).__name__}.")
  if state and all(k.startswith("module.") for k in state):
    state = {k[len("module."):]: v for k, v in state.items()}
  return {k: _as_numpy(v) for k, v in state.items()}


def _read_safetensors(path: str) -> Mapping[str, Any]:
  from safetensors.numpy import load_file

  try:
    return load_file(path)
  except Exception as e:  # safetensors raises its own SafetensorError (and OSError) for truncated / bad headers
    raise ValueError(f"{path} is not a readable .safetensors file (truncated or corrupt?): {e}") from None


def _read_torch_save(path: str) -> Any:
  import pickle

  import torch

  try:
    state = torch.load(path, map_location="cpu", weights_only=True)
  except pickle.UnpicklingError:
    raise  # weights_only refused a pickle that wants to run code: keep torch's own refusal and message
  except (RuntimeError, EOFError, OSError, ValueError) as e:
    raise ValueError(f"{path} is not a readable torch.save file (truncated or corrupt?): {e}") from None
  for wrapper in ("state_dict", "model"):
    if isinstance(state, Mapping) and wrapper in state and isinstance(state[wrapper], Mapping):
      state = state[wrapper]
  return state


def _check_values(state_dict: Mapping[str, Any], keys: Any) -> None:
  """Weights must be real floating point: complex would lose its imaginary part, ints / bools are no weights."""
  for key in keys:
    kind, name = _dtype_kind(state_dict[key])
    if kind != "f":
      what = {"c": "complex", "b": "bool", "i": "integer", "u": "integer"}.get(kind, "non-floating")
      raise ValueError(f"state_dict[{key!r}] has {what} dtype {name}; weights must be real floating point "
                       f"(float16, bfloat16, float32 or float64). Nothing was loaded.")


def _dtype_kind(value: Any) -> tuple[str, str]:
  """(numpy kind letter, dtype name) of a torch tensor or array-like, without importing torch."""
  name = str(getattr(value, "dtype", None) or np.asarray(value).dtype)
  if name.startswith("torch."):
    name = name[len("torch."):]
    if name == "bfloat16":
      return "f", name
    if name == "complex32":
      return "c", name
  try:
    return np.dtype(name).kind, name
  except TypeError:
    return "?", name


def from_torch_state_dict(model: nn.Module, state_dict: Mapping[str, Any] | str | os.PathLike,
                          naming: str = "auto", input_shape: tuple[int, ...] | None = None) -> dict[str, Any]:
  """PyTorch state_dict (or a file, see ``load_torch_file``) -> Flax ``{'params', 'batch_stats'}`` for ``model``.

  Args:
    model: a Flax model of the zoo (e.g. ``get_model('resnet18')``), unbound.
    state_dict: name -> tensor (torch or NumPy), or a path to a ``.pth`` / ``.safetensors`` file.
    naming: ``'torchvision'`` (also Hara's 3D ResNets), ``'antialiased'`` (antialiased-cnns / CWB lpf) or
      ``'auto'`` (antialiased iff the keys show BlurPool modules).
    input_shape: a valid input shape to trace the model's variable shapes (default: its example input).

  Returns:
    Flax variables with float32 leaves in the model's layout, ready for ``model.apply(variables, x)``.

  Raises:
    StateDictMismatchError: naming every missing, unexpected and mis-shaped key.
    ValueError: a non-mapping ``state_dict``, a weight that is not real floating point (complex, integer, bool:
      naming the key and dtype), or an unreadable (truncated, corrupt) file naming the file.
  """
  if isinstance(state_dict, (str, os.PathLike)):
    state_dict = load_torch_file(state_dict)
  if not isinstance(state_dict, Mapping):
    raise ValueError(f"state_dict must be a mapping of names to tensors (or a path to a .pth / .safetensors file), "
                     f"got {type(state_dict).__name__}.")
  naming = _resolve_naming(naming, keys=list(state_dict))
  expected = _expected_variables(model, input_shape)
  spec, tracked, filters = _spec(model, expected, naming)
  optional = set(tracked) | set(filters)
  missing = [k for k in spec if k not in state_dict]
  unexpected = [k for k in state_dict
                if k not in spec and k not in optional and not (naming == "antialiased" and k.endswith(".filt"))]
  mismatched = []
  for key, (_, _, shape, kind) in spec.items():
    if key in state_dict:
      got = tuple(np.shape(state_dict[key]))
      if got != _torch_shape(shape, kind):
        mismatched.append(f"{key} (expected {_torch_shape(shape, kind)}, got {got})")
  if missing or unexpected or mismatched:
    raise StateDictMismatchError(missing, unexpected, mismatched, naming)
  _check_values(state_dict, [*spec, *(k for k in filters if k in state_dict)])
  out: dict[str, Any] = {}
  for key, (collection, path, _, kind) in spec.items():
    node = out.setdefault(collection, {})
    for p in path[:-1]:
      node = node.setdefault(p, {})
    node[path[-1]] = jnp.asarray(_to_flax_layout(_as_numpy(state_dict[key]), kind).astype(np.float32))
  return out


def to_torch_state_dict(model: nn.Module, variables: Mapping[str, Any], naming: str = "auto",
                        num_batches_tracked: int | None = 0) -> dict[str, Any]:
  """Flax variables of ``model`` -> a PyTorch state_dict (``torch.Tensor`` values, torch layout).

  Args:
    model: the Flax model the variables belong to.
    variables: ``{'params': ..., 'batch_stats': ...}``.
    naming: as in ``from_torch_state_dict``; ``'auto'`` writes ``antialiased`` names iff the model uses BlurPool.
    num_batches_tracked: value of every BatchNorm's ``num_batches_tracked`` (Flax does not count batches);
      ``None`` leaves these keys out.

  Returns:
    An ordered dict name -> tensor that ``torch_model.load_state_dict`` accepts (with ``antialiased`` naming,
    BlurPool ``filt`` buffers are included, built from the model's filter).
  """
  import torch

  naming = _resolve_naming(naming, model=model)
  spec, tracked, filters = _spec(model, variables, naming)
  state: dict[str, Any] = {}
  for key, (collection, path, _, kind) in spec.items():
    node = variables[collection]
    for p in path:
      node = node[p]
    state[key] = torch.from_numpy(_to_torch_layout(np.array(node, dtype=np.float32), kind))
  if num_batches_tracked is not None:
    for key in tracked:
      state[key] = torch.tensor(num_batches_tracked, dtype=torch.int64)
  if filters:
    from jaxborders.models.common import parse_antialias
    from jaxborders.ops.filters import filter_taps

    aa = parse_antialias(model.antialias)
    for key, shape in filters.items():
      taps = filter_taps(aa.kind if aa.method == "blur" else "binomial", shape[-1])
      kernel = taps
      for _ in range(len(shape) - 3):
        kernel = np.multiply.outer(kernel, taps)
      state[key] = torch.from_numpy(np.broadcast_to(kernel.astype(np.float32), shape).copy())
  return dict(sorted(state.items(), key=lambda kv: _torch_order(kv[0])))


_ATTR_ORDER = {"filt": 0, "weight": 1, "bias": 2, "running_mean": 3, "running_var": 4, "num_batches_tracked": 5}


def _torch_order(key: str) -> list[Any]:
  """Sort key close to torch's module order: numbers numerically, then weight, bias, running stats."""
  *module, attr = key.split(".")
  return [*((0, int(t), "") if t.isdigit() else (1, 0, t) for t in module), (2, _ATTR_ORDER.get(attr, 9), attr)]


__all__ = ["from_torch_state_dict", "to_torch_state_dict", "load_torch_file", "StateDictMismatchError", "NAMINGS"]
