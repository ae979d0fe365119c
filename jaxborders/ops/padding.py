"""Border modes: padding arithmetic, padding, convolution and location counts.

All border handling of the project lives in this module (F-Conv: Kayhan & van Gemert, CVPR 2020). Layout is
channels-last and batched: (N, L, C), (N, H, W, C) or (N, D, H, W, C); kernels are (*kernel_size, C_in // groups,
C_out). Every op takes one mode or one mode per spatial dim, e.g. ``('same', 'full', 'full')`` for a video conv
that is zero-padded in time and full in space.

Modes, for an effective kernel ``ke = dilation * (k - 1) + 1``:

=============  ==========================  ==============  ===============================================
mode           padding (lo, hi)            out (stride 1)  meaning
=============  ==========================  ==============  ===============================================
``valid``      (0, 0)                      n - ke + 1      V-Conv: no padding
``same``       ((ke-1)//2, rest)           n               S-Conv: zeros, symmetric like PyTorch
``circular``   as ``same``, wrapped        n               S-Conv-circ: the signal is a torus
``reflect``    as ``same``, mirrored       n               ``jnp.pad(mode='reflect')`` (edge not repeated)
``replicate``  as ``same``, edge repeated  n               ``jnp.pad(mode='edge')``
``full``       (ke-1, ke-1)                n + ke - 1      F-Conv: every tap meets every input pixel
``partial``    as ``same``, zeros          n               partial-convolution padding (Liu et al. 2018)
=============  ==========================  ==============  ===============================================

``partial`` is ``same`` with every output rescaled by (taps in the window) / (taps on real pixels), per dim (see
``partial_ratio``). For any stride ``s`` the output length is ``floor((n + lo + hi - ke) / s) + 1``. All same-size
modes sample the same grid: output ``i`` is centred on input ``i * s`` (unlike ``lax``'s 'SAME', which pads (0, 1)
for stride 2 on even inputs and so samples odd positions).

Implementations (``impl`` of ``conv``, or ``conv_impl`` for a whole block of code): ``xla`` is
``lax.conv_general_dilated`` with its native derivatives (what accelerators run); ``im2col`` gathers the windows
with strided slices and runs one matmul (pure ``jnp``, any backend, derivatives by autodiff); ``auto`` picks per
call with ``auto_conv_path``.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Iterator, Sequence
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxborders.ops.checks import as_modes, as_tuple, check_choice, check_rank, spatial_rank

BorderMode = Literal["valid", "same", "circular", "reflect", "replicate", "full", "partial"]
Modes = BorderMode | Sequence[BorderMode]
MODES: tuple[str, ...] = ("valid", "same", "circular", "reflect", "replicate", "full", "partial")
ZERO_MODES: tuple[str, ...] = ("valid", "same", "full", "partial")  # zeros: the conv's own padding argument
EXPLICIT_MODES: tuple[str, ...] = ("circular", "reflect", "replicate")  # padded with jnp.pad before a VALID conv
IMPLS: tuple[str, ...] = ("auto", "xla", "im2col")
_JNP_PAD_MODE = {"circular": "wrap", "reflect": "reflect", "replicate": "edge"}

_DIMENSION_NUMBERS = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC"), 3: ("NDHWC", "DHWIO", "NDHWC")}
_CONV_IMPL: contextvars.ContextVar[str] = contextvars.ContextVar("jaxborders_conv_impl", default="auto")


def _pad_pair(mode: str, effective_kernel: int) -> tuple[int, int]:
  if mode == "valid":
    return (0, 0)
  if mode == "full":
    return (effective_kernel - 1, effective_kernel - 1)
  lo = (effective_kernel - 1) // 2
  return (lo, effective_kernel - 1 - lo)


def _rank_of(*values: int | Sequence[int] | Modes) -> int:
  """Spatial rank implied by the first per-dim argument that is a sequence (1 if all are scalars)."""
  for value in values:
    if not isinstance(value, (str, int, np.integer)):
      try:
        return len(value)  # type: ignore[arg-type]
      except TypeError:
        pass
  return 1


def padding_for(mode: Modes, kernel_size: int | Sequence[int],
                dilation: int | Sequence[int] = 1) -> tuple[tuple[int, int], ...]:
  """Per-dimension ``(lo, hi)`` padding of a border mode.

  Args:
    mode: one of ``MODES``, or one per spatial dim.
    kernel_size: an int or one int per spatial dim.
    dilation: an int or one int per spatial dim (>= 1).

  Returns:
    A tuple with one ``(lo, hi)`` pair per spatial dim (the rank comes from whichever argument is a sequence).

  Example:
    >>> padding_for('full', (3, 5))
    ((2, 2), (4, 4))
    >>> padding_for('same', 4)
    ((1, 2),)
    >>> padding_for('same', 3, dilation=2)
    ((2, 2),)
    >>> padding_for(('same', 'full', 'valid'), 3)
    ((1, 1), (2, 2), (0, 0))
  """
  rank = _rank_of(kernel_size, dilation, mode)
  modes = as_modes("mode", mode, rank, MODES)
  ks = as_tuple("kernel_size", kernel_size, rank)
  ds = as_tuple("dilation", dilation, rank)
  return tuple(_pad_pair(m, d * (k - 1) + 1) for m, k, d in zip(modes, ks, ds))


def output_size(n: int | Sequence[int], kernel_size: int | Sequence[int], mode: Modes, stride: int | Sequence[int] = 1,
                dilation: int | Sequence[int] = 1) -> int | tuple[int, ...]:
  """Output length per dim: ``floor((n + lo + hi - ke) / stride) + 1``.

  All-scalar arguments give an int; if any argument is a sequence (one entry per spatial dim), a tuple.

  >>> [output_size(8, 3, m, stride=2) for m in ('valid', 'same', 'full')]
  [3, 4, 5]
  >>> output_size((8, 8), 3, ('valid', 'full'))
  (6, 10)
  """
  rank = _rank_of(n, kernel_size, stride, dilation, mode)
  ns = as_tuple("n", n, rank)
  ks = as_tuple("kernel_size", kernel_size, rank)
  ss = as_tuple("stride", stride, rank)
  ds = as_tuple("dilation", dilation, rank)
  pads = padding_for(as_modes("mode", mode, rank, MODES), ks, ds)
  sizes = tuple((n_ + lo + hi - (d * (k - 1) + 1)) // s + 1 for n_, (lo, hi), k, s, d in zip(ns, pads, ks, ss, ds))
  scalar = all(isinstance(v, (str, int, np.integer)) for v in (n, kernel_size, mode, stride, dilation))
  return sizes[0] if scalar else sizes


def _check_fits(modes: Sequence[str], spatial: Sequence[int], pads: Sequence[tuple[int, int]],
                effective: Sequence[int], what: str, name: str = "x") -> None:
  for axis, (mode, n, (lo, hi), ke) in enumerate(zip(modes, spatial, pads, effective)):
    if n + lo + hi < ke:
      raise ValueError(
          f"{what}: spatial dim {axis} of {name} has size {n}, smaller than the effective kernel size {ke} that "
          f"mode {mode!r} needs (input must be at least {ke - lo - hi}).")
    if mode == "reflect" and max(lo, hi) > n - 1:
      raise ValueError(
          f"{what}: mode 'reflect' pads {max(lo, hi)} on spatial dim {axis} of {name}, which has size {n}; "
          f"reflect padding needs size > padding (at least {max(lo, hi) + 1}).")
    if mode == "circular" and max(lo, hi) > n:
      raise ValueError(
          f"{what}: mode 'circular' pads {max(lo, hi)} on spatial dim {axis} of {name}, which has size {n}; "
          f"wrapping needs size >= padding.")


def pad(x: jax.Array, mode: Modes, kernel_size: int | Sequence[int], dilation: int | Sequence[int] = 1) -> jax.Array:
  """Pads the spatial dims of a channels-last batched array as border mode ``mode`` would.

  Args:
    x: (N, *spatial, C) with 1-3 spatial dims (any array-like).
    mode: one of ``MODES`` (``partial`` pads zeros, like ``same``), or one per spatial dim.
    kernel_size: int or one int per spatial dim.
    dilation: int or one int per spatial dim.

  Returns:
    ``x`` with spatial dims grown by ``lo + hi`` each (``valid`` returns ``x`` itself). Per-dim paddings commute
    (each maps a padded index to a source index or to zero), so corners are well defined in any mix of modes.

  Example:
    >>> x = jnp.arange(4.).reshape(1, 4, 1)
    >>> pad(x, 'circular', 3)[0, :, 0].tolist()
    [3.0, 0.0, 1.0, 2.0, 3.0, 0.0]
    >>> pad(x, 'full', 3)[0, :, 0].tolist()
    [0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 0.0, 0.0]
    >>> pad(jnp.ones((1, 2, 2, 1)), ('circular', 'same'), 3)[0, :, :, 0].tolist()
    [[0.0, 1.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0], [0.0, 1.0, 1.0, 0.0]]
  """
  x = jnp.asarray(x)
  rank = spatial_rank("x", x.shape)
  modes = as_modes("mode", mode, rank, MODES)
  ks = as_tuple("kernel_size", kernel_size, rank)
  ds = as_tuple("dilation", dilation, rank)
  pads = padding_for(modes, ks, ds)
  _check_fits(modes, x.shape[1:-1], pads, [d * (k - 1) + 1 for k, d in zip(ks, ds)], "pad")
  return _pad_spatial(x, modes, pads)


def _pad_spatial(x: jax.Array, modes: str | Sequence[str], pads: Sequence[tuple[int, int]]) -> jax.Array:
  """One ``jnp.pad`` per distinct fill (zeros, wrap, reflect, edge) over the dims that use it."""
  modes = (modes,) * len(pads) if isinstance(modes, str) else tuple(modes)
  fills = [None if m in ZERO_MODES or m == "zero" else _JNP_PAD_MODE[m] for m in modes]
  for fill in dict.fromkeys(fills):
    widths = [(0, 0), *(p if f == fill else (0, 0) for p, f in zip(pads, fills)), (0, 0)]
    if all(w == (0, 0) for w in widths):
      continue
    x = jnp.pad(x, widths) if fill is None else jnp.pad(x, widths, mode=fill)
  return x


def partial_ratio(n: int, kernel_size: int, stride: int = 1, dilation: int = 1) -> np.ndarray:
  """Per-output rescaling of the ``partial`` mode along one dim: ``k / (taps of the window on real pixels)``.

  This is the mask ratio of NVIDIA's ``partialconv`` (``slide_winsize / update_mask``, with the input mask all
  ones), factored per dim: the window is a product of per-dim tap sets, so the ratio of a rank-d window is the
  product of these vectors. Outputs whose window holds no real pixel get 0 (the reference's ``update_mask``
  clamp); with ``same`` padding that never happens.

  Args:
    n: input length; kernel_size, stride, dilation: ints >= 1.

  Returns:
    float64 array of the output length (``output_size(n, kernel_size, 'partial', stride, dilation)``).

  Example:
    >>> partial_ratio(5, 3).tolist()
    [1.5, 1.0, 1.0, 1.0, 1.5]
  """
  (lo, _), = padding_for("partial", kernel_size, dilation)
  num_out = output_size(n, kernel_size, "partial", stride, dilation)
  positions = np.arange(num_out)[:, None] * stride - lo + dilation * np.arange(kernel_size)[None, :]
  real = ((positions >= 0) & (positions < n)).sum(axis=1)
  return np.where(real > 0, kernel_size / np.maximum(real, 1), 0.0)


def _partial_scale(modes, spatial, ks, ss, ds, dtype) -> jax.Array | None:
  """The (1, *out, 1) product of the per-dim ``partial_ratio`` vectors (1 along the other dims); None if unused."""
  if "partial" not in modes:
    return None
  scale = np.ones((), np.float64)
  for axis, (m, n, k, s, d) in enumerate(zip(modes, spatial, ks, ss, ds)):
    if m == "partial":
      shape = [1] * len(modes)
      shape[axis] = -1
      scale = scale * partial_ratio(n, k, s, d).reshape(shape)
  return jnp.asarray(scale[None, ..., None], dtype)


def get_conv_impl() -> str:
  """The implementation ``conv`` uses when called without ``impl`` (``'auto'`` unless inside ``conv_impl``)."""
  return _CONV_IMPL.get()


@contextlib.contextmanager
def conv_impl(impl: str) -> Iterator[None]:
  """Runs every ``conv`` called inside the block (without an explicit ``impl``) with ``impl``.

  The setting is a context variable (per thread and per asyncio task) read when ``conv`` is *traced*: a function
  jitted before entering the block keeps the path it was compiled with; jit (or re-jit) inside the block.

  Args:
    impl: one of ``IMPLS`` (``auto``, ``xla``, ``im2col``).

  Example:
    >>> x = jnp.ones((1, 5, 5, 1)); w = jnp.ones((3, 3, 1, 1))
    >>> with conv_impl('im2col'):
    ...   get_conv_impl(), float(conv(x, w, 'full').sum())
    ('im2col', 225.0)
  """
  check_choice("impl", impl, IMPLS)
  token = _CONV_IMPL.set(impl)
  try:
    yield
  finally:
    _CONV_IMPL.reset(token)


def auto_conv_path(kernel_size: Sequence[int], modes: Sequence[str], feature_group_count: int = 1,
                   backend: str | None = None) -> str:
  """The path ``impl='auto'`` takes: ``'xla'``, ``'im2col'`` or ``'im2col_grad'`` (XLA forward, im2col derivatives).

  The rule (``python -m benchmarks.ops`` prints the per-impl table behind it): accelerators run their own conv
  kernels and gradients; XLA:CPU runs conv *derivatives* slowly, above all for F-Conv's large padding (ResNet
  layer1 shape, ``full``: forward+backward about 10x faster as im2col on a loaded 2-core CPU). A path only
  decides speed, never values: every path is the same linear map.

  - accelerators (GPU, TPU), or grouped convs: ``xla`` (``lax.conv_general_dilated`` and its native gradients);
  - CPU, 1x1 kernel (no padding in any mode): ``im2col``, a plain matmul after striding;
  - CPU, any explicitly padded dim (``circular``, ``reflect``, ``replicate``): ``im2col``;
  - CPU, zero-padded modes only: ``im2col_grad``: XLA's conv forward, derivatives written as im2col x matmul.

  Example:
    >>> auto_conv_path((3, 3), ('same', 'same'), backend='gpu')
    'xla'
    >>> auto_conv_path((3, 3), ('circular', 'same'), backend='cpu')
    'im2col'
  """
  backend = jax.default_backend() if backend is None else backend
  if backend != "cpu" or feature_group_count != 1:
    return "xla"
  if all(k == 1 for k in kernel_size) or any(m in EXPLICIT_MODES for m in modes):
    return "im2col"
  return "im2col_grad"


def conv(x: jax.Array, w: jax.Array, mode: Modes = "same", strides: int | Sequence[int] = 1,
         dilation: int | Sequence[int] = 1, feature_group_count: int = 1, precision: lax.PrecisionLike = None,
         impl: str | None = None) -> jax.Array:
  """Convolution (cross-correlation, like every DL framework) with an explicit border mode per spatial dim.

  Zero-padded dims (``valid``, ``same``, ``full``, ``partial``) pass their padding to the convolution itself (no
  pad op); ``circular``, ``reflect`` and ``replicate`` dims are padded explicitly first. ``partial`` dims then
  multiply the output by ``partial_ratio`` (NVIDIA's ``partialconv`` applies the ratio to the conv output
  *without* bias and adds the bias after; this op has no bias, so a layer adds its bias after this call).

  Args:
    x: (N, *spatial, C_in), 1-3 spatial dims (any array-like).
    w: (*kernel_size, C_in // feature_group_count, C_out) (any array-like).
    mode: border mode, one of ``MODES``, or one per spatial dim.
    strides: int or one per spatial dim (>= 1).
    dilation: kernel dilation, int or one per spatial dim (>= 1).
    feature_group_count: groups (``C_in`` for depthwise).
    precision: passed to ``lax.conv_general_dilated`` / the matmul.
    impl: ``auto``, ``xla`` or ``im2col`` (see the module docstring and ``auto_conv_path``); ``None`` uses
      ``get_conv_impl()`` (set by ``conv_impl``). Every path is the same linear map: values and derivatives
      (reverse and forward mode) agree to rounding.

  Returns:
    (N, *out_spatial, C_out) with ``out = floor((n + lo + hi - ke) / s) + 1`` per dim.

  Example:
    >>> x = jnp.ones((1, 5, 5, 1)); w = jnp.ones((3, 3, 1, 1))
    >>> [conv(x, w, m).shape[1] for m in MODES]
    [3, 5, 5, 5, 5, 7, 5]
    >>> conv(x, w, 'full')[0, 3, :, 0].tolist()  # the border shows in the output
    [3.0, 6.0, 9.0, 9.0, 9.0, 6.0, 3.0]
    >>> conv(x, w, 'partial')[0, 0, :, 0].tolist()  # 4 or 6 real taps, rescaled to 9
    [9.0, 9.0, 9.0, 9.0, 9.0]
    >>> conv(x, w, ('valid', 'full')).shape
    (1, 3, 7, 1)
  """
  impl = get_conv_impl() if impl is None else check_choice("impl", impl, IMPLS)
  x, w = jnp.asarray(x), jnp.asarray(w)
  if w.ndim not in (3, 4, 5):
    raise ValueError(f"w must be (*kernel_size, C_in // groups, C_out) with 1-3 spatial dims, got shape {w.shape}.")
  rank = w.ndim - 2
  modes = as_modes("mode", mode, rank, MODES)
  check_rank("x", x.shape, rank)
  _check_groups(x.shape[-1], w.shape, feature_group_count)
  ks = tuple(w.shape[:rank])
  ss = as_tuple("strides", strides, rank)
  ds = as_tuple("dilation", dilation, rank)
  pads = padding_for(modes, ks, ds)
  _check_fits(modes, x.shape[1:-1], pads, [d * (k - 1) + 1 for k, d in zip(ks, ds)], "conv")
  scale = _partial_scale(modes, x.shape[1:-1], ks, ss, ds, x.dtype)
  w = w.astype(x.dtype) if w.dtype != x.dtype else w
  explicit = [m in EXPLICIT_MODES for m in modes]
  x = _pad_spatial(x, modes, [p if e else (0, 0) for p, e in zip(pads, explicit)])
  pads = tuple((0, 0) if e else p for p, e in zip(pads, explicit))
  path = auto_conv_path(ks, modes, feature_group_count) if impl == "auto" else impl
  if path == "xla":
    y = _conv_general(x, w, ss, pads, ds, rank, feature_group_count, precision)
  elif path == "im2col":
    y = _conv_im2col(x, w, ss, pads, ds, feature_group_count, precision)
  else:
    y = _conv_cpu_fast_grad(x, w, ss, pads, ds, rank, precision)
  return y if scale is None else y * scale


def _check_groups(c_in: int, w_shape: Sequence[int], feature_group_count: int) -> None:
  if not isinstance(feature_group_count, int) or feature_group_count < 1:
    raise ValueError(f"feature_group_count must be an int >= 1, got {feature_group_count!r}.")
  c_out = w_shape[-1]
  if c_in % feature_group_count or c_out % feature_group_count:
    raise ValueError(f"feature_group_count={feature_group_count} must divide input channels {c_in} and output "
                     f"channels {c_out}.")
  if w_shape[-2] * feature_group_count != c_in:
    raise ValueError(f"w has {w_shape[-2]} input channels per group; x has {c_in} channels and feature_group_count="
                     f"{feature_group_count}, so w.shape[-2] must be {c_in // feature_group_count}.")


def _conv_general(x, w, strides, pads, dilation, rank, groups, precision):
  return lax.conv_general_dilated(x, w, window_strides=strides, padding=pads, rhs_dilation=dilation,
                                  dimension_numbers=_DIMENSION_NUMBERS[rank], feature_group_count=groups,
                                  precision=precision)


def _conv_im2col(x, w, strides, pads, dilation, groups, precision):
  """The conv as patches x kernel matrix; grouped convs contract each group's channels separately."""
  ks = w.shape[:-2]
  patches = _patches(x, ks, strides, pads, dilation)
  if groups == 1:
    return _matmul(patches, w.reshape(-1, w.shape[-1]), precision)
  taps, c_group, c_out = int(np.prod(ks)), w.shape[-2], w.shape[-1]
  p = patches.reshape(-1, taps, groups, c_group)
  k = w.reshape(taps, c_group, groups, c_out // groups)
  y = jnp.einsum("mtgc,tcgo->mgo", p, k, precision=precision)
  return y.reshape(*patches.shape[:-1], c_out)


def _patches(x, kernel_size, strides, pads, dilation):
  """im2col: (N, *out, prod(kernel_size) * C), taps in row-major order then channels (matches HWIO)."""
  x = _pad_spatial(x, "full", pads)
  out = [(n - d * (k - 1) - 1) // s + 1 for n, k, s, d in zip(x.shape[1:-1], kernel_size, strides, dilation)]
  taps = []
  for tap in np.ndindex(*kernel_size):
    start = [0, *(t * d for t, d in zip(tap, dilation)), 0]
    limit = [x.shape[0], *(b + (o - 1) * s + 1 for b, o, s in zip(start[1:], out, strides)), x.shape[-1]]
    taps.append(lax.slice(x, start, limit, (1, *strides, 1)))
  return jnp.concatenate(taps, axis=-1) if len(taps) > 1 else taps[0]


# XLA:CPU differentiates convolutions slowly: kernel gradients (a conv with the batch as the contraction) and the
# input gradients of strided convs (lhs-dilated convs) run 5-10x slower than the forward conv, and far slower
# still when the padding exceeds (k-1)/2 as in F-Conv (measured on the Red-Green layers, 200x32x32: 3x3 stride-2
# conv, forward 22 ms, input gradient 139 ms, kernel gradient 124 ms). The 'im2col_grad' path writes the derivative
# rule as im2col x matmul: under differentiation the output is computed from the same patches the kernel gradient
# needs (one patch extraction, three matmuls: forward, kernel gradient, input gradient + strided pads); without
# differentiation the primal stays XLA's conv. Both forms are the same linear map, so values and derivatives agree
# to rounding; the tangent is plain jnp, so forward mode (jvp, jacfwd, hessian) works too.
@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3, 4, 5, 6))
def _conv_cpu_fast_grad(x, w, strides, pads, dilation, rank, precision):
  return _conv_general(x, w, strides, pads, dilation, rank, 1, precision)


def _matmul(a, b, precision):
  # 2D matmuls: XLA:CPU runs a dot contracting several batch-like dims far slower than the reshaped 2D one.
  return jnp.matmul(a.reshape(-1, a.shape[-1]), b, precision=precision).reshape(*a.shape[:-1], b.shape[-1])


@_conv_cpu_fast_grad.defjvp
def _conv_cpu_fast_grad_jvp(strides, pads, dilation, rank, precision, primals, tangents):
  x, w = primals
  dx, dw = tangents
  kernel_size = w.shape[:rank]
  w_matrix = lambda w: w.reshape(-1, w.shape[-1])
  patches = _patches(x, kernel_size, strides, pads, dilation)
  y = _matmul(patches, w_matrix(w), precision)
  dy = (_matmul(_patches(dx, kernel_size, strides, pads, dilation), w_matrix(w), precision)
        + _matmul(patches, w_matrix(dw), precision))
  return y, dy.astype(y.dtype)


def location_count(n: int, kernel_size: int, mode: BorderMode, dilation: int = 1) -> np.ndarray:
  """How often each input position meets a filter tap in one stride-1 conv, along one dim (F-Conv paper Eq. 5-10).

  For zero-padded modes this is the number of output positions whose receptive field covers the input
  position (padding zeros carry no information, so they are not counted). For ``circular``, ``reflect`` and
  ``replicate`` the wrapped, mirrored or repeated copies of a pixel count towards that pixel. ``partial`` counts
  as ``same``: its rescaling changes the weight of the border outputs, not which taps meet which pixel (so
  ``location_count(n, k, 'partial') == location_count(n, k, 'same')``). For several dims see ``location_counts``.

  Args:
    n: input length (>= 1).
    kernel_size: k (>= 1).
    mode: one of ``MODES``.
    dilation: >= 1.

  Returns:
    int64 array of length n.

  Example (k = 3, so r = 1):
    >>> location_count(6, 3, 'full').tolist()
    [3, 3, 3, 3, 3, 3]
    >>> location_count(6, 3, 'same').tolist()
    [2, 3, 3, 3, 3, 2]
    >>> location_count(6, 3, 'valid').tolist()
    [1, 2, 3, 3, 2, 1]
  """
  check_choice("mode", mode, MODES)
  if not isinstance(n, (int, np.integer)) or n < 1:
    raise ValueError(f"n must be an int >= 1, got {n!r}.")
  (k,) = as_tuple("kernel_size", kernel_size, 1)
  (d,) = as_tuple("dilation", dilation, 1)
  ke = d * (k - 1) + 1
  (lo, hi), = padding_for(mode, k, d)
  _check_fits((mode,), (n,), ((lo, hi),), (ke,), "location_count", name="the input (n)")
  num_out = n + lo + hi - ke + 1
  if mode in ZERO_MODES:
    # Input position a sits at p = a + lo in the padded signal; tap t of output o reads p = o + t*d, so count
    # the taps t in [0, k) with o = p - t*d in [0, num_out): a closed form, no loop over outputs.
    p = np.arange(n) + lo
    t_lo = np.maximum(0, -((num_out - 1 - p) // d))  # ceil((p - num_out + 1) / d)
    t_hi = np.minimum(k - 1, p // d)
    return np.maximum(t_hi - t_lo + 1, 0).astype(np.int64)
  # Wrapped / mirrored / repeated modes: map every padded position back to its source pixel and count. NumPy,
  # not jnp: the same pad semantics without dispatching (and compiling) a device op per call.
  source = np.pad(np.arange(n), (lo, hi), mode=_JNP_PAD_MODE[mode])
  taps = (np.arange(num_out)[:, None] + d * np.arange(k)[None, :]).ravel()
  return np.bincount(source[taps], minlength=n).astype(np.int64)


def location_counts(shape: Sequence[int], kernel_size: int | Sequence[int], mode: Modes,
                    dilation: int | Sequence[int] = 1) -> np.ndarray:
  """``location_count`` of a rank-d stride-1 conv: how often each input pixel meets a filter tap.

  The (output, tap) pairs of a rank-d conv are the product of the per-dim pairs, and a pair reads pixel
  ``(a, b, ...)`` exactly when every per-dim pair reads its coordinate, so the count is the outer product of the
  per-dim counts (for every mode, and for any mix of modes).

  Args:
    shape: the spatial shape, one int per dim.
    kernel_size, dilation: int or one per dim.
    mode: one of ``MODES``, or one per dim.

  Returns:
    int64 array of ``shape``.

  Example:
    >>> location_counts((3, 4), 3, ('same', 'full')).tolist()
    [[6, 6, 6, 6], [9, 9, 9, 9], [6, 6, 6, 6]]
  """
  shape = as_tuple("shape", shape, len(tuple(shape)))
  rank = len(shape)
  modes = as_modes("mode", mode, rank, MODES)
  ks = as_tuple("kernel_size", kernel_size, rank)
  ds = as_tuple("dilation", dilation, rank)
  counts = np.ones((), np.int64)
  for n, k, m, d in zip(shape, ks, modes, ds):
    counts = np.multiply.outer(counts, location_count(n, k, m, d))
  return counts


def receptive_growth(mode: BorderMode, kernel_size: int, dilation: int = 1) -> int:
  """How many pixels a stride-1 conv adds to (``full``) or removes from (``valid``, negative) a spatial dim."""
  (lo, hi), = padding_for(mode, kernel_size, dilation)
  return lo + hi - dilation * (kernel_size - 1)


__all__ = ["MODES", "ZERO_MODES", "EXPLICIT_MODES", "IMPLS", "BorderMode", "padding_for", "output_size", "pad", "conv",
           "conv_impl", "get_conv_impl", "auto_conv_path", "partial_ratio", "location_count", "location_counts",
           "receptive_growth"]
