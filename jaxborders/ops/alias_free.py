"""Alias-free downsampling and activations (Michaeli, Michaeli & Soudry, CVPR 2023, "Alias-Free Convnets:
Fractional Shift Invariance via Polynomial Activations"; authors' code: hmichaeli/alias_free_convnets).

Everything here is *circular* and works in the Fourier domain, one spatial axis at a time (the authors' 2D
low-pass is the outer product of a 1D mask, so the separable per-axis form is the same linear map):

* ``ideal_downsample(x, s)``: keep only the frequencies the ``n / s`` output samples can represent, then keep
  every ``s``-th sample. With ``m = n / s`` output samples the kept bins are ``|k| < m / 2``: for even ``m`` the
  output's Nyquist bin ``k = ±m/2`` is *dropped* (zeroed), as the authors' ``create_lpf_rect`` does when
  ``n % 4 == 0``, because a real signal cannot carry a fractional shift in that bin. We never build the
  full-rate low-passed signal: the kept bins are inverse-transformed at the output rate directly (same numbers,
  ``s`` times fewer inverse-FFT points).
* ``ideal_upsample(x, u)``: zero-stuffing followed by an ideal interpolation filter (the authors'
  ``UpsampleRFFT``); an even input's Nyquist bin is split half/half between ``±n/2`` (their ``create_recon_rect``),
  so the upsampled signal passes through the input samples.
* ``alias_free_activation``: upsample by ``u``, apply a pointwise nonlinearity, ideal low-pass and subsample by
  ``u`` (their ``UpPolyActPerChannel``). With a polynomial of degree ``d <= 2u - 1`` every alias of the
  products on the upsampled grid falls outside the band that is kept, so the whole activation commutes with
  *every* (also sub-pixel) circular Fourier shift; with ReLU/GELU it is only approximately alias-free.
* ``fourier_shift`` (in ``jaxborders.ops.shifts``, re-exported here): the circular shift by a real number of
  samples (bandlimited interpolation); it is the test-side notion of a "half-pixel shift".

Invariance fine print (why tests use inputs without Nyquist content): the Nyquist bin of a real signal can only
be shifted by a fraction of a sample by keeping its real part (``cos(pi t)`` times the bin), which no
downstream operation can undo. Inputs whose even-length axes carry no energy at ``k = n/2`` are shifted exactly,
and for those a circular stack of convolutions, alias-free activations and ideal downsamplings followed by
global pooling is invariant to every fractional shift to float tolerance. Integer shifts are exact for all
inputs.

Differences from the authors' code: any stride / upsampling factor (theirs: the mask is only right for 2), any
spatial rank 1-3 (theirs: square 2D maps, the mask built from the last axis only), channels-last layout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxborders.ops.checks import as_tuple, spatial_rank
from jaxborders.ops.shifts import fourier_shift  # noqa: F401  (lives with the other shifts; kept importable here)

# The authors' initial coefficients of their per-channel degree-2 polynomial activation (PolyActPerChannel in
# models/activation.py): c0 + c1 x + c2 x^2, a least-squares fit to a smooth ReLU-like curve.
POLY_INIT_COEFFS: tuple[float, float, float] = (0.0169394634313126, 0.5, 0.3078363963999393)


def _float32(x: jax.Array) -> jax.Array:
  # jnp.fft has no bfloat16/float16 kernels: transform in float32, return in the input's dtype.
  return x.astype(jnp.float32) if x.dtype != jnp.float64 else x


def _check_divisible(fn: str, shape: Sequence[int], strides: Sequence[int]) -> None:
  for axis, (size, s) in enumerate(zip(shape[1:-1], strides)):
    if size % s:
      raise ValueError(f"{fn} needs spatial sizes divisible by the stride: spatial dim {axis} of x has size {size}, "
                       f"stride {s}; accepted sizes are multiples of {s}.")


def _downsample_axis(x: jax.Array, axis: int, s: int) -> jax.Array:
  n = x.shape[axis]
  m = n // s
  spectrum = jnp.fft.rfft(x, axis=axis)
  kept = jax.lax.slice_in_dim(spectrum, 0, m // 2 + 1, axis=axis)
  if m % 2 == 0:  # drop the output's Nyquist bin (the authors zero it too)
    kept = kept.at[(slice(None),) * axis + (m // 2,)].set(0)
  # irfft at the output rate normalises by 1/m; the full-rate low-passed signal's samples need 1/n.
  return jnp.fft.irfft(kept, n=m, axis=axis) * (m / n)


def _upsample_axis(x: jax.Array, axis: int, u: int) -> jax.Array:
  n = x.shape[axis]
  spectrum = jnp.fft.rfft(x, axis=axis)
  if n % 2 == 0:  # split the input's Nyquist bin half/half between +n/2 and -n/2 (irfft adds the mirror)
    spectrum = spectrum.at[(slice(None),) * axis + (n // 2,)].multiply(0.5)
  widths = [(0, 0)] * x.ndim
  widths[axis] = (0, (u * n) // 2 + 1 - spectrum.shape[axis])
  return jnp.fft.irfft(jnp.pad(spectrum, widths), n=u * n, axis=axis) * u


def ideal_downsample(x: jax.Array, stride: int | Sequence[int] = 2) -> jax.Array:
  """Ideal (Fourier-domain, circular) low-pass filtering followed by subsampling.

  Per spatial axis of size ``n = s * m``: ``y[j] = (1/n) sum_{|k| < m/2} X[k] exp(2 pi i k s j / n)``, i.e. the
  samples ``0, s, 2s, ...`` of ``x`` with every frequency ``|k| >= m/2`` removed (for even ``m`` the bin
  ``k = ±m/2`` is removed too). Shift-equivariant for every circular shift, also sub-pixel ones: shifting ``x``
  by ``t`` samples (``fourier_shift``) shifts ``y`` by ``t / s``.

  Args:
    x: (N, *spatial, C), 1-3 spatial dims, each divisible by its stride; any float dtype (transformed in
      float32, returned in ``x.dtype``).
    stride: int or one per spatial dim (>= 1).

  Returns:
    (N, *spatial // stride, C).

  Example:
    >>> x = jnp.cos(2 * jnp.pi * jnp.arange(8.) / 8).reshape(1, 8, 1)  # frequency 1: kept
    >>> [round(v, 4) + 0.0 for v in ideal_downsample(x)[0, :, 0].tolist()]
    [1.0, 0.0, -1.0, 0.0]
    >>> x = jnp.cos(2 * jnp.pi * 2 * jnp.arange(8.) / 8).reshape(1, 8, 1)  # frequency 2 = output Nyquist
    >>> float(jnp.abs(ideal_downsample(x)).max()) < 1e-6
    True
  """
  rank = spatial_rank("x", x.shape)
  strides = as_tuple("stride", stride, rank)
  _check_divisible("ideal_downsample", x.shape, strides)
  y = _float32(x)
  for axis, s in enumerate(strides, start=1):
    if s > 1:
      y = _downsample_axis(y, axis, s)
  return y.astype(x.dtype)


def ideal_upsample(x: jax.Array, factor: int | Sequence[int] = 2) -> jax.Array:
  """Ideal (Fourier-domain, circular) interpolation by an integer factor.

  Per axis: ``y[j] = (1/n) sum_k X[k] exp(2 pi i k j / (u n))`` over ``|k| < n/2``, plus, for even ``n``, the
  Nyquist bin split half/half between ``±n/2`` so that ``y[u * i] == x[i]`` exactly.

  Args:
    x: (N, *spatial, C), 1-3 spatial dims.
    factor: int or one per spatial dim (>= 1).

  Returns:
    (N, *spatial * factor, C) in ``x.dtype``.

  Example:
    >>> x = jnp.array([1., 0., -1., 0.]).reshape(1, 4, 1)
    >>> [round(v, 4) + 0.0 for v in ideal_upsample(x)[0, :, 0].tolist()]
    [1.0, 0.7071, 0.0, -0.7071, -1.0, -0.7071, 0.0, 0.7071]
  """
  rank = spatial_rank("x", x.shape)
  factors = as_tuple("factor", factor, rank)
  y = _float32(x)
  for axis, u in enumerate(factors, start=1):
    if u > 1:
      y = _upsample_axis(y, axis, u)
  return y.astype(x.dtype)


def polynomial_activation(x: jax.Array, coeffs: jax.Array | Sequence[float]) -> jax.Array:
  """``sum_i coeffs[i] * x**i`` (Horner). ``coeffs``: (degree + 1,) or (degree + 1, C) for per-channel.

  Example:
    >>> polynomial_activation(jnp.array([2.]), [1., 0., 3.]).tolist()
    [13.0]
  """
  coeffs = jnp.asarray(coeffs, dtype=x.dtype)
  y = jnp.zeros_like(x) + coeffs[-1]
  for c in coeffs[-2::-1]:
    y = y * x + c
  return y


def alias_free_activation(x: jax.Array, fn: Callable[[jax.Array], jax.Array],
                          up: int | Sequence[int] = 2) -> jax.Array:
  """Upsample (ideal) -> pointwise ``fn`` -> ideal low-pass -> subsample: an activation without aliasing.

  For a polynomial ``fn`` of degree ``d <= 2 up - 1`` the result is exactly shift-equivariant for every circular
  Fourier shift of an input without Nyquist content (see the module docstring); it equals the authors'
  ``UpPolyActPerChannel`` (upsample, activation, ``LPF_RFFT(cutoff=1/up)``, ``[::up]``).

  Args:
    x: (N, *spatial, C), 1-3 spatial dims.
    fn: pointwise function (e.g. ``lambda z: polynomial_activation(z, POLY_INIT_COEFFS)``, ``jax.nn.gelu``).
    up: upsampling factor, int or one per spatial dim.

  Returns:
    Same shape and dtype as ``x``.

  Example:
    >>> x = jnp.cos(2 * jnp.pi * jnp.arange(8.) / 8).reshape(1, 8, 1)
    >>> y = alias_free_activation(x, lambda z: z * z)  # cos^2 = (1 + cos(2 w)) / 2, both terms kept
    >>> bool(jnp.allclose(y, x * x, atol=1e-6))
    True
  """
  rank = spatial_rank("x", x.shape)
  factors = as_tuple("up", up, rank)
  return ideal_downsample(fn(ideal_upsample(x, factors)), factors)


__all__ = ["POLY_INIT_COEFFS", "ideal_downsample", "ideal_upsample", "polynomial_activation",
           "alias_free_activation"]
