"""Anti-aliasing filters and BlurPool (Zhang, ICML 2019), and max pooling with a border mode.

``blur_pool`` low-pass filters every channel with a fixed separable filter and subsamples. It is written as
a shift-and-add over strided slices, one spatial dim at a time: each dim costs ``size`` multiply-adds per
*output* element of that pass and the stride is applied as early as possible — much cheaper on CPU than a
depthwise ``conv_general_dilated``. The padding is never materialised (border outputs are computed from the
rows the padding would copy), and the reverse-mode derivative is a hand-written transposed blur rather than
autodiff, which on CPU would materialise one padded cotangent per tap.

Derivatives: the op is linear, so its JVP is the op itself applied to the tangent and its VJP is its transpose.
The blur and its hand-written adjoint are two JAX primitives, each declared the other's transpose: forward mode
(``jvp``, ``jacfwd``, ``hessian``) and reverse mode (``grad``, also nested) both run the hand-written passes, and
``vmap`` folds a mapped axis into the batch. (A ``custom_vjp`` forbids forward mode; a ``custom_jvp`` whose
tangent is written as ``jax.linear_transpose`` of the adjoint works but transposes the adjoint's concatenations
into pads + adds, measured 1.2-1.6x slower forward+backward.)
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.core import ShapedArray
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir

from jaxborders.ops import padding as padding_ops
from jaxborders.ops.checks import as_modes, as_tuple, check_choice, spatial_rank

FilterKind = Literal["rectangle", "triangle", "binomial", "window", "least_squares"]
BlurPadMode = Literal["reflect", "replicate", "zero", "circular", "full", "valid"]
BLUR_PAD_MODES: tuple[str, ...] = ("reflect", "replicate", "zero", "circular", "full", "valid")

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
  """``(lo, hi)`` padding of a blur of ``size`` taps: ``((f-1)//2, ceil((f-1)/2))`` + ``pad_off``, ``f - 1`` (+
  ``pad_off``) per side for the F-Conv ``full`` blur, and none for ``valid`` (which takes no ``pad_off``)."""
  if pad_mode == "valid":
    return (0, 0)
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


def _blur_pool_forward(x: jax.Array, taps: tuple[float, ...], strides: tuple[int, ...],
                       pads: tuple[tuple[int, int], ...], pad_modes: tuple[str, ...]) -> jax.Array:
  for axis in _blur_pool_axes(len(strides)):
    (lo, hi), s = pads[axis - 1], strides[axis - 1]
    x = _blur_axis(x, axis, taps, s, lo, hi, pad_modes[axis - 1])
  return x


def _blur_pool_adjoint(g: jax.Array, taps: tuple[float, ...], strides: tuple[int, ...],
                       pads: tuple[tuple[int, int], ...], pad_modes: tuple[str, ...],
                       shape: tuple[int, ...]) -> jax.Array:
  """The transpose of ``_blur_pool_forward`` for an input of ``shape``: the passes' adjoints in reverse order."""
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
  return g


