"""Anti-aliasing filters and BlurPool (Zhang, ICML 2019; docs/antialiasing.md).

``blur_pool`` low-pass filters every channel with a fixed separable filter and subsamples. It is written as
a shift-and-add over strided slices, one spatial dim at a time: each dim costs ``size`` multiply-adds per
*output* element of that pass and the stride is applied as early as possible — much cheaper on CPU than a
depthwise ``conv_general_dilated``. The padding is never materialised (border outputs are computed from the
rows the padding would copy), and the backward pass is a hand-written transposed blur (custom VJP) rather
than autodiff, which on CPU would materialise one padded cotangent per tap. Consequence: ``blur_pool``
supports reverse-mode differentiation (``grad``, ``vjp``, also of higher order) but not forward mode
(``jvp``, ``jacfwd``).
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


def _source_index(p: int, n: int, pad_mode: str) -> int | None:
  """Which input index the padded position ``p`` (relative to the unpadded start) reads; None = a zero."""
  if 0 <= p < n:
    return p
  if pad_mode == "reflect":
    return -p if p < 0 else 2 * (n - 1) - p
  if pad_mode == "replicate":
    return min(max(p, 0), n - 1)
  if pad_mode == "circular":
    return p % n
  return None  # zero / full


def _rows(x: jax.Array, axis: int, index: int) -> jax.Array:
  return lax.slice_in_dim(x, index, index + 1, axis=axis)


def _weighted_sum(terms: Sequence[tuple[jax.Array, float]], like: jax.Array, axis: int) -> jax.Array:
  """``sum(part * w)`` in the given order (the order of the taps, so results do not depend on the code path);
  a zero row when there are no terms."""
  acc = None
  for part, w in terms:
    term = part * jnp.asarray(w, like.dtype)
    acc = term if acc is None else acc + term
  if acc is None:
    shape = list(like.shape)
    shape[axis] = 1
    acc = jnp.zeros(shape, like.dtype)
  return acc


def _concat(pieces: list[jax.Array], axis: int) -> jax.Array:
  return pieces[0] if len(pieces) == 1 else lax.concatenate(pieces, axis)


def _blur_axis(x: jax.Array, axis: int, taps: tuple[float, ...], s: int, lo: int, hi: int,
               pad_mode: str) -> jax.Array:
  """One separable pass: ``y[i] = sum_t taps[t] * xpad[t + s*i]`` along ``axis``, ``xpad`` never built.

  The outputs whose taps all land inside ``x`` are one sum of strided slices of ``x``; the few border outputs
  are computed row by row from the rows the padding would have copied; then one concatenate. Materialising
  the padded input (what ``jnp.pad`` does) costs a full extra pass, and mixing padding into every tap's slice
  makes XLA:CPU split the pass into several fusions; this form compiles to one loop fusion per pass.
  """
  n, k = x.shape[axis], len(taps)
  n_out = (n + lo + hi - k) // s + 1
  first = min(n_out, -(-lo // s))  # first output whose taps all read inside x
  stop = max(first, min(n_out, (n - 1 + lo - (k - 1)) // s + 1))  # one past the last such output

  def border_row(i: int) -> jax.Array:
    terms = [(_rows(x, axis, q), tap) for t, tap in enumerate(taps)
             if (q := _source_index(t + s * i - lo, n, pad_mode)) is not None]
    return _weighted_sum(terms, x, axis)

  pieces = [border_row(i) for i in range(first)]
  if stop > first:
    terms = []
    for t, tap in enumerate(taps):
      start = t + s * first - lo
      terms.append((lax.slice_in_dim(x, start, start + (stop - first - 1) * s + 1, stride=s, axis=axis), tap))
    pieces.append(_weighted_sum(terms, x, axis))
  pieces += [border_row(i) for i in range(stop, n_out)]
  return _concat(pieces, axis)


def _blur_axis_adjoint(g: jax.Array, axis: int, taps: tuple[float, ...], s: int, lo: int, hi: int,
                       pad_mode: str, n: int) -> jax.Array:
  """The transpose of ``_blur_axis`` (``n`` = its input length): ``dx[q] = sum taps[t] * g[i]`` over the
  ``(t, i)`` whose padded position ``t + s*i - lo`` reads input ``q``.

  Interior rows are a sum of interior-padded (upsampled by ``s``) slices of ``g`` shifted by each tap, i.e.
  the transposed blur as shift-and-add; rows that also receive padding copies (reflect / replicate /
  circular) are computed one by one. Autodiff of the forward instead builds one full-size padded cotangent
  per tap and then folds the padding back, several times slower on CPU.
  """
  k, n_out = len(taps), g.shape[axis]
  copied = {q for t in range(k) for i in range(n_out) if not 0 <= (p := t + s * i - lo) < n
            and (q := _source_index(p, n, pad_mode)) is not None}
  # Rows [first, stop) get exactly one g row per tap of matching phase and no padding copies.
  first, stop = max(0, k - 1 - lo), min(n, s * (n_out - 1) - lo + 1)
  middle = (first + stop) // 2
  first = max([first] + [q + 1 for q in copied if q < middle])
  stop = min([stop] + [q for q in copied if q >= middle])

  def edge_row(q: int) -> jax.Array:
    terms = [(_rows(g, axis, i), tap) for t, tap in enumerate(taps) for i in range(n_out)
             if _source_index(t + s * i - lo, n, pad_mode) == q]
    return _weighted_sum(terms, g, axis)

  if stop <= first:
    return _concat([edge_row(q) for q in range(n)], axis)
  acc = None
  for t, tap in enumerate(taps):
    q0 = first + (t - lo - first) % s  # first row in [first, stop) that tap t reaches
    if q0 >= stop:
      continue
    q1 = stop - 1 - (stop - 1 - (t - lo)) % s
    part = lax.slice_in_dim(g, (q0 + lo - t) // s, (q1 + lo - t) // s + 1, axis=axis) * jnp.asarray(tap, g.dtype)
    config = [(0, 0, 0)] * g.ndim
    config[axis] = (q0 - first, stop - 1 - q1, s - 1)
    term = lax.pad(part, jnp.zeros((), g.dtype), config)
    acc = term if acc is None else acc + term
  if acc is None:  # no tap reaches the middle rows (stride larger than the filter)
    shape = list(g.shape)
    shape[axis] = stop - first
    acc = jnp.zeros(shape, g.dtype)
  return _concat([edge_row(q) for q in range(first)] + [acc] + [edge_row(q) for q in range(stop, n)], axis)


def _blur_pool_axes(rank: int) -> tuple[int, ...]:
  # Last spatial dim first: measured faster on CPU for NHWC (the first pass streams whole contiguous rows).
  return tuple(range(rank, 0, -1))


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3, 4))
def _blur_pool_linear(x: jax.Array, taps: tuple[float, ...], strides: tuple[int, ...],
                      pads: tuple[tuple[int, int], ...], pad_modes: tuple[str, ...]) -> jax.Array:
  for axis in _blur_pool_axes(len(strides)):
    (lo, hi), s = pads[axis - 1], strides[axis - 1]
    x = _blur_axis(x, axis, taps, s, lo, hi, pad_modes[axis - 1])
  return x


def _blur_pool_fwd(x: jax.Array, taps: tuple[float, ...], strides: tuple[int, ...],
                   pads: tuple[tuple[int, int], ...], pad_modes: tuple[str, ...]) -> tuple[jax.Array, tuple[int, ...]]:
  # The op is linear: the backward pass needs only the input shape, no residual arrays.
  return _blur_pool_linear(x, taps, strides, pads, pad_modes), x.shape


def _blur_pool_bwd(taps: tuple[float, ...], strides: tuple[int, ...], pads: tuple[tuple[int, int], ...],
                   pad_modes: tuple[str, ...], shape: tuple[int, ...], g: jax.Array) -> tuple[jax.Array]:
  axes = _blur_pool_axes(len(strides))
  lengths = []  # input length of each pass, in forward order
  sizes = list(shape)
  for axis in axes:
    (lo, hi), s = pads[axis - 1], strides[axis - 1]
    lengths.append(sizes[axis])
    sizes[axis] = (sizes[axis] + lo + hi - len(taps)) // s + 1
  for axis, n in zip(axes[::-1], lengths[::-1]):
    (lo, hi), s = pads[axis - 1], strides[axis - 1]
    g = _blur_axis_adjoint(g, axis, taps, s, lo, hi, pad_modes[axis - 1], n)
  return (g,)


_blur_pool_linear.defvjp(_blur_pool_fwd, _blur_pool_bwd)


@functools.partial(jax.jit, static_argnames=("taps", "strides", "pads", "pad_mode"))
def _blur_pool(x: jax.Array, taps: tuple[float, ...], strides: tuple[int, ...],
               pads: tuple[tuple[int, int], ...], pad_mode: str | tuple[str, ...]) -> jax.Array:
  """Separable depthwise blur + subsampling with a hand-written transpose (custom VJP, reverse mode only).

  ``pad_mode`` is one mode or one per spatial dim (``zero`` with pads ``(0, 0)`` = no padding).
  """
  pad_modes = (pad_mode,) * len(strides) if isinstance(pad_mode, str) else tuple(pad_mode)
  return _blur_pool_linear(x, taps, strides, pads, pad_modes)


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
