"""What every model shares: the model contract, named intermediates, and the input-fits rule.

**Contract.** Every registered model is a ``ZooModel``: ``model.apply(variables, x, train=False)`` returns its
output (logits; HardNet its descriptors), and the model ``sow``s named intermediate maps (stem, every block, every
stage, pre-logits; every conv for the small nets) into the ``'intermediates'`` collection, in the order the
network computes them. ``intermediates(model, variables, x)`` returns them as an ``OrderedDict`` in that order
(an ``OrderedDict`` keeps its order through ``jax.jit`` / ``jax.eval_shape``, a plain dict is key-sorted).

**Input fits.** The smallest input a model accepts is computed from the network itself: ``min_input_size``
traces the model abstractly (``jax.eval_shape``, no FLOPs) and bisects the input side; an input fits when every
op accepts its sizes (the ops raise on too-small maps) and no sown map is empty. Sizes are monotone in the input
size for every family here, so bisection finds the exact minimum. A model's ``__call__`` (``checks_input_size``)
turns any failure on a too-small input into a ``ValueError`` stating that minimum.

The ``antialias`` spec and its parsing live in ``jaxborders.nn.downsample`` (re-exported here).
"""

from __future__ import annotations

import collections
import contextvars
import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxborders.nn.downsample import AntiAlias, antialias_forms, blur_pad_mode, parse_antialias
from jaxborders.ops.checks import check_choice
from jaxborders.ops.padding import MODES

INTERMEDIATES = "intermediates"
_PROBING = contextvars.ContextVar("jaxborders_size_probe", default=False)
_MIN_SIZE_CACHE: dict[str, tuple[int, ...]] = {}
_SIZE_LIMIT = 1 << 13


def check_conv_mode(conv_mode: str) -> str:
  """Raises ``ValueError`` listing the accepted border modes unless ``conv_mode`` is one."""
  return check_choice("conv_mode", conv_mode, MODES)


def sow(module: nn.Module, name: str, x: jax.Array) -> jax.Array:
  """Records ``x`` as the intermediate ``name`` of ``module`` (a map with an empty spatial dim raises: the input
  was too small). Returns ``x``."""
  if any(d < 1 for d in x.shape[1:-1]):
    raise ValueError(f"intermediate {name!r} has an empty spatial shape {tuple(x.shape[1:-1])}.")
  module.sow(INTERMEDIATES, name, x, init_fn=lambda: None, reduce_fn=lambda _, new: new)
  return x


def intermediates(model: nn.Module, variables: Any, x: jax.Array, train: bool = False,
                  **apply_kwargs: Any) -> collections.OrderedDict[str, jax.Array]:
  """Every named intermediate map of ``model`` on ``x``, in network order.

  Args:
    model: a registered model (unbound).
    variables: its variables (``params`` and, for BatchNorm nets, ``batch_stats``).
    x: the input, channels-last (N, *spatial, C).
    train: training mode (batch statistics; BatchNorm updates are computed and dropped).
    **apply_kwargs: passed to ``model.apply`` (e.g. ``rngs`` for dropout in training mode).

  Returns:
    ``OrderedDict`` name -> array, in the order the network computes them (stem first, ``pre_logits`` last).

  Example:
    >>> from jaxborders.models import get_model
    >>> model = get_model('redgreen_net')
    >>> x = jnp.zeros((1, 16, 16, 3))
    >>> maps = intermediates(model, model.init(jax.random.key(0), x), x)
    >>> [(k, v.shape) for k, v in maps.items()][:2], list(maps)[-1]
    ([('relu1', (1, 16, 16, 32)), ('relu2', (1, 8, 8, 32))], 'pre_logits')
  """
  mutable = [INTERMEDIATES] + (["batch_stats"] if train and "batch_stats" in variables else [])
  _, state = model.apply(variables, x, train=train, mutable=mutable, **apply_kwargs)
  return collections.OrderedDict(state.get(INTERMEDIATES, {}).items())


def intermediate_shapes(model: nn.Module, input_shape: Sequence[int]) -> collections.OrderedDict[str, tuple]:
  """Shapes of every intermediate of ``model`` for a channels-last ``input_shape``, in network order (abstract
  trace: nothing is computed or allocated).

  >>> from jaxborders.models import get_model
  >>> list(intermediate_shapes(get_model('patch_toy_net'), (1, 8, 8, 1)).items())
  [('response', (1, 8, 8, 1)), ('pre_logits', (1, 1))]
  """
  x = jax.ShapeDtypeStruct(tuple(input_shape), jnp.float32)

  def run(x):
    variables = model.init(jax.random.key(0), x, train=False)
    return intermediates(model, variables, x)

  return collections.OrderedDict((k, tuple(v.shape)) for k, v in jax.eval_shape(run, x).items())


def parameter_order(model: nn.Module, input_shape: Sequence[int]) -> list[str]:
  """``'path/to/param'`` names of ``model``'s parameters in the order the network creates them (the order of
  its layers; ``jax.tree`` functions sort names, so ``features_10`` would come before ``features_2``)."""
  order: list[str] = []

  def walk(tree: Any, prefix: tuple[str, ...]) -> None:
    if isinstance(tree, dict):
      for key, value in tree.items():
        walk(value, (*prefix, str(key)))
    else:
      order.append("/".join(prefix))

  def run(x):
    variables = model.init(jax.random.key(0), x, train=False)
    walk(variables["params"], ())  # recorded while tracing: insertion order, before any pytree sorting
    return 0

  jax.eval_shape(run, jax.ShapeDtypeStruct(tuple(input_shape), jnp.float32))
  return order


