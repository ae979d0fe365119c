"""Border modes: padding arithmetic, padding, convolution and location counts.

All border handling of the project lives in this module (F-Conv paper §3; docs/borders.md). Layout is channels-last
and batched: (N, L, C), (N, H, W, C) or (N, D, H, W, C); kernels are (*kernel_size, C_in // groups, C_out).

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
=============  ==========================  ==============  ===============================================

For any stride ``s`` the output length is ``floor((n + lo + hi - ke) / s) + 1``. All same-size modes sample
the same grid: output ``i`` is centred on input ``i * s`` (unlike ``lax``'s 'SAME', which pads (0, 1) for
stride 2 on even inputs and so samples odd positions).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxborders.ops.checks import as_tuple, check_choice, check_rank, spatial_rank

BorderMode = Literal["valid", "same", "circular", "reflect", "replicate", "full"]
MODES: tuple[str, ...] = ("valid", "same", "circular", "reflect", "replicate", "full")
ZERO_MODES: tuple[str, ...] = ("valid", "same", "full")  # handled by the conv's own padding argument
_JNP_PAD_MODE = {"circular": "wrap", "reflect": "reflect", "replicate": "edge"}

_DIMENSION_NUMBERS = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC"), 3: ("NDHWC", "DHWIO", "NDHWC")}


def _pad_pair(mode: str, effective_kernel: int) -> tuple[int, int]:
  if mode == "valid":
    return (0, 0)
  if mode == "full":
    return (effective_kernel - 1, effective_kernel - 1)
  lo = (effective_kernel - 1) // 2
  return (lo, effective_kernel - 1 - lo)


def padding_for(mode: BorderMode, kernel_size: int | Sequence[int],
                dilation: int | Sequence[int] = 1) -> tuple[tuple[int, int], ...]:
  """Per-dimension ``(lo, hi)`` padding of a border mode.

  Args:
    mode: one of ``MODES``.
    kernel_size: an int (one spatial dim) or one int per spatial dim.
    dilation: an int or one int per spatial dim (>= 1).

  Returns:
    A tuple with one ``(lo, hi)`` pair per spatial dim.

  Example:
    >>> padding_for('full', (3, 5))
    ((2, 2), (4, 4))
    >>> padding_for('same', 4)
    ((1, 2),)
    >>> padding_for('same', 3, dilation=2)
    ((2, 2),)
  """
  check_choice("mode", mode, MODES)
  rank = 1 if isinstance(kernel_size, int) else len(tuple(kernel_size))
  ks = as_tuple("kernel_size", kernel_size, rank)
  ds = as_tuple("dilation", dilation, rank)
  return tuple(_pad_pair(mode, d * (k - 1) + 1) for k, d in zip(ks, ds))


def output_size(n: int, kernel_size: int, mode: BorderMode, stride: int = 1, dilation: int = 1) -> int:
  """Output length along one dim: ``floor((n + lo + hi - ke) / stride) + 1``.

  >>> [output_size(8, 3, m, stride=2) for m in ('valid', 'same', 'full')]
  [3, 4, 5]
  """
  (lo, hi), = padding_for(mode, kernel_size, dilation)
  ke = dilation * (kernel_size - 1) + 1
  return (n + lo + hi - ke) // stride + 1


def _check_fits(mode: str, spatial: Sequence[int], pads: Sequence[tuple[int, int]],
                effective: Sequence[int], what: str, name: str = "x") -> None:
  for axis, (n, (lo, hi), ke) in enumerate(zip(spatial, pads, effective)):
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


def pad(x: jax.Array, mode: BorderMode, kernel_size: int | Sequence[int],
        dilation: int | Sequence[int] = 1) -> jax.Array:
  """Pads the spatial dims of a channels-last batched array as border mode ``mode`` would.

  Args:
    x: (N, *spatial, C) with 1-3 spatial dims.
    mode: one of ``MODES``.
    kernel_size: int or one int per spatial dim.
    dilation: int or one int per spatial dim.

  Returns:
    ``x`` with spatial dims grown by ``lo + hi`` each (``valid`` returns ``x`` itself).

  Example:
    >>> x = jnp.arange(4.).reshape(1, 4, 1)
    >>> pad(x, 'circular', 3)[0, :, 0].tolist()
    [3.0, 0.0, 1.0, 2.0, 3.0, 0.0]
    >>> pad(x, 'full', 3)[0, :, 0].tolist()
    [0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 0.0, 0.0]
  """
  check_choice("mode", mode, MODES)
  rank = spatial_rank("x", x.shape)
  ks = as_tuple("kernel_size", kernel_size, rank)
  ds = as_tuple("dilation", dilation, rank)
  pads = padding_for(mode, ks, ds)
  _check_fits(mode, x.shape[1:-1], pads, [d * (k - 1) + 1 for k, d in zip(ks, ds)], "pad")
  return _pad_spatial(x, mode, pads)


def _pad_spatial(x: jax.Array, mode: str, pads: Sequence[tuple[int, int]]) -> jax.Array:
  if all(p == (0, 0) for p in pads):
    return x
  widths = [(0, 0), *pads, (0, 0)]
  if mode in ZERO_MODES or mode == "zero":
    return jnp.pad(x, widths)
  return jnp.pad(x, widths, mode=_JNP_PAD_MODE[mode])


def conv(x: jax.Array, w: jax.Array, mode: BorderMode = "same", strides: int | Sequence[int] = 1,
         dilation: int | Sequence[int] = 1, feature_group_count: int = 1,
         precision: lax.PrecisionLike = None) -> jax.Array:
  """Convolution (cross-correlation, like every DL framework) with an explicit border mode.

  Zero-padded modes (``valid``, ``same``, ``full``) pass their padding to ``lax.conv_general_dilated``
  directly (no pad op); ``circular``, ``reflect`` and ``replicate`` pad explicitly and run a VALID conv.
  On CPU (``feature_group_count=1``) the same linear map is computed faster as im2col × matmul where XLA:CPU's
  conv is slow: under differentiation, for the explicitly padded modes, and for 1×1 kernels (a plain matmul).

  Args:
    x: (N, *spatial, C_in), 1-3 spatial dims.
    w: (*kernel_size, C_in // feature_group_count, C_out).
    mode: border mode, one of ``MODES``.
    strides: int or one per spatial dim (>= 1).
    dilation: kernel dilation, int or one per spatial dim (>= 1).
    feature_group_count: groups (``C_in`` for depthwise).
    precision: passed to ``lax.conv_general_dilated``.

  Returns:
    (N, *out_spatial, C_out) with ``out = floor((n + lo + hi - ke) / s) + 1`` per dim.

  Example:
    >>> x = jnp.ones((1, 5, 5, 1)); w = jnp.ones((3, 3, 1, 1))
    >>> [conv(x, w, m).shape[1] for m in MODES]
    [3, 5, 5, 5, 5, 7]
    >>> conv(x, w, 'full')[0, 3, :, 0].tolist()  # the border shows in the output
    [3.0, 6.0, 9.0, 9.0, 9.0, 6.0, 3.0]
  """
  check_choice("mode", mode, MODES)
  if w.ndim not in (3, 4, 5):
    raise ValueError(f"w must be (*kernel_size, C_in // groups, C_out) with 1-3 spatial dims, got shape {w.shape}.")
  rank = w.ndim - 2
  check_rank("x", x.shape, rank)
  if not isinstance(feature_group_count, int) or feature_group_count < 1:
    raise ValueError(f"feature_group_count must be an int >= 1, got {feature_group_count!r}.")
  c_in, c_out = x.shape[-1], w.shape[-1]
  if c_in % feature_group_count or c_out % feature_group_count:
    raise ValueError(f"feature_group_count={feature_group_count} must divide input channels {c_in} and output "
                     f"channels {c_out}.")
  if w.shape[-2] * feature_group_count != c_in:
    raise ValueError(f"w has {w.shape[-2]} input channels per group; x has {c_in} channels and "
                     f"feature_group_count={feature_group_count}, so w.shape[-2] must be {c_in // feature_group_count}.")
  ks = tuple(w.shape[:rank])
  ss = as_tuple("strides", strides, rank)
  ds = as_tuple("dilation", dilation, rank)
  pads = padding_for(mode, ks, ds)
  _check_fits(mode, x.shape[1:-1], pads, [d * (k - 1) + 1 for k, d in zip(ks, ds)], "conv")
  w = w.astype(x.dtype) if w.dtype != x.dtype else w
  if mode not in ZERO_MODES:
    x = _pad_spatial(x, mode, pads)
    pads = ((0, 0),) * rank
  if feature_group_count == 1 and jax.default_backend() == "cpu":
    if all(k == 1 for k in ks) and all(p == (0, 0) for p in pads):
      # A 1x1 conv is a matmul (after striding); XLA:CPU runs the dot ~3x faster than the conv, both directions.
      if any(s > 1 for s in ss):
        x = x[(slice(None), *(slice(None, None, s) for s in ss))]
      return _matmul(x, w.reshape(-1, w.shape[-1]), precision)
    if mode not in ZERO_MODES:
      # Explicitly padded input: XLA:CPU's VALID conv on it runs 1.3-3x slower than im2col x matmul (measured on
      # ResNet and Red-Green layer shapes, benchmarks/ops.py), so the forward pass is im2col here too.
      return _matmul(_patches(x, ks, ss, pads, ds), w.reshape(-1, w.shape[-1]), precision)
    return _conv_cpu_fast_grad(x, w, ss, pads, ds, rank, precision)
  return _conv_general(x, w, ss, pads, ds, rank, feature_group_count, precision)


def _conv_general(x, w, strides, pads, dilation, rank, groups, precision):
  return lax.conv_general_dilated(x, w, window_strides=strides, padding=pads, rhs_dilation=dilation,
                                  dimension_numbers=_DIMENSION_NUMBERS[rank], feature_group_count=groups,
                                  precision=precision)


def _patches(x, kernel_size, strides, pads, dilation):
  """im2col: (N, *out, prod(kernel_size) * C), taps in row-major order then channels (matches HWIO)."""
  x = _pad_spatial(x, "full", pads)
  rank = len(kernel_size)
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
# conv, forward 22 ms, input gradient 139 ms, kernel gradient 124 ms). On CPU the derivative rule is written as
# im2col x matmul: under differentiation the output is computed from the same patches the kernel gradient needs
# (one patch extraction, three matmuls: forward, kernel gradient, input gradient + strided pads); without
# differentiation the primal stays XLA's conv. Both forms are the same linear map, so values and derivatives agree
# to rounding; accelerators keep their native convs and conv gradients (no custom rule there).
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
  """How often each input position meets a filter tap in one stride-1 conv (F-Conv paper Eq. 5-10).

  For zero-padded modes this is the number of output positions whose receptive field covers the input
  position (padding zeros carry no information, so they are not counted). For ``circular``, ``reflect`` and
  ``replicate`` the wrapped, mirrored or repeated copies of a pixel count towards that pixel.

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
  _check_fits(mode, (n,), ((lo, hi),), (ke,), "location_count", name="the input (n)")
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


def receptive_growth(mode: BorderMode, kernel_size: int, dilation: int = 1) -> int:
  """How many pixels a stride-1 conv adds to (``full``) or removes from (``valid``, negative) a spatial dim."""
  (lo, hi), = padding_for(mode, kernel_size, dilation)
  return lo + hi - dilation * (kernel_size - 1)


__all__ = ["MODES", "ZERO_MODES", "BorderMode", "padding_for", "output_size", "pad", "conv", "location_count",
           "receptive_growth"]
