"""Anti-aliasing filters and BlurPool (Zhang, ICML 2019; SPEC §3).

``blur_pool`` low-pass filters every channel with a fixed separable filter and subsamples. It is written as
a shift-and-add over strided slices, one spatial dim at a time: each dim costs ``size`` multiply-adds per
*output* element of that pass, the stride is applied as early as possible, and autodiff of strided slices is
an interior-padded ``lax.pad`` — much cheaper on CPU than a depthwise ``conv_general_dilated``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxborders.ops.checks import as_tuple, check_choice, spatial_rank

FilterKind = Literal["rectangle", "triangle", "binomial", "window", "least_squares"]
BlurPadMode = Literal["reflect", "replicate", "zero", "circular", "full"]
BLUR_PAD_MODES: tuple[str, ...] = ("reflect", "replicate", "zero", "circular", "full")

# The BlurPool paper's Table 1 filter bank (un-normalised taps). Rectangle, triangle and binomial are
# generated; window and least-squares filters are the paper's tabulated designs.
_TABULATED: dict[str, dict[int, tuple[float, ...]]] = {
    "window": {3: (1.0, 1.57, 1.0), 6: (-1.0, 1.67, 5.0, 5.0, 1.67, -1.0), 7: (-1.0, 0.0, 3.0, 4.71, 3.0, 0.0, -1.0)},
    "least_squares": {3: (1.0, 1.63, 1.0), 7: (-1.0, 0.0, 3.80, 6.13, 3.80, 0.0, -1.0)},
}
_GENERATED_SIZES = tuple(range(1, 8))
FILTER_SIZES: dict[str, tuple[int, ...]] = {
    "rectangle": _GENERATED_SIZES,
    "triangle": _GENERATED_SIZES,
    "binomial": _GENERATED_SIZES,
    "window": tuple(_TABULATED["window"]),
    "least_squares": tuple(_TABULATED["least_squares"]),
}
FILTER_KINDS: tuple[str, ...] = tuple(FILTER_SIZES)


def filter_taps(kind: FilterKind = "binomial", size: int = 3) -> np.ndarray:
  """The normalised 1D taps of an anti-aliasing filter (they sum to 1).

  Args:
    kind: ``rectangle`` ([1]*n), ``triangle`` ([1,2,..,2,1]), ``binomial`` (Pascal's row n-1), ``window``
      (sizes 3, 6, 7) or ``least_squares`` (sizes 3, 7), from the BlurPool paper's Table 1.
    size: number of taps.

  Returns:
    float64 array of shape (size,).

  Example:
    >>> (filter_taps('binomial', 5) * 16).tolist()
    [1.0, 4.0, 6.0, 4.0, 1.0]
    >>> (filter_taps('triangle', 5) * 9).tolist()
    [1.0, 2.0, 3.0, 2.0, 1.0]
  """
  check_choice("kind", kind, FILTER_KINDS)
  sizes = FILTER_SIZES[kind]
  if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size not in sizes:
    raise ValueError(f"size={size!r} is not available for kind={kind!r}; accepted sizes: {list(sizes)}.")
  if kind == "rectangle":
    taps = np.ones(size)
  elif kind == "triangle":
    taps = np.minimum(np.arange(1, size + 1), np.arange(size, 0, -1)).astype(np.float64)
  elif kind == "binomial":
    taps = np.array([1.0])
    for _ in range(size - 1):
      taps = np.convolve(taps, [1.0, 1.0])
  else:
    taps = np.array(_TABULATED[kind][size], dtype=np.float64)
  return taps / taps.sum()


def blur_padding(size: int, pad_mode: BlurPadMode = "reflect", pad_off: int = 0) -> tuple[int, int]:
  """``(lo, hi)`` padding of a blur of ``size`` taps: ``((f-1)//2, ceil((f-1)/2))`` + ``pad_off``, or
  ``f - 1`` per side for the F-Conv ``full`` blur."""
  if pad_mode == "full":
    return (size - 1 + pad_off, size - 1 + pad_off)
  return ((size - 1) // 2 + pad_off, size // 2 + pad_off)


def _pad_axis(x: jax.Array, axis: int, lo: int, hi: int, pad_mode: str) -> jax.Array:
  if lo == 0 and hi == 0:
    return x
  widths = [(0, 0)] * x.ndim
  widths[axis] = (lo, hi)
  if pad_mode in ("zero", "full"):
    return jnp.pad(x, widths)
  return jnp.pad(x, widths, mode={"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[pad_mode])


@functools.partial(jax.jit, static_argnames=("taps", "strides", "pads", "pad_mode"))
def _blur_pool(x: jax.Array, taps: tuple[float, ...], strides: tuple[int, ...],
               pads: tuple[tuple[int, int], ...], pad_mode: str) -> jax.Array:
  size = len(taps)
  for axis, (s, (lo, hi)) in enumerate(zip(strides, pads), start=1):
    xp = _pad_axis(x, axis, lo, hi, pad_mode)
    n_out = (xp.shape[axis] - size) // s + 1
    if size == 1:  # plain subsampling, as AA's filt_size=1
      x = lax.slice_in_dim(xp, 0, (n_out - 1) * s + 1, stride=s, axis=axis)
      continue
    acc = None
    for t, tap in enumerate(taps):
      part = lax.slice_in_dim(xp, t, t + (n_out - 1) * s + 1, stride=s, axis=axis)
      term = part * jnp.asarray(tap, dtype=x.dtype)
      acc = term if acc is None else acc + term
    x = acc
  return x


def blur_pool(x: jax.Array, size: int = 3, stride: int | Sequence[int] = 2, kind: FilterKind = "binomial",
              pad_mode: BlurPadMode = "reflect", pad_off: int = 0) -> jax.Array:
  """Anti-aliased downsampling: a fixed per-channel low-pass filter, then subsampling (BlurPool).

  Matches ``antialiased_cnns.BlurPool`` (NCHW there, channels-last here): pad ``(f-1)//2`` before and
  ``ceil((f-1)/2)`` after (+ ``pad_off``), filter with the outer product of ``filter_taps(kind, size)``,
  keep every ``stride``-th sample starting at 0. ``size=1`` is plain subsampling ``x[:, ::s, ::s]``.

  Args:
    x: (N, *spatial, C) with 1-3 spatial dims; any float dtype (taps are cast to it).
    size: number of taps per dim.
    stride: int or one per spatial dim (e.g. ``(1, 2, 2)`` for video); 1 = blur only.
    kind: filter family, see ``filter_taps``.
    pad_mode: ``reflect`` (AA default), ``replicate``, ``zero``, ``circular`` (APS) or ``full`` (CWB's F-Conv
      blur: zeros, ``f-1`` per side).
    pad_off: extra padding on both sides of every dim.

  Returns:
    (N, *out, C) with ``out = floor((n + lo + hi - size) / stride) + 1``.

  Example:
    >>> x = jnp.arange(8.).reshape(1, 8, 1)
    >>> blur_pool(x, size=3)[0, :, 0].tolist()  # reflect pad: [1, 0..7, 6]
    [0.5, 2.0, 4.0, 6.0]
    >>> blur_pool(x, size=1)[0, :, 0].tolist()
    [0.0, 2.0, 4.0, 6.0]
  """
  rank = spatial_rank("x", x.shape)
  check_choice("pad_mode", pad_mode, BLUR_PAD_MODES)
  taps = tuple(float(t) for t in filter_taps(kind, size))
  strides = as_tuple("stride", stride, rank)
  if not isinstance(pad_off, (int, np.integer)) or pad_off < 0:
    raise ValueError(f"pad_off must be an int >= 0, got {pad_off!r}.")
  lo, hi = blur_padding(size, pad_mode, int(pad_off))
  for axis, n in enumerate(x.shape[1:-1]):
    if n + lo + hi < size:
      raise ValueError(f"blur_pool: spatial dim {axis} has size {n}, too small for a {size}-tap filter with "
                       f"padding ({lo}, {hi}).")
    if pad_mode == "reflect" and max(lo, hi) > n - 1:
      raise ValueError(f"blur_pool: pad_mode 'reflect' pads {max(lo, hi)} on spatial dim {axis} of size {n}; "
                       f"reflect padding needs size >= {max(lo, hi) + 1}.")
    if pad_mode == "circular" and max(lo, hi) > n:
      raise ValueError(f"blur_pool: pad_mode 'circular' pads {max(lo, hi)} on spatial dim {axis} of size {n}.")
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise ValueError(f"x must be a floating-point array, got dtype {x.dtype}.")
  return _blur_pool(x, taps, strides, ((lo, hi),) * rank, pad_mode)


def max_pool(x: jax.Array, window: int | Sequence[int], stride: int | Sequence[int] = 1,
             padding: int | Sequence[int] = 0) -> jax.Array:
  """Max pooling over the spatial dims with symmetric padding by -inf (PyTorch ``MaxPoolNd`` semantics)."""
  rank = spatial_rank("x", x.shape)
  ws = as_tuple("window", window, rank)
  ss = as_tuple("stride", stride, rank)
  ps = as_tuple("padding", padding, rank, minimum=0)
  for axis, (n, w, p) in enumerate(zip(x.shape[1:-1], ws, ps)):
    if n + 2 * p < w:
      raise ValueError(f"max_pool: spatial dim {axis} has size {n}, smaller than the window {w} (padding {p}).")
  return lax.reduce_window(x, -jnp.inf if jnp.issubdtype(x.dtype, jnp.floating) else jnp.iinfo(x.dtype).min,
                           lax.max, (1, *ws, 1), (1, *ss, 1), ((0, 0), *((p, p) for p in ps), (0, 0)))


def max_blur_pool(x: jax.Array, pool_size: int = 2, size: int = 3, stride: int | Sequence[int] = 2,
                  kind: FilterKind = "binomial", pad_mode: BlurPadMode = "reflect", pad_off: int = 0) -> jax.Array:
  """MaxBlurPool (AA): a dense max pool (window ``pool_size``, stride 1, no padding), then ``blur_pool``.

  Example:
    >>> max_blur_pool(jnp.zeros((2, 9, 9, 3))).shape  # 9 -> 8 (dense max) -> 4 (blur, stride 2)
    (2, 4, 4, 3)
  """
  spatial_rank("x", x.shape)
  return blur_pool(max_pool(x, pool_size, 1), size, stride, kind, pad_mode, pad_off)


__all__ = ["FILTER_KINDS", "FILTER_SIZES", "BLUR_PAD_MODES", "filter_taps", "blur_padding", "blur_pool",
           "max_pool", "max_blur_pool"]
