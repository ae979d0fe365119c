"""Flax linen layers, each a thin wrapper of one pure op in ``jaxborders.ops``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxborders.ops import aps as aps_ops
from jaxborders.ops import filters, padding
from jaxborders.ops.checks import as_modes, as_tuple, check_choice, check_rank

Dtype = Any


class Conv(nn.Module):
  """Drop-in for ``flax.linen.Conv`` with an explicit border ``mode`` (see ``jaxborders.conv``).

  Parameters are named ``kernel`` (``(*kernel_size, C_in // groups, features)``) and ``bias`` as in flax.

  Attributes:
    features: output channels.
    kernel_size: int or one per spatial dim; the spatial rank is ``len(kernel_size)`` (an int means 2D).
    strides: int or one per spatial dim.
    mode: border mode, one of ``jaxborders.MODES``, or one per spatial dim (e.g. ``('same', 'full', 'full')``).
      With ``partial`` the bias is added after the rescaling, as in NVIDIA's ``partialconv``.
    kernel_dilation: int or one per spatial dim.
    feature_group_count: groups.
    use_bias: add a bias.
    dtype: computation dtype (``None``: from the inputs and params).
    param_dtype: parameter dtype.
  """

  features: int
  kernel_size: int | Sequence[int] = 3
  strides: int | Sequence[int] = 1
  mode: str | Sequence[str] = "same"
  kernel_dilation: int | Sequence[int] = 1
  feature_group_count: int = 1
  use_bias: bool = True
  dtype: Dtype | None = None
  param_dtype: Dtype = jnp.float32
  precision: Any = None
  kernel_init: Any = nn.initializers.lecun_normal()
  bias_init: Any = nn.initializers.zeros_init()

  def __post_init__(self):
    if isinstance(self.mode, str):
      check_choice("mode", self.mode, padding.MODES)
    else:
      as_modes("mode", self.mode, len(self.mode) if isinstance(self.mode, Sequence) else 1, padding.MODES)
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    ks = (self.kernel_size,) * 2 if isinstance(self.kernel_size, int) else tuple(self.kernel_size)
    rank = len(ks)
    as_tuple("kernel_size", ks, rank)
    # Checked here, before any parameter is created, so that bad arguments fail before init does real work
    # and the message names the layer's own attribute (kernel_dilation, not the op's dilation).
    as_tuple("strides", self.strides, rank)
    as_tuple("kernel_dilation", self.kernel_dilation, rank)
    as_modes("mode", self.mode, rank, padding.MODES)
    check_rank("x", x.shape, rank)
    if x.shape[-1] % self.feature_group_count:
      raise ValueError(f"feature_group_count={self.feature_group_count} must divide the {x.shape[-1]} input channels.")
    kernel = self.param("kernel", self.kernel_init, (*ks, x.shape[-1] // self.feature_group_count, self.features),
                        self.param_dtype)
    bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype) if self.use_bias else None
    x, kernel, bias = nn.dtypes.promote_dtype(x, kernel, bias, dtype=self.dtype)
    y = padding.conv(x, kernel, self.mode, self.strides, self.kernel_dilation, self.feature_group_count,
                     precision=self.precision)
    if bias is not None:
      y = y + bias
    return y


def _check_pad_mode(pad_mode) -> None:
  """Checks one blur pad mode or a tuple of them at construction (the length is checked against x when called)."""
  if isinstance(pad_mode, str):
    check_choice("pad_mode", pad_mode, filters.BLUR_PAD_MODES)
  else:
    as_modes("pad_mode", pad_mode, len(pad_mode) if isinstance(pad_mode, Sequence) else 1, filters.BLUR_PAD_MODES)


class BlurPool(nn.Module):
  """``jaxborders.blur_pool`` as a layer (no parameters)."""

  size: int = 3
  stride: int | Sequence[int] = 2
  kind: str = "binomial"
  pad_mode: str | Sequence[str] = "reflect"  # one, or one per spatial dim
  pad_off: int = 0

  def __post_init__(self):
    filters.filter_taps(self.kind, self.size)  # validates kind and size at construction
    _check_pad_mode(self.pad_mode)
    super().__post_init__()

  def __call__(self, x: jax.Array) -> jax.Array:
    return filters.blur_pool(x, self.size, self.stride, self.kind, self.pad_mode, self.pad_off)


class MaxBlurPool(nn.Module):
  """``jaxborders.max_blur_pool`` as a layer: dense max pool, then BlurPool."""

  pool_size: int = 2
  size: int = 3
  stride: int | Sequence[int] = 2
  kind: str = "binomial"
  pad_mode: str | Sequence[str] = "reflect"  # one, or one per spatial dim
  pad_off: int = 0

  def __post_init__(self):
    filters.filter_taps(self.kind, self.size)
    _check_pad_mode(self.pad_mode)
    super().__post_init__()

  def __call__(self, x: jax.Array) -> jax.Array:
    return filters.max_blur_pool(x, self.pool_size, self.size, self.stride, self.kind, self.pad_mode, self.pad_off)


class APSPool(nn.Module):
  """``jaxborders.aps_pool`` as a layer, optionally preceded by a circular stride-1 blur.

  ``__call__(x, index=None)`` returns ``(y, index)``; pass a main branch's ``index`` to a shortcut's APSPool.
  """

  stride: int | Sequence[int] = 2
  norm: str = "l2"
  blur_size: int = 1
  blur_kind: str = "binomial"

  def __post_init__(self):
    check_choice("norm", self.norm, aps_ops.APS_NORMS)
    filters.filter_taps(self.blur_kind, self.blur_size)
    super().__post_init__()

  def __call__(self, x: jax.Array, index: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    if self.blur_size > 1:
      x = filters.blur_pool(x, self.blur_size, 1, self.blur_kind, "circular")
    return aps_ops.aps_pool(x, self.stride, self.norm, index)


__all__ = ["Conv", "BlurPool", "MaxBlurPool", "APSPool"]