# ---------------------------------------------------------------------------------------------------------------
# The input-fits rule.


def _unbound(model: nn.Module) -> nn.Module:
  fields = {f.name: getattr(model, f.name) for f in dataclasses.fields(model) if f.init and f.name not in (
      "parent", "name")}
  return type(model)(**fields, parent=None)


def _fits(model: nn.Module, spatial: Sequence[int]) -> bool:
  shape = (1, *spatial, model.input_channels)
  token = _PROBING.set(True)
  try:
    jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), jax.ShapeDtypeStruct(shape, jnp.float32))
    return True
  except (ValueError, TypeError):  # an op refusing its sizes (ValueError) or lax's shape checks (TypeError)
    return False
  finally:
    _PROBING.reset(token)


def _smallest(fits: Callable[[int], bool], upper: int | None = None) -> int:
  """Smallest n >= 1 with ``fits(n)`` (monotone), by doubling to a fitting size and bisecting."""
  lo, hi = 0, 1
  if upper is None:
    while not fits(hi):
      lo, hi = hi, hi * 2
      if hi > _SIZE_LIMIT:
        raise ValueError(f"no input size up to {_SIZE_LIMIT} fits this network")
  else:
    hi = upper
  while hi - lo > 1:
    mid = (lo + hi) // 2
    lo, hi = (lo, mid) if fits(mid) else (mid, hi)
  return hi


def min_input_size(model: nn.Module) -> tuple[int, ...]:
  """Smallest spatial input shape ((H, W), or (T, H, W)) ``model`` can process, computed by tracing it.

  The axes of each group in ``model.size_groups()`` share one size (H and W of every family here); the other
  groups are held at a size that fits while one group is bisected.

  >>> from jaxborders.models import get_model
  >>> min_input_size(get_model('redgreen_net', conv_mode='valid'))
  (17, 17)
  """
  model = _unbound(model)
  key = repr(model)
  if key not in _MIN_SIZE_CACHE:
    rank = model.spatial_rank
    cube = _smallest(lambda n: _fits(model, (n,) * rank))
    minimum = [cube] * rank
    groups = model.size_groups()
    if len(groups) > 1:
      for group in groups:
        def fits(n: int, group: tuple[int, ...] = group) -> bool:
          return _fits(model, [n if a in group else cube for a in range(rank)])

        for a in group:
          minimum[a] = _smallest(fits, cube)
    _MIN_SIZE_CACHE[key] = tuple(minimum)
  return _MIN_SIZE_CACHE[key]


def checks_input_size(call: Callable) -> Callable:
  """Decorates a model's ``__call__``: a wrongly shaped input raises at once; a failure on an input smaller than
  ``min_input_size`` becomes a ``ValueError`` stating the minimum."""

  @functools.wraps(call)
  def wrapper(self, x, *args, **kwargs):
    if x.ndim != self.spatial_rank + 2:
      layout = "(N, H, W, C)" if self.spatial_rank == 2 else "(N, T, H, W, C)"
      raise ValueError(f"{type(self).__name__}: input must be channels-last {layout}, got shape {tuple(x.shape)}.")
    try:
      return call(self, x, *args, **kwargs)
    except Exception as error:
      if _PROBING.get():
        raise
      minimum = min_input_size(self)
      spatial = tuple(x.shape[1:-1])
      if any(n < m for n, m in zip(spatial, minimum)):
        raise ValueError(f"{type(self).__name__}: input spatial size {spatial} is smaller than the minimum "
                         f"{minimum} this network can process with conv_mode={getattr(self, 'conv_mode', None)!r}, "
                         f"antialias={getattr(self, 'antialias', None)!r}.") from error
      raise

  return wrapper


class ZooModel(nn.Module):
  """Base of every registered model: the input-size methods of the contract (see the module docstring).

  Subclasses set ``input_channels`` (3; HardNet 1), ``spatial_rank`` (2; 3D ResNets 3) and decorate their
  ``__call__`` with ``checks_input_size`` (under ``nn.compact``).
  """

  input_channels: ClassVar[int] = 3

  @property
  def spatial_rank(self) -> int:
    return 2

  def size_groups(self) -> tuple[tuple[int, ...], ...]:
    """Spatial axes that share one minimum size: (H, W) for images, (T,), (H, W) for video."""
    return ((0, 1),) if self.spatial_rank == 2 else ((0,), (1, 2))

  def min_input_size(self) -> tuple[int, ...]:
    """Smallest spatial input shape this configuration can process (``__call__`` raises below it)."""
    return min_input_size(self)

  def example_input_shape(self, batch: int = 2) -> tuple[int, ...]:
    """A small valid channels-last input shape: the minimum, made even (APS halves it exactly)."""
    return (batch, *(m + m % 2 for m in self.min_input_size()), self.input_channels)


__all__ = ["AntiAlias", "parse_antialias", "antialias_forms", "check_conv_mode", "blur_pad_mode", "sow",
           "intermediates", "intermediate_shapes", "parameter_order", "min_input_size", "checks_input_size",
           "ZooModel", "INTERMEDIATES"]
