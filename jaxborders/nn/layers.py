"""Flax linen layers, each a thin wrapper of one pure op in ``jaxborders.ops``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxborders.ops import aps as aps_ops
from jaxborders.nn import compat
from jaxborders.ops import filters
from jaxborders.ops.checks import as_modes, check_choice

Dtype = Any


class Conv(nn.Module):
  """Drop-in for ``flax.linen.Conv`` that can also run any border ``mode`` of ``jaxborders.conv``.

  Takes ``flax.linen.Conv``'s arguments (flax 0.12) with its meaning, plus ``mode``:

  * ``mode=None`` (default): flax's ``padding`` decides, with flax's numbers (``'SAME'``, ``'VALID'``,
    ``'CIRCULAR'``, ``'REFLECT'``, ``'CAUSAL'``, an int, or per-dim ints / ``(lo, hi)`` pairs; see
    ``jaxborders.nn.compat``). Note flax's ``'SAME'`` at stride 2 on even inputs pads ``(0, 1)``.
  * ``mode='same'`` / ``'full'`` / ... (one of ``jaxborders.MODES``): ours, and it wins over ``padding``.
    ``'same'`` pads symmetrically like PyTorch (output ``i`` centred on input ``i * s``).

  Inputs are ``(*batch, *spatial, C)`` with any number of batch dims, none included (flattened and restored,
  as flax does). Parameters are ``kernel`` ``(*kernel_size, C_in // groups, features)`` and ``bias``
  ``(features,)``, created with the same initialisers in the same order, so a flax checkpoint loads unchanged
  and ``init`` gives flax's values.

  Deliberate differences from flax: an int ``kernel_size`` means a square 2D kernel (flax reads ``3`` as the
  1D ``(3,)``; pass a tuple for 1D / 3D), and ``kernel_size`` defaults to 3. Not supported (a ``ValueError``
  says so): ``input_dilation != 1`` (a transposed conv: use ``flax.linen.ConvTranspose``) and the deprecated
  ``conv_general_dilated`` / ``conv_general_dilated_cls`` hooks.

  Attributes:
    features: output channels.
    kernel_size: int (square 2D) or one per spatial dim; the spatial rank is ``len(kernel_size)``.
    strides: int or one per spatial dim (``None``: 1).
    padding: flax's padding (used when ``mode`` is None).
    input_dilation: must be 1 (accepted for signature compatibility).
    kernel_dilation: int or one per spatial dim (``None``: 1).
    feature_group_count: groups.
    use_bias: add a bias.
    mask: optional multiplicative mask of the kernel's shape (as flax).
    dtype: computation dtype (``None``: from the inputs and params).
    param_dtype: parameter dtype.
    precision: passed to the convolution.
    kernel_init, bias_init: initialisers (flax's defaults).
    promote_dtype: flax's dtype promotion hook.
    mode: ``None``, a border mode of ``jaxborders.MODES``, or one per spatial dim (e.g. ``('same', 'full')``); wins
      over ``padding``. With ``partial`` the bias is added after the rescaling, as in NVIDIA's ``partialconv``.

  Example:
    >>> import flax.linen as fnn
    >>> x = jnp.ones((8, 8, 3))  # unbatched, as flax allows
    >>> ours, theirs = Conv(4, (3, 3), strides=2), fnn.Conv(4, (3, 3), strides=2)
    >>> v = theirs.init(jax.random.key(0), x)
    >>> bool(jnp.allclose(ours.apply(v, x), theirs.apply(v, x), atol=1e-5))  # flax's 'SAME', flax's weights
    True
    >>> Conv(4, (3, 3), mode='full').apply(v, x).shape
    (10, 10, 4)
  """

  features: int
  kernel_size: int | Sequence[int] = 3
  strides: None | int | Sequence[int] = 1
  padding: Any = "SAME"
  input_dilation: None | int | Sequence[int] = 1
  kernel_dilation: None | int | Sequence[int] = 1
  feature_group_count: int = 1
  use_bias: bool = True
  mask: jax.Array | None = None
  dtype: Dtype | None = None
  param_dtype: Dtype = jnp.float32
  precision: Any = None
  kernel_init: Any = nn.initializers.lecun_normal()
  bias_init: Any = nn.initializers.zeros_init()
  promote_dtype: Any = nn.dtypes.promote_dtype
  conv_general_dilated: Any = None
  conv_general_dilated_cls: Any = None
  mode: Any = None

  def __post_init__(self):
    compat.check_mode(self.mode)
    compat.check_padding(self.padding)
    if self.conv_general_dilated is not None or self.conv_general_dilated_cls is not None:
      raise ValueError("conv_general_dilated / conv_general_dilated_cls are not supported by jaxborders.nn.Conv "
                       "(deprecated in flax; the convolution is jaxborders.conv).")
    super().__post_init__()

  @nn.compact
  def __call__(self, inputs: jax.Array) -> jax.Array:
    ks = compat.kernel_tuple(self.kernel_size, 2)
    rank = len(ks)
    # Checked here, before any parameter is created, so that bad arguments fail before init does real work
    # and the message names the layer's own attribute (kernel_dilation, not the op's dilation).
    strides = compat.broadcast("strides", self.strides, rank)
    dilation = compat.broadcast("kernel_dilation", self.kernel_dilation, rank)
    if compat.broadcast("input_dilation", self.input_dilation, rank) != (1,) * rank:
      raise ValueError(f"input_dilation={self.input_dilation!r} is not supported (a transposed convolution); use "
                       f"flax.linen.ConvTranspose, or input_dilation=1.")
    if inputs.shape[-1] % self.feature_group_count:
      raise ValueError(f"feature_group_count={self.feature_group_count} must divide the {inputs.shape[-1]} input "
                       f"channels.")
    kernel_shape = (*ks, inputs.shape[-1] // self.feature_group_count, self.features)
    if self.mask is not None and self.mask.shape != kernel_shape:
      raise ValueError(f"mask must have the kernel's shape {kernel_shape}, got {self.mask.shape}.")
    compat.with_batch_dims(inputs, rank, lambda x: x, name="inputs")  # rank check before creating params
    kernel = self.param("kernel", self.kernel_init, kernel_shape, self.param_dtype)
    if self.mask is not None:
      kernel = kernel * self.mask
    bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype) if self.use_bias else None
    inputs, kernel, bias = self.promote_dtype(inputs, kernel, bias, dtype=self.dtype)
    run = lambda x: compat.conv_with_padding(x, kernel, self.mode, self.padding, strides, dilation,  # noqa: E731
                                             self.feature_group_count, self.precision)
    y = compat.with_batch_dims(inputs, rank, run, name="inputs")
    return y + bias if bias is not None else y


def _pool_rank(spatial_dims: int | None, stride: Any, x: jax.Array) -> int:
  """Spatial rank of a pooling layer: ``spatial_dims``, else ``len(stride)``, else ``x.ndim - 2`` (one batch dim)."""
  if spatial_dims is not None:
    return spatial_dims
  if isinstance(stride, Sequence):
    return len(stride)
  return x.ndim - 2


def _check_spatial_dims(spatial_dims: int | None) -> None:
  if spatial_dims is not None and spatial_dims not in (1, 2, 3):
    raise ValueError(f"spatial_dims={spatial_dims!r} is not supported; accepted values: None, 1, 2, 3.")


_RANK_DOC = """
  Inputs are ``(*batch, *spatial, C)``. The spatial rank is ``spatial_dims`` if given, else ``len(stride)`` for a
  per-dim stride, else ``x.ndim - 2`` (exactly one batch dim); any number of batch dims (none: one example) is
  accepted once the rank is known, as in ``flax.linen.Conv``.
"""


def _check_pad_mode(pad_mode) -> None:
  """Checks one blur pad mode or a tuple of them at construction (the length is checked against x when called)."""
  if isinstance(pad_mode, str):
    check_choice("pad_mode", pad_mode, filters.BLUR_PAD_MODES)
  else:
    as_modes("pad_mode", pad_mode, len(pad_mode) if isinstance(pad_mode, Sequence) else 1, filters.BLUR_PAD_MODES)


class BlurPool(nn.Module):
  """``jaxborders.blur_pool`` as a layer (no parameters).

  Example:
    >>> BlurPool(spatial_dims=2).apply({}, jnp.ones((3, 5, 8, 8, 2))).shape  # two batch dims
    (3, 5, 4, 4, 2)
  """

  size: int = 3
  stride: int | Sequence[int] = 2
  kind: str = "binomial"
  pad_mode: str | Sequence[str] = "reflect"  # one, or one per spatial dim
  pad_off: int = 0
  spatial_dims: int | None = None

  def __post_init__(self):
    filters.filter_taps(self.kind, self.size)  # validates kind and size at construction
    _check_pad_mode(self.pad_mode)
    _check_spatial_dims(self.spatial_dims)
    super().__post_init__()

  def __call__(self, x: jax.Array) -> jax.Array:
    run = lambda x: filters.blur_pool(x, self.size, self.stride, self.kind, self.pad_mode, self.pad_off)  # noqa: E731
    return compat.with_batch_dims(x, _pool_rank(self.spatial_dims, self.stride, x), run)


class MaxBlurPool(nn.Module):
  """``jaxborders.max_blur_pool`` as a layer: dense max pool, then BlurPool."""

  pool_size: int = 2
  size: int = 3
  stride: int | Sequence[int] = 2
  kind: str = "binomial"
  pad_mode: str | Sequence[str] = "reflect"  # one, or one per spatial dim
  pad_off: int = 0
  spatial_dims: int | None = None

  def __post_init__(self):
    filters.filter_taps(self.kind, self.size)
    _check_pad_mode(self.pad_mode)
    _check_spatial_dims(self.spatial_dims)
    super().__post_init__()

  def __call__(self, x: jax.Array) -> jax.Array:
    run = lambda x: filters.max_blur_pool(x, self.pool_size, self.size, self.stride, self.kind,  # noqa: E731
                                          self.pad_mode, self.pad_off)
    return compat.with_batch_dims(x, _pool_rank(self.spatial_dims, self.stride, x), run)


class APSPool(nn.Module):
  """``jaxborders.aps_pool`` as a layer, optionally preceded by a circular stride-1 blur.

  ``__call__(x, index=None)`` returns ``(y, index)``; pass a main branch's ``index`` to a shortcut's APSPool.
  With several batch dims ``index`` has the batch shape ``x.shape[:-rank-1]``.
  """

  stride: int | Sequence[int] = 2
  norm: str = "l2"
  blur_size: int = 1
  blur_kind: str = "binomial"
  spatial_dims: int | None = None

  def __post_init__(self):
    check_choice("norm", self.norm, aps_ops.APS_NORMS)
    filters.filter_taps(self.blur_kind, self.blur_size)
    _check_spatial_dims(self.spatial_dims)
    super().__post_init__()

  def __call__(self, x: jax.Array, index: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    rank = _pool_rank(self.spatial_dims, self.stride, x)
    flat_index = None if index is None else jnp.reshape(index, (-1,))

    def run(x):
      if self.blur_size > 1:
        x = filters.blur_pool(x, self.blur_size, 1, self.blur_kind, "circular")
      return aps_ops.aps_pool(x, self.stride, self.norm, flat_index)

    y, new_index = compat.with_batch_dims(x, rank, run)
    if x.ndim == rank + 1:  # one example: a scalar index
      return y, new_index.reshape(())
    return y, new_index


for _layer in (BlurPool, MaxBlurPool, APSPool):
  _layer.__doc__ += _RANK_DOC

__all__ = ["Conv", "BlurPool", "MaxBlurPool", "APSPool"]
