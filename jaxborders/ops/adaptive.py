"""Content-adaptive anti-aliasing (Zou, Xiao, Yu & Lee, BMVC 2020, "Delving Deeper into Anti-aliasing in
ConvNets"; authors' code: MaureenZOU/Adaptive-anti-Aliasing, ``pasa.py``, class ``Downsample_PASA_group_softmax``).

Instead of one fixed blur, a convolution predicts at every output position and for every channel group a
``k x k`` low-pass kernel (``G * k**rank`` logits), a softmax turns each group's logits into non-negative taps
that sum to one, and the kernel is applied to the ``k x k`` neighbourhood of that position in every channel of the
group; then the map is subsampled::

    y[n, i, c] = sum_t softmax(logits[n, i, g(c), :])[t] * xpad[n, s*i + o_t, c]

with ``o_t`` the ``t``-th tap offset (row-major over the window), ``g(c) = c // (C / G)`` (contiguous channel
groups, as their ``reshape(group, C // group, ...)``) and ``xpad`` the input padded by ``k // 2`` per side.

The authors' layer is ``pad (reflect) -> conv k x k (no bias) -> BatchNorm -> softmax -> weighted sum -> [::s]``;
``jaxborders.nn.AdaptiveBlurPool`` builds that layer on this op. Two deliberate differences:

* ``normalize='group'`` (default) applies the softmax over each group's ``k**rank`` taps, as the paper describes,
  so every predicted kernel is a low-pass with unit DC gain. The authors' code applies it over all
  ``G * k**rank`` channels at once (``nn.Softmax(dim=1)``), so each group's taps sum to less than one and the
  groups compete; ``normalize='all'`` reproduces that.
* Only the kept positions are computed (the authors filter every position, then keep ``[::s]``): same outputs,
  ``s**rank`` times less work. (In training, BatchNorm statistics of the layer's logits are then taken over the
  kept positions only.)
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Literal

import jax
import jax.numpy as jnp

from jaxborders.ops import padding
from jaxborders.ops.checks import as_tuple, check_choice, spatial_rank

AdaptiveNormalize = Literal["group", "all"]
ADAPTIVE_NORMALIZE: tuple[str, ...] = ("group", "all")
# Border modes of the neighbourhoods (and of the logit conv in the layer): 'same' pads zeros.
ADAPTIVE_PAD_MODES: tuple[str, ...] = ("reflect", "replicate", "circular", "same")


def check_adaptive_args(size: int, groups: int, channels: int | None = None, pad_mode: str = "reflect",
                        normalize: str = "group") -> None:
  """Validates the adaptive pool's static arguments (shared with the layer, before any parameter exists)."""
  if not isinstance(size, int) or isinstance(size, bool) or size < 1 or size % 2 == 0:
    raise ValueError(f"size={size!r} is not supported; accepted sizes: odd ints >= 1 (the window is centred).")
  if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
    raise ValueError(f"groups must be an int >= 1, got {groups!r}.")
  if channels is not None and channels % groups:
    raise ValueError(f"groups={groups} must divide the {channels} input channels.")
  check_choice("pad_mode", pad_mode, ADAPTIVE_PAD_MODES)
  check_choice("normalize", normalize, ADAPTIVE_NORMALIZE)


def window_taps(x: jax.Array, size: int, stride: int | Sequence[int] = 2, pad_mode: str = "reflect") -> jax.Array:
  """The ``size**rank`` neighbourhood values of every kept position: (N, *ceil(spatial / stride), C, T).

  Tap ``t`` is the offset ``np.unravel_index(t, (size,) * rank)`` into the window centred at ``stride * i``.

  Example:
    >>> window_taps(jnp.arange(1., 6.).reshape(1, 5, 1), 3, 2, 'same')[0, :, 0].tolist()
    [[0.0, 1.0, 2.0], [2.0, 3.0, 4.0], [4.0, 5.0, 0.0]]
  """
  rank = spatial_rank("x", x.shape)
  strides = as_tuple("stride", stride, rank)
  xp = padding.pad(x, pad_mode, size)
  out = [-(-n // s) for n, s in zip(x.shape[1:-1], strides)]
  taps = []
  for offset in itertools.product(range(size), repeat=rank):
    index = tuple(slice(o, o + s * (m - 1) + 1, s) for o, s, m in zip(offset, strides, out))
    taps.append(xp[(slice(None), *index)])
  return jnp.stack(taps, axis=-1)


def adaptive_blur_pool(x: jax.Array, logits: jax.Array, size: int = 3, stride: int | Sequence[int] = 2,
                       groups: int = 2, pad_mode: str = "reflect",
                       normalize: AdaptiveNormalize = "group") -> jax.Array:
  """Applies per-position, per-group predicted low-pass kernels and subsamples (the module docstring's formula).

  Args:
    x: (N, *spatial, C), 1-3 spatial dims; ``groups`` divides ``C``.
    logits: (N, *ceil(spatial / stride), groups * size**rank) kernel logits, group-major (``g * T + t``),
      e.g. from a strided ``jaxborders.conv`` with ``mode=pad_mode``.
    size: odd window size per spatial dim.
    stride: int or one per spatial dim.
    groups: channel groups sharing a kernel.
    pad_mode: border of the windows, one of ``ADAPTIVE_PAD_MODES``.
    normalize: softmax over each group's taps (``group``) or over all logits of a position (``all``, the
      authors' code).

  Returns:
    (N, *ceil(spatial / stride), C) in ``x.dtype`` (softmax in float32).

  Example:
    >>> x = jnp.arange(6.).reshape(1, 6, 1)
    >>> logits = jnp.zeros((1, 3, 3))  # uniform taps: a 3-tap box filter
    >>> adaptive_blur_pool(x, logits, groups=1, pad_mode='same').tolist()
    [[[0.3333333432674408], [2.0], [4.0]]]
  """
  rank = spatial_rank("x", x.shape)
  strides = as_tuple("stride", stride, rank)
  check_adaptive_args(size, groups, x.shape[-1], pad_mode, normalize)
  taps = size**rank
  out = tuple(-(-n // s) for n, s in zip(x.shape[1:-1], strides))
  expected = (x.shape[0], *out, groups * taps)
  if tuple(logits.shape) != expected:
    raise ValueError(f"logits must have shape {expected} ((N, *ceil(spatial / stride), groups * size**rank)), got "
                     f"{tuple(logits.shape)}.")
  grouped = logits.astype(jnp.float32).reshape(*expected[:-1], groups, taps)
  if normalize == "group":
    weights = jax.nn.softmax(grouped, axis=-1)
  else:
    weights = jax.nn.softmax(grouped.reshape(expected), axis=-1).reshape(grouped.shape)
  windows = window_taps(x, size, strides, pad_mode)  # (N, *out, C, T)
  windows = windows.reshape(*expected[:-1], groups, x.shape[-1] // groups, taps)
  y = jnp.einsum("...gct,...gt->...gc", windows, weights.astype(x.dtype))
  return y.reshape(*expected[:-1], x.shape[-1])


__all__ = ["ADAPTIVE_NORMALIZE", "ADAPTIVE_PAD_MODES", "adaptive_blur_pool", "window_taps", "check_adaptive_args"]