def _blur_pool_out_shape(shape, taps, strides, pads) -> tuple[int, ...]:
  spatial = [(n + lo + hi - len(taps)) // s + 1 for n, (lo, hi), s in zip(shape[1:-1], pads, strides)]
  return (shape[0], *spatial, shape[-1])


# Two linear primitives, each the other's transpose: the blur (forward pass) and its hand-written adjoint. Their
# JVPs are themselves applied to the tangent (``ad.deflinear2``), so forward mode, reverse mode and any nesting
# (Hessians) run the hand-written passes, never autodiff of them; both lower to their shift-and-add jnp code.
_blur_p = Primitive("jaxborders_blur_pool")
_blur_adjoint_p = Primitive("jaxborders_blur_pool_adjoint")


def _blur_abstract(x, *, taps, strides, pads, pad_modes):
  return ShapedArray(_blur_pool_out_shape(x.shape, taps, strides, pads), x.dtype)


def _blur_adjoint_abstract(g, *, taps, strides, pads, pad_modes, shape):
  return ShapedArray(shape, g.dtype)


def _blur_transpose(ct, x, *, taps, strides, pads, pad_modes):
  if type(ct) is ad.Zero:
    return [ad.Zero(x.aval)]
  return [_blur_adjoint_p.bind(ct, taps=taps, strides=strides, pads=pads, pad_modes=pad_modes, shape=x.aval.shape)]


def _blur_adjoint_transpose(ct, g, *, taps, strides, pads, pad_modes, shape):
  if type(ct) is ad.Zero:
    return [ad.Zero(g.aval)]
  return [_blur_p.bind(ct, taps=taps, strides=strides, pads=pads, pad_modes=pad_modes)]


def _merge_batch(args, dims):
  """vmap: the ops act per sample, so a mapped axis folds into the sample axis N."""
  (x,), (d,) = args, dims
  x = jnp.moveaxis(x, d, 0)
  return x.reshape(-1, *x.shape[2:]), x.shape[:2]


def _blur_batch(args, dims, **params):
  x, (b, n) = _merge_batch(args, dims)
  y = _blur_p.bind(x, **params)
  return y.reshape(b, n, *y.shape[1:]), 0


def _blur_adjoint_batch(args, dims, *, shape, **params):
  g, (b, n) = _merge_batch(args, dims)
  dx = _blur_adjoint_p.bind(g, shape=(b * n, *shape[1:]), **params)
  return dx.reshape(b, n, *dx.shape[1:]), 0


def _register_blur_primitives() -> None:
  forward = lambda x, **p: _blur_pool_forward(x, **p)
  adjoint = lambda g, **p: _blur_pool_adjoint(g, **p)
  _blur_p.def_impl(forward)
  _blur_adjoint_p.def_impl(adjoint)
  _blur_p.def_abstract_eval(_blur_abstract)
  _blur_adjoint_p.def_abstract_eval(_blur_adjoint_abstract)
  mlir.register_lowering(_blur_p, mlir.lower_fun(forward, multiple_results=False))
  mlir.register_lowering(_blur_adjoint_p, mlir.lower_fun(adjoint, multiple_results=False))
  ad.deflinear2(_blur_p, _blur_transpose)
  ad.deflinear2(_blur_adjoint_p, _blur_adjoint_transpose)
  batching.primitive_batchers[_blur_p] = _blur_batch
  batching.primitive_batchers[_blur_adjoint_p] = _blur_adjoint_batch


_register_blur_primitives()


def _blur_pool_linear(x: jax.Array, taps: tuple[float, ...], strides: tuple[int, ...],
                      pads: tuple[tuple[int, int], ...], pad_modes: tuple[str, ...]) -> jax.Array:
  return _blur_p.bind(x, taps=taps, strides=strides, pads=pads, pad_modes=pad_modes)


@functools.partial(jax.jit, static_argnames=("taps", "strides", "pads", "pad_modes"))
def _blur_pool(x: jax.Array, taps: tuple[float, ...], strides: tuple[int, ...],
               pads: tuple[tuple[int, int], ...], pad_modes: tuple[str, ...]) -> jax.Array:
  """Separable depthwise blur + subsampling; one pad mode and one ``(lo, hi)`` per spatial dim."""
  return _blur_pool_linear(x, taps, strides, pads, pad_modes)


def blur_pool(x: jax.Array, size: int = 3, stride: int | Sequence[int] = 2, kind: FilterKind = "binomial",
              pad_mode: BlurPadMode | Sequence[BlurPadMode] = "reflect", pad_off: int = 0) -> jax.Array:
  """Anti-aliased downsampling: a fixed per-channel low-pass filter, then subsampling (BlurPool).

  Matches ``antialiased_cnns.BlurPool`` (NCHW there, channels-last here): pad ``(f-1)//2`` before and
  ``ceil((f-1)/2)`` after (+ ``pad_off``), filter with the outer product of ``filter_taps(kind, size)``,
  keep every ``stride``-th sample starting at 0. ``size=1`` is plain subsampling ``x[:, ::s, ::s]``.

  Args:
    x: (N, *spatial, C) with 1-3 spatial dims; any float dtype (taps are cast to it); any array-like.
    size: number of taps per dim.
    stride: int or one per spatial dim (e.g. ``(1, 2, 2)`` for video); 1 = blur only.
    kind: filter family, see ``filter_taps``.
    pad_mode: one per spatial dim or one for all: ``reflect`` (AA default), ``replicate``, ``zero``,
      ``circular`` (APS), ``full`` (CWB's F-Conv blur: zeros, ``f-1`` per side) or ``valid`` (no padding: the
      output shrinks by ``size - 1`` before striding; ``pad_off`` must then be 0).
    pad_off: extra padding on both sides of every padded dim.

  Returns:
    (N, *out, C) with ``out = floor((n + lo + hi - size) / stride) + 1`` per dim.

  Example:
    >>> x = jnp.arange(8.).reshape(1, 8, 1)
    >>> blur_pool(x, size=3)[0, :, 0].tolist()  # reflect pad: [1, 0..7, 6]
    [0.5, 2.0, 4.0, 6.0]
    >>> blur_pool(x, size=1)[0, :, 0].tolist()
    [0.0, 2.0, 4.0, 6.0]
    >>> blur_pool(x, size=3, pad_mode='valid')[0, :, 0].tolist()  # windows [0..2], [2..4], [4..6]
    [1.0, 3.0, 5.0]
    >>> blur_pool(jnp.ones((1, 6, 6, 1)), pad_mode=('valid', 'full')).shape
    (1, 2, 4, 1)
  """
  x = jnp.asarray(x)
  rank = spatial_rank("x", x.shape)
  pad_modes = as_modes("pad_mode", pad_mode, rank, BLUR_PAD_MODES)
  taps = tuple(float(t) for t in filter_taps(kind, size))
  strides = as_tuple("stride", stride, rank)
  if not isinstance(pad_off, (int, np.integer)) or pad_off < 0:
    raise ValueError(f"pad_off must be an int >= 0, got {pad_off!r}.")
  if pad_off and "valid" in pad_modes:
    raise ValueError(f"pad_off={pad_off} pads, but pad_mode {pad_mode!r} has a 'valid' (unpadded) dim; "
                     f"use pad_off=0 or pad_mode 'zero' there.")
  pads = tuple(blur_padding(size, m, int(pad_off)) for m in pad_modes)
  for axis, (n, (lo, hi), m) in enumerate(zip(x.shape[1:-1], pads, pad_modes)):
    if n + lo + hi < size:
      raise ValueError(f"blur_pool: spatial dim {axis} has size {n}, too small for a {size}-tap filter with "
                       f"pad_mode {m!r}, padding ({lo}, {hi}) (input must be at least {size - lo - hi}).")
    if m == "reflect" and max(lo, hi) > n - 1:
      raise ValueError(f"blur_pool: pad_mode 'reflect' pads {max(lo, hi)} on spatial dim {axis} of size {n}; "
                       f"reflect padding needs size >= {max(lo, hi) + 1}.")
    if m == "circular" and max(lo, hi) > n:
      raise ValueError(f"blur_pool: pad_mode 'circular' pads {max(lo, hi)} on spatial dim {axis} of size {n}.")
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise ValueError(f"x must be a floating-point array, got dtype {x.dtype}.")
  return _blur_pool(x, taps, strides, pads, pad_modes)


def max_pool(x: jax.Array, window: int | Sequence[int], stride: int | Sequence[int] = 1,
             padding: int | Sequence[int] | None = None, mode: padding_ops.Modes = "valid") -> jax.Array:
  """Max pooling over the spatial dims, padded per dim as its border ``mode`` says.

  The padding *amount* is ``padding_for(mode, window)`` (``valid``: none; ``same`` / ``partial`` /
  ``circular`` / ``reflect`` / ``replicate``: ``((w-1)//2, rest)``; ``full``: ``w-1`` per side), or a
  symmetric ``(p, p)`` per dim when ``padding`` is given. The *fill* follows the mode: the zero-padded modes
  (``valid``, ``same``, ``full``, ``partial``) pad with -inf as PyTorch's ``MaxPoolNd`` does (a padded position
  never wins); ``circular`` wraps, so a circular network stays exactly equivariant to circular shifts;
  ``reflect`` mirrors and ``replicate`` repeats the edge.

  Args:
    x: (N, *spatial, C), 1-3 spatial dims (any array-like).
    window: int or one per spatial dim.
    stride: int or one per spatial dim.
    padding: None (from ``mode``) or an int / one int per dim (PyTorch's ``padding``).
    mode: one of ``jaxborders.MODES`` or one per spatial dim.

  Returns:
    (N, *out, C) with ``out = floor((n + lo + hi - window) / stride) + 1``.

  Example:
    >>> x = jnp.array([3., 1., 0., 2.]).reshape(1, 4, 1)
    >>> max_pool(x, 3, mode='same')[0, :, 0].tolist()  # -inf padding (PyTorch padding=1)
    [3.0, 3.0, 2.0, 2.0]
    >>> max_pool(x, 3, mode='circular')[0, :, 0].tolist()  # wraps: 2 meets 3
    [3.0, 3.0, 2.0, 3.0]
    >>> max_pool(x, 2, mode='circular')[0, :, 0].tolist()  # pad (0, 1) wrapped, window 2, stride 1
    [3.0, 1.0, 2.0, 3.0]
  """
  x = jnp.asarray(x)
  rank = spatial_rank("x", x.shape)
  ws = as_tuple("window", window, rank)
  ss = as_tuple("stride", stride, rank)
  modes = as_modes("mode", mode, rank, padding_ops.MODES)
  if padding is None:
    pads = padding_ops.padding_for(modes, ws)
  else:
    pads = tuple((p, p) for p in as_tuple("padding", padding, rank, minimum=0))
  for axis, (n, w, (lo, hi), m) in enumerate(zip(x.shape[1:-1], ws, pads, modes)):
    if n + lo + hi < w:
      raise ValueError(f"max_pool: spatial dim {axis} has size {n}, smaller than the window {w} (padding "
                       f"({lo}, {hi}), mode {m!r}; input must be at least {w - lo - hi}).")
    if (m == "reflect" and max(lo, hi) > n - 1) or (m == "circular" and max(lo, hi) > n):
      raise ValueError(f"max_pool: mode {m!r} pads {max(lo, hi)} on spatial dim {axis} of size {n}, more than "
                       f"it can {'mirror' if m == 'reflect' else 'wrap'}.")
  explicit = [m in padding_ops.EXPLICIT_MODES for m in modes]
  x = padding_ops._pad_spatial(x, modes, [p if e else (0, 0) for p, e in zip(pads, explicit)])
  fill_pads = tuple((0, 0) if e else p for p, e in zip(pads, explicit))
  lowest = -jnp.inf if jnp.issubdtype(x.dtype, jnp.floating) else jnp.iinfo(x.dtype).min
  return lax.reduce_window(x, lowest, lax.max, (1, *ws, 1), (1, *ss, 1),
                           ((0, 0), *fill_pads, (0, 0)))


def max_blur_pool(x: jax.Array, pool_size: int = 2, size: int = 3, stride: int | Sequence[int] = 2,
                  kind: FilterKind = "binomial", pad_mode: BlurPadMode | Sequence[BlurPadMode] = "reflect",
                  pad_off: int = 0) -> jax.Array:
  """MaxBlurPool (AA): a dense max pool (window ``pool_size``, stride 1, no padding), then ``blur_pool``.

  ``pad_mode`` (one or one per spatial dim) is the blur's, see ``blur_pool``.

  Example:
    >>> max_blur_pool(jnp.zeros((2, 9, 9, 3))).shape  # 9 -> 8 (dense max) -> 4 (blur, stride 2)
    (2, 4, 4, 3)
  """
  x = jnp.asarray(x)
  spatial_rank("x", x.shape)
  return blur_pool(max_pool(x, pool_size, 1), size, stride, kind, pad_mode, pad_off)


__all__ = ["FILTER_KINDS", "FILTER_SIZES", "BLUR_PAD_MODES", "filter_taps", "blur_padding", "blur_pool",
           "max_pool", "max_blur_pool"]
