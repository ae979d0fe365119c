"""One downsampling factory for every model: the ``antialias`` spec parsed in one place, built into one layer.

Every model family takes ``antialias`` and ``conv_mode`` and asks ``downsampler(spec, stride, conv_mode)`` for the
layer that replaces a stride-``s`` step. Every such layer has the same contract::

    y, index = layer(x, train=False, index=None)

``index`` is the (N,) polyphase choice of APS-like methods (a shortcut passes its main branch's ``index`` so
that both branches keep the same samples) and ``None`` for the others. ``layer.preceding_stride`` is the stride
the op *before* the layer runs at: the plain method keeps the stride in the conv / pool itself (the layer is the
identity), every anti-aliased method runs that op densely (stride 1) and downsamples in the layer, which is where
antialiased-cnns (Zhang, ICML 2019) puts BlurPool and where the official APS code (Chaman & Dokmanic, CVPR 2021,
``achaman2/truly_shift_invariant_cnns``) puts ``ApsPool``.

Accepted specs (``ANTIALIAS_FORMS``):

* ``None`` / ``'none'``: plain strided conv or pool.
* ``'blur'`` = ``'blur:triangle:3'``, ``'blur:<kind>:<size>'``: BlurPool.
* ``'maxblur'`` = ``'maxblur:triangle:3'``, ``'maxblur:<kind>:<size>'``: dense 2×2 max pool, then BlurPool
  (antialiased-cnns' MaxBlurPool).
* ``'aps'``, ``'aps:<norm>'``, ``'aps:<norm>:<blur_size>'``: adaptive polyphase sampling, optionally after a
  circular binomial blur.

New methods register themselves with ``register_downsampler(method, layer_cls, parse_options, forms)``.

The border mode decides how a blur pads (``blur_pad_mode``): reflect for ``same`` / ``reflect`` / ``replicate``
(antialiased-cnns' default), wrap for ``circular`` (the BlurPool paper's CIFAR setting), F-Conv's zero ``f-1``
per side for ``full`` (CWB's F-Conv + BlurPool models) and no padding for ``valid``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxborders.ops import aps as aps_ops
from jaxborders.ops import filters
from jaxborders.ops.checks import check_choice
from jaxborders.ops.padding import MODES

Modes = str | Sequence[str]
Index = Optional[jax.Array]


@dataclasses.dataclass(frozen=True)
class AntiAlias:
  """A parsed ``antialias`` spec: the registered ``method`` and its ``options`` (name, value) pairs.

  >>> parse_antialias('blur:binomial:5').size
  5
  """

  method: str = "none"
  options: tuple[tuple[str, Any], ...] = ()

  def get(self, name: str, default: Any = None) -> Any:
    return dict(self.options).get(name, default)

  @property
  def is_none(self) -> bool:
    return self.method == "none"

  @property
  def kind(self) -> str:
    return self.get("kind", "binomial")

  @property
  def size(self) -> int:
    return self.get("size", 1)

  @property
  def norm(self) -> str:
    return self.get("norm", "l2")


@dataclasses.dataclass(frozen=True)
class _Registration:
  layer_cls: type
  parse_options: Callable[[list[str]], dict[str, Any]]
  forms: tuple[str, ...]


_REGISTRY: dict[str, _Registration] = {}


def register_downsampler(method: str, layer_cls: type, parse_options: Callable[[list[str]], dict[str, Any]],
                         forms: Sequence[str]) -> None:
  """Registers an ``antialias`` method.

  Args:
    method: the spec's first field (``'blur'`` in ``'blur:triangle:3'``).
    layer_cls: a ``Downsampler`` subclass with one field per option and
      ``__call__(x, train=False, index=None) -> (y, index)``; its class attribute ``preceding_stride_kept`` says
      whether the op before it keeps the stride (the plain method) or runs at stride 1.
    parse_options: the spec's remaining ``:``-separated fields -> the layer's option fields; raises ValueError.
    forms: the accepted spellings, for error messages (``"'blur:<kind>:<size>'"``).
  """
  if method in _REGISTRY:
    raise ValueError(f"antialias method {method!r} is already registered")
  _REGISTRY[method] = _Registration(layer_cls, parse_options, tuple(forms))


def antialias_forms() -> tuple[str, ...]:
  """Every accepted spelling of ``antialias``, for messages and docs."""
  return tuple(f for r in _REGISTRY.values() for f in r.forms)


def parse_antialias(spec: str | AntiAlias | None) -> AntiAlias:
  """Parses an ``antialias`` spec; a bad one raises ``ValueError`` listing every accepted form.

  >>> parse_antialias('aps:l1')
  AntiAlias(method='aps', options=(('norm', 'l1'), ('size', 1)))
  >>> parse_antialias(None).is_none
  True
  """
  if isinstance(spec, AntiAlias):
    return spec
  if spec is None:
    spec = "none"
  error = (f"antialias={spec!r} is not supported; accepted forms: {', '.join(antialias_forms())} "
           f"(kind in {filters.FILTER_KINDS}, norm in {aps_ops.APS_NORMS}).")
  if not isinstance(spec, str) or spec.split(":")[0] not in _REGISTRY:
    raise ValueError(error)
  method, *fields = spec.split(":")
  try:
    options = _REGISTRY[method].parse_options(fields)
  except ValueError as e:
    raise ValueError(f"{error} ({e})") from None
  return AntiAlias(method, tuple(sorted(options.items())))


def blur_pad_mode(conv_mode: str) -> str | None:
  """How a blur pads under a border mode: F-Conv's zero ``f-1`` per side for ``full``, wrap for ``circular``,
  none for ``valid`` (``None``), antialiased-cnns' ``reflect`` for the other same-size modes (``same``,
  ``partial``, ``reflect``, ``replicate``).

  >>> [blur_pad_mode(m) for m in ('same', 'full', 'circular', 'valid')]
  ['reflect', 'full', 'circular', None]
  """
  check_choice("conv_mode", conv_mode, MODES)
  return {"full": "full", "circular": "circular", "valid": None}.get(conv_mode, "reflect")


def axis_modes(conv_mode: Modes, rank: int) -> tuple[str, ...]:
  """One border mode per spatial axis (a single mode is broadcast)."""
  modes = (conv_mode,) * rank if isinstance(conv_mode, str) else tuple(conv_mode)
  if len(modes) != rank:
    raise ValueError(f"conv_mode must be one mode or one per spatial dim ({rank}), got {conv_mode!r}.")
  for m in modes:
    check_choice("conv_mode", m, MODES)
  return modes


def border_blur_pool(x: jax.Array, size: int, kind: str, stride: int | Sequence[int], conv_mode: Modes) -> jax.Array:
  """BlurPool padded as each axis's border mode asks (``blur_pad_mode``; ``valid`` axes are not padded).

  Args:
    x: (N, *spatial, C).
    size, kind: the filter (``jaxborders.filter_taps``).
    stride: int or one per spatial dim.
    conv_mode: one border mode or one per spatial dim.

  Returns:
    (N, *out, C).

  Example:
    >>> border_blur_pool(jnp.ones((1, 6, 6, 1)), 3, 'binomial', 2, ('valid', 'same')).shape
    (1, 2, 3, 1)
  """
  pads = tuple(blur_pad_mode(m) or "valid" for m in axis_modes(conv_mode, x.ndim - 2))
  return filters.blur_pool(x, size, stride, kind, pads[0] if len(set(pads)) == 1 else pads)


def border_max_pool(x: jax.Array, window: int | Sequence[int], stride: int | Sequence[int],
                    padding: Sequence[tuple[int, int]] | int, conv_mode: Modes) -> jax.Array:
  """Max pool whose padding wraps on ``circular`` axes and is -inf (PyTorch) on the others.

  Args:
    x: (N, *spatial, C).
    window, stride: int or one per spatial dim.
    padding: an int (symmetric, every axis) or one ``(lo, hi)`` pair per spatial dim.
    conv_mode: one border mode or one per spatial dim.

  Returns:
    (N, *out, C).

  Example:
    >>> x = jnp.arange(4.).reshape(1, 4, 1, 1)
    >>> border_max_pool(x, (2, 1), 1, [(0, 1), (0, 0)], 'circular')[0, :, 0, 0].tolist()
    [1.0, 2.0, 3.0, 3.0]
  """
  rank = x.ndim - 2
  modes = axis_modes(conv_mode, rank)
  pads = [(padding, padding)] * rank if isinstance(padding, int) else [tuple(p) for p in padding]
  for axis, ((lo, hi), mode) in enumerate(zip(pads, modes), start=1):
    if lo or hi:
      widths = [(0, 0)] * x.ndim
      widths[axis] = (lo, hi)
      x = jnp.pad(x, widths, mode="wrap") if mode == "circular" else jnp.pad(x, widths, constant_values=-jnp.inf)
  return filters.max_pool(x, window, stride, 0)


# ---------------------------------------------------------------------------------------------------------------
# The layers. Each: fields ``stride`` and ``conv_mode`` first, then its options.


class Downsampler(nn.Module):
  """Base of every downsampling layer: ``stride``, ``conv_mode`` and ``preceding_stride``."""

  stride: int | Sequence[int] = 2
  conv_mode: Modes = "same"
  # Class attributes (where the method's authors place things):
  preceding_stride_kept: ClassVar[bool] = False  # the op before the layer keeps the stride (plain method)
  antialiases_stem_conv: ClassVar[bool] = False  # a ResNet stem conv runs at stride 1 before the layer
  dense_pool_pad: ClassVar[tuple[int, int]] = (0, 0)  # per-axis pad of the dense 2x2 max pool before the layer

  @property
  def preceding_stride(self) -> int | Sequence[int]:
    """The stride of the op before this layer: its own stride for the plain method, 1 otherwise."""
    return self.stride if self.preceding_stride_kept else 1


class PlainDownsample(Downsampler):
  """``antialias=None``: the preceding conv / pool keeps its stride; this layer passes ``x`` through."""

  preceding_stride_kept = True

  def __call__(self, x: jax.Array, train: bool = False, index: Index = None) -> tuple[jax.Array, Index]:
    del train
    return x, None


class BlurDownsample(Downsampler):
  """BlurPool (antialiased-cnns): low-pass filter, then subsample; padded by the border mode."""

  kind: str = "triangle"
  size: int = 3

  def __call__(self, x: jax.Array, train: bool = False, index: Index = None) -> tuple[jax.Array, Index]:
    del train
    return border_blur_pool(x, self.size, self.kind, self.stride, self.conv_mode), None


class MaxBlurDownsample(Downsampler):
  """MaxBlurPool (antialiased-cnns): dense 2×2 max pool (wrapping on circular axes, keeping the size there),
  then BlurPool."""

  kind: str = "triangle"
  size: int = 3

  def __call__(self, x: jax.Array, train: bool = False, index: Index = None) -> tuple[jax.Array, Index]:
    del train
    modes = axis_modes(self.conv_mode, x.ndim - 2)
    pads = [(0, 1) if m == "circular" else (0, 0) for m in modes]
    x = border_max_pool(x, 2, 1, pads, modes)
    return border_blur_pool(x, self.size, self.kind, self.stride, modes), None


class APSDownsample(Downsampler):
  """Adaptive polyphase sampling as the official ``ApsPool``: optional circular binomial blur at the map's own
  (possibly odd) size, circular pad at the end up to a multiple of the stride, then ``jaxborders.aps_pool``
  (a given ``index`` is reused; otherwise the component of largest norm, the first one on ties).

  The official ResNet antialiases its stem conv (stride 1, then APS; ``pool_only=False``) and pads its dense
  2×2 max pool by (0, 1) circularly (``circular_pad([0, 1, 0, 1])``); the class attributes say so."""

  antialiases_stem_conv = True
  dense_pool_pad = (0, 1)

  norm: str = "l2"
  size: int = 1

  def __call__(self, x: jax.Array, train: bool = False, index: Index = None) -> tuple[jax.Array, Index]:
    del train
    if self.size > 1:
      x = filters.blur_pool(x, self.size, 1, "binomial", "circular")
    x = aps_ops.pad_to_multiple(x, self.stride)
    return aps_ops.aps_pool(x, self.stride, self.norm, index)


def max_pool_downsample(down: Downsampler, x: jax.Array, window: int | Sequence[int],
                        padding: int | Sequence[tuple[int, int]], train: bool = False,
                        index: Index = None) -> tuple[jax.Array, Index]:
  """A downsampling max pool (a stem pool, VGG's pools): the family's own strided pool (``window``, ``padding``)
  for the plain method; otherwise antialiased-cnns' dense 2×2 stride-1 max pool followed by ``down``. The dense
  pool wraps by (0, 1) on circular axes (it keeps the size and commutes with circular shifts) and is padded by
  ``down.dense_pool_pad`` with -inf on the others.

  Example:
    >>> down = downsampler('aps', 2, 'circular')
    >>> y, index = down.apply({}, jnp.ones((1, 5, 5, 1)), method=lambda m, x: max_pool_downsample(m, x, 3, 1))
    >>> y.shape, index.shape
    ((1, 3, 3, 1), (1,))
  """
  if down.preceding_stride_kept:
    return border_max_pool(x, window, down.stride, padding, down.conv_mode), None
  modes = axis_modes(down.conv_mode, x.ndim - 2)
  x = border_max_pool(x, 2, 1, [(0, 1) if m == "circular" else down.dense_pool_pad for m in modes], modes)
  return down(x, train, index)


def _parse_none(fields: list[str]) -> dict[str, Any]:
  if fields:
    raise ValueError("'none' takes no options")
  return {}


def _parse_blur(fields: list[str]) -> dict[str, Any]:
  if len(fields) not in (0, 2):
    raise ValueError("give both kind and size, or neither")
  kind, size = (fields[0], int(fields[1])) if fields else ("triangle", 3)
  filters.filter_taps(kind, size)
  return {"kind": kind, "size": size}


def _parse_aps(fields: list[str]) -> dict[str, Any]:
  if len(fields) > 2:
    raise ValueError("at most a norm and a blur size")
  norm = fields[0] if fields else "l2"
  size = int(fields[1]) if len(fields) > 1 else 1
  check_choice("norm", norm, aps_ops.APS_NORMS)
  filters.filter_taps("binomial", size)
  return {"norm": norm, "size": size}


register_downsampler("none", PlainDownsample, _parse_none, ("None",))
register_downsampler("blur", BlurDownsample, _parse_blur, ("'blur'", "'blur:<kind>:<size>'"))
register_downsampler("maxblur", MaxBlurDownsample, _parse_blur, ("'maxblur'", "'maxblur:<kind>:<size>'"))
register_downsampler("aps", APSDownsample, _parse_aps, ("'aps'", "'aps:<norm>'", "'aps:<norm>:<blur_size>'"))


def downsampler(spec: str | AntiAlias | None, stride: int | Sequence[int], conv_mode: Modes,
                name: str | None = None) -> nn.Module:
  """The layer that performs a stride-``stride`` step for ``spec`` under ``conv_mode``.

  Args:
    spec: an ``antialias`` spec (see the module docstring) or a parsed ``AntiAlias``.
    stride: int or one per spatial dim.
    conv_mode: one border mode or one per spatial dim (decides how a blur pads).
    name: the flax module name.

  Returns:
    A module with ``__call__(x, train=False, index=None) -> (y, index)`` and ``preceding_stride``.

  Example:
    >>> layer = downsampler('blur:binomial:3', 2, 'circular')
    >>> y, index = layer.apply({}, jnp.ones((1, 5, 5, 2)))
    >>> y.shape, index
    ((1, 3, 3, 2), None)
    >>> downsampler(None, 2, 'same').preceding_stride, layer.preceding_stride
    (2, 1)
  """
  aa = parse_antialias(spec)
  return _REGISTRY[aa.method].layer_cls(stride=stride, conv_mode=conv_mode, **dict(aa.options), name=name)

__all__ = ["Downsampler", "AntiAlias", "parse_antialias", "antialias_forms", "register_downsampler", "downsampler",
           "blur_pad_mode", "axis_modes", "border_blur_pool", "border_max_pool", "PlainDownsample", "BlurDownsample",
           "MaxBlurDownsample", "APSDownsample", "max_pool_downsample"]
