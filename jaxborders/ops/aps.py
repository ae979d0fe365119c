"""Adaptive polyphase sampling (APS; Chaman & Dokmanic, CVPR 2021; docs/antialiasing.md).

Stride-``s`` subsampling keeps one of the ``s**rank`` polyphase components ``x[:, i::s, j::s]``. Plain
subsampling always keeps component 0, so a one-pixel shift of the input changes which samples survive. APS keeps,
per sample, the component of largest norm: a circular shift of the input permutes the components (and shifts
each one circularly), so the same component content is chosen and the output is a circular shift of the
unshifted output. Stacked with circular convolutions and global pooling, a network is exactly invariant to
circular shifts.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Literal

import jax
import jax.numpy as jnp

from jaxborders.ops.checks import as_tuple, check_choice, spatial_rank

ApsNorm = Literal["l2", "l1", "linf"]
APS_NORMS: tuple[str, ...] = ("l2", "l1", "linf")


def polyphase_components(x: jax.Array, stride: int | Sequence[int] = 2) -> jax.Array:
  """All polyphase components of ``x``: (N, prod(stride), *spatial // stride, C).

  Component ``c`` has phase ``np.unravel_index(c, stride)``, i.e. component 1 of a 2D stride-2 split is
  ``x[:, 0::2, 1::2]`` (row-major order over the phases).
  """
  rank = spatial_rank("x", x.shape)
  strides = as_tuple("stride", stride, rank)
  _check_divisible(x.shape, strides)
  n, c = x.shape[0], x.shape[-1]
  split = [n]
  for size, s in zip(x.shape[1:-1], strides):
    split += [size // s, s]
  y = x.reshape(*split, c)
  # (N, n1, s1, n2, s2, ..., C) -> (N, s1, s2, ..., n1, n2, ..., C)
  phase_axes = [2 + 2 * i for i in range(rank)]
  size_axes = [1 + 2 * i for i in range(rank)]
  y = y.transpose(0, *phase_axes, *size_axes, 2 * rank + 1)
  return y.reshape(n, -1, *(size // s for size, s in zip(x.shape[1:-1], strides)), c)


def _check_divisible(shape: Sequence[int], strides: Sequence[int]) -> None:
  for axis, (size, s) in enumerate(zip(shape[1:-1], strides)):
    if size % s:
      raise ValueError(
          f"aps_pool needs spatial sizes divisible by the stride: spatial dim {axis} of x has size {size}, stride {s} "
          f"(pad odd sizes circularly by one first, e.g. jaxborders.pad_to_multiple).")


@functools.partial(jax.jit, static_argnames=("strides", "norm"))
def _aps_pool(x: jax.Array, index: jax.Array | None, strides: tuple[int, ...], norm: str):
  components = polyphase_components(x, strides)  # (N, P, *small, C)
  if index is None:
    flat = components.reshape(*components.shape[:2], -1).astype(jnp.float32)
    if norm == "l2":
      scores = jnp.sum(flat * flat, axis=-1)  # monotone in the l2 norm, no sqrt needed
    elif norm == "l1":
      scores = jnp.sum(jnp.abs(flat), axis=-1)
    else:
      scores = jnp.max(jnp.abs(flat), axis=-1)
    index = jnp.argmax(scores, axis=1).astype(jnp.int32)
  chosen = jnp.take_along_axis(components, index.reshape(-1, *([1] * (components.ndim - 1))), axis=1)
  return chosen[:, 0], index


def aps_pool(x: jax.Array, stride: int | Sequence[int] = 2, norm: ApsNorm = "l2",
             index: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
  """Adaptive polyphase downsampling.

  Args:
    x: (N, *spatial, C), 1-3 spatial dims, each divisible by its stride.
    stride: int or one per spatial dim.
    norm: ``l2`` (default), ``l1`` or ``linf``: the norm over all channels and positions of a component.
    index: optional (N,) int array of component indices to reuse (a ResNet shortcut reuses its main
      branch's choice so both branches stay aligned).

  Returns:
    ``(y, index)``: y of shape (N, *spatial // stride, C) and the (N,) int32 component index, row-major over
    the phases (for 2D stride 2: 0 -> ``x[:, 0::2, 0::2]``, 1 -> ``x[:, 0::2, 1::2]``, 2 -> ``x[:, 1::2, 0::2]``,
    3 -> ``x[:, 1::2, 1::2]``).

  Example:
    >>> x = jnp.zeros((1, 4, 4, 1)).at[0, 1, 3, 0].set(5.)
    >>> y, index = aps_pool(x)
    >>> int(index[0]), float(y.sum())
    (3, 5.0)
  """
  rank = spatial_rank("x", x.shape)
  check_choice("norm", norm, APS_NORMS)
  strides = as_tuple("stride", stride, rank)
  _check_divisible(x.shape, strides)
  if index is not None:
    index = jnp.asarray(index)
    if index.shape != (x.shape[0],) or not jnp.issubdtype(index.dtype, jnp.integer):
      raise ValueError(f"index must be an int array of shape ({x.shape[0]},) (one component per sample), got "
                       f"shape {index.shape} and dtype {index.dtype}.")
  return _aps_pool(x, index, strides, norm)


def pad_to_multiple(x: jax.Array, multiple: int | Sequence[int] = 2) -> jax.Array:
  """Circularly pads each spatial dim at its end up to a multiple of ``multiple`` (for APS on odd sizes)."""
  rank = spatial_rank("x", x.shape)
  ms = as_tuple("multiple", multiple, rank)
  widths = [(0, 0)] + [(0, (-n) % m) for n, m in zip(x.shape[1:-1], ms)] + [(0, 0)]
  if all(w == (0, 0) for w in widths):
    return x
  return jnp.pad(x, widths, mode="wrap")


__all__ = ["APS_NORMS", "aps_pool", "polyphase_components", "pad_to_multiple"]
