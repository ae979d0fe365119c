"""Frequency low-cut pooling (FLC; Grabinski, Jung, Keuper & Keuper, ECCV 2022, "FrequencyLowCut Pooling -- Plug
& Play against Catastrophic Overfitting"; authors' code: GeJulia/flc_pooling, ``flc_pooling.py``).

FLC takes the spatial FFT, keeps the centred low-frequency block of ``m = n / s`` bins per axis and inverse-FFTs
that block at the output size: with ``s = 2`` these are the bins ``k = -m/2, ..., m/2 - 1`` (the authors' slice
``fftshift(fft2(x))[n/4 : 3n/4]``). For even ``m`` the block holds the bin ``-m/2`` without its mirror ``+m/2``,
so the inverse transform is complex; the authors return its magnitude ``|.|`` (``output='abs'``, our default);
``output='real'`` returns the real part instead.

How it relates to ``ideal_downsample`` (the alias-free convnets' pooling): on inputs without energy at
``|k| >= m/2``, ``flc_pool(x, s, 'real') == s**rank * ideal_downsample(x, s)`` (the inverse FFT at the output
size normalises by the output's point count, not the input's). The unpaired ``-m/2`` bin and the magnitude are
what separate FLC from an exactly shift-invariant pooling:

* shifts by multiples of the stride: the output is shifted exactly (any global pooling is then invariant);
* other integer shifts and sub-pixel shifts: the ``-m/2`` bin picks up a phase that no output shift reproduces,
  and ``|.|`` is not linear, so e.g. global average pooling of ``flc_pool(x)`` changes. The *energy*
  ``sum |y|^2`` is nevertheless invariant to every integer shift (Parseval: only phases change).

Differences from the authors' code: any stride (theirs: 2), 1-3 spatial dims (theirs: 2D), channels-last; for
odd ``m`` we keep the symmetric block ``|k| <= (m-1)/2`` (their ``fftshift`` slice for ``n % 4 == 2`` takes
``k = -(m+1)/2 .. (m-3)/2`` and its ``ifftshift`` then relabels the frequencies, shifting the spectrum).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from jaxborders.ops.checks import as_tuple, check_choice, spatial_rank

FlcOutput = Literal["abs", "real"]
FLC_OUTPUTS: tuple[str, ...] = ("abs", "real")


def flc_block_bins(n: int, stride: int) -> np.ndarray:
  """The frequencies (as signed bin numbers, in output order ``k mod m``) FLC keeps of an ``n``-point axis.

  Example:
    >>> flc_block_bins(8, 2).tolist()
    [0, 1, -2, -1]
    >>> flc_block_bins(6, 2).tolist()
    [0, 1, -1]
  """
  m = n // stride
  k = np.arange(m)
  return np.where(k < (m + 1) // 2, k, k - m)


def flc_pool(x: jax.Array, stride: int | Sequence[int] = 2, output: FlcOutput = "abs") -> jax.Array:
  """Frequency low-cut pooling: keep the centred low-frequency block of the spatial FFT, inverse-FFT it.

  ``y = |ifftn_m(X[block])|`` with ``X = fftn(x)`` over the spatial axes and ``block`` the bins of
  ``flc_block_bins`` per axis (``ifftn_m``: inverse FFT at the output size, normalised by ``1 / prod(m)``).

  Args:
    x: (N, *spatial, C), 1-3 spatial dims, each divisible by its stride; any float dtype (transformed in
      float32/complex64, returned in ``x.dtype``).
    stride: int or one per spatial dim (>= 1).
    output: ``abs`` (the authors' magnitude) or ``real`` (the real part).

  Returns:
    (N, *spatial // stride, C).

  Example:
    >>> x = jnp.ones((1, 4, 4, 1))
    >>> flc_pool(x)[0, :, :, 0].tolist()  # DC kept; scaled by stride**rank = 4 (see the module docstring)
    [[4.0, 4.0], [4.0, 4.0]]
  """
  rank = spatial_rank("x", x.shape)
  strides = as_tuple("stride", stride, rank)
  check_choice("output", output, FLC_OUTPUTS)
  for axis, (size, s) in enumerate(zip(x.shape[1:-1], strides)):
    if size % s:
      raise ValueError(f"flc_pool needs spatial sizes divisible by the stride: spatial dim {axis} of x has size "
                       f"{size}, stride {s}; accepted sizes are multiples of {s}.")
  axes = tuple(range(1, rank + 1))
  spectrum = jnp.fft.fftn(x.astype(jnp.float32), axes=axes)
  for axis, s in zip(axes, strides):
    bins = flc_block_bins(x.shape[axis], s) % x.shape[axis]
    spectrum = jnp.take(spectrum, jnp.asarray(bins), axis=axis)
  y = jnp.fft.ifftn(spectrum, axes=axes)
  y = jnp.abs(y) if output == "abs" else jnp.real(y)
  return y.astype(x.dtype)


__all__ = ["FLC_OUTPUTS", "flc_block_bins", "flc_pool"]
