"""Flax NNX: border-mode convolution, BlurPool / MaxBlurPool / APS layers, the zoo, and a one-call switch.

    from flax import nnx
    import jaxborders.nnx as jbx

    conv = jbx.Conv(3, 16, (3, 3), mode='full', rngs=nnx.Rngs(0))     # nnx.Conv's arguments, plus mode
    model = jbx.from_linen(jaxborders.models.get_model('resnet18'), rngs=nnx.Rngs(0))   # the zoo, bridged
    switched = jbx.set_border_mode(my_nnx_cnn, 'circular', antialias='blur')          # in place, params kept

Layers
  ``Conv`` subclasses ``nnx.Conv``: the same constructor (``in_features, out_features, kernel_size, strides,
  padding=..., rngs=...``), the same ``kernel`` / ``bias`` ``nnx.Param``s drawn in the same order (so
  ``Conv(..., rngs=nnx.Rngs(0))`` holds the values ``nnx.Conv(..., rngs=nnx.Rngs(0))`` holds), and flax's
  ``padding`` with flax's numbers; ``mode=`` (one of ``jaxborders.MODES``) wins over ``padding`` as in
  ``jaxborders.nn.Conv``. As in ``nnx.Conv`` an int ``kernel_size`` means 1D (the linen ``jaxborders.nn.Conv``
  reads it as square 2D). ``antialias=`` (``'blur[:kind:size]'``, ``'aps[:norm[:blur_size]]'``) makes a strided conv
  run at stride 1 followed by that downsampling. ``BlurPool``, ``MaxBlurPool`` and ``APSPool`` take the linen
  layers' arguments and compute exactly what they compute (no parameters).

The zoo from NNX (``from_linen``)
  ``nnx.bridge.ToNNX`` wraps a linen zoo model; after ``nnx.bridge.lazy_init`` its state mirrors the linen variables:
  every linen ``params`` leaf becomes an ``nnx.Param`` and every ``batch_stats`` leaf an ``nnx.BatchStat`` at the
  linen module path without the collection name (linen ``params/layer1_0/conv1/kernel`` is
  ``model.layer1_0['conv1']['kernel']``; ``nnx.state(model, nnx.Param)`` gives all of them). Call it as the linen
  model: ``model(x, train=False)``; ``train=True`` needs ``mutable=['batch_stats']`` as in linen apply.

Switching an NNX model (``set_border_mode``)
  Replaces every ``nnx.Conv`` attribute / list entry of the model by ``Conv`` with the chosen mode (and
  antialias), reusing the very same ``nnx.Param`` objects, so parameters, optimiser state and checkpoints stay
  valid. Not switched: convolutions inside ``ToNNX``-bridged linen models (use ``jaxborders.nn.border_mode``
  around their call), ``nnx.ConvTranspose``, pooling functions called in the model's code. NNX calls modules
  directly (there is no interception), so where ``full`` / ``valid`` make branch shapes disagree the error is
  JAX's own; ``set_border_mode`` warns about that when it switches to a size-changing mode.
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
from flax import nnx

from jaxborders.nn import compat
from jaxborders.nn import layers as linen_layers
from jaxborders.nn import switch


class Conv(nnx.Conv):
  """``nnx.Conv`` with a border ``mode`` (and optional anti-aliasing); see the module docstring.

  Args:
    in_features, out_features, kernel_size, strides: as ``nnx.Conv``.
    mode: ``None`` (flax's ``padding`` decides, with flax's numbers) or one of ``jaxborders.MODES``.
    antialias: ``None``, ``'blur[:kind:size]'`` or ``'aps[:norm[:blur_size]]'``: a strided conv becomes stride 1 plus
      this downsampling (``jaxborders.nn.switch.downsample``).
    **kwargs: every other ``nnx.Conv`` argument (``padding``, ``kernel_dilation``, ``feature_group_count``,
      ``use_bias``, ``mask``, ``dtype``, ``param_dtype``, ``precision``, ``kernel_init``, ``bias_init``,
      ``promote_dtype``, ``rngs``, ...). Unsupported, with a ``ValueError``: ``input_dilation != 1``,
      ``preferred_element_type`` and a custom ``conv_general_dilated``.

  Example:
    >>> conv = Conv(1, 2, (3, 3), mode='full', rngs=nnx.Rngs(0))
    >>> conv(jax.numpy.ones((5, 5, 1))).shape  # unbatched, as nnx.Conv allows
    (7, 7, 2)
  """

  def __init__(self, in_features: int, out_features: int, kernel_size: Any, strides: Any = 1, *, mode: Any = None,
               antialias: Any = None, **kwargs: Any):
    compat.check_mode(mode)
    compat.check_padding(kwargs.get("padding", "SAME"))
    switch.parse_antialias(antialias)
    if kwargs.get("preferred_element_type") is not None:
      raise ValueError("preferred_element_type is not supported by jaxborders.nnx.Conv.")
    if kwargs.get("conv_general_dilated", jax.lax.conv_general_dilated) is not jax.lax.conv_general_dilated:
      raise ValueError("a custom conv_general_dilated is not supported: the convolution is jaxborders.conv.")
    super().__init__(in_features, out_features, kernel_size, strides, **kwargs)
    self.mode = mode
    self.antialias = antialias
    _check_static(self)

  def __call__(self, inputs: jax.Array, out_sharding: Any = None) -> jax.Array:
    if out_sharding is not None:
      raise ValueError("out_sharding is not supported by jaxborders.nnx.Conv.")
    return border_conv_call(self, inputs, self.mode, self.antialias)


def _check_static(conv: nnx.Conv) -> None:
  rank = len(conv.kernel_size)
  compat.broadcast("strides", conv.strides, rank)
  compat.broadcast("kernel_dilation", conv.kernel_dilation, rank)
  if compat.broadcast("input_dilation", conv.input_dilation, rank) != (1,) * rank:
    raise ValueError(f"input_dilation={conv.input_dilation!r} is not supported (a transposed convolution); use "
                     f"nnx.ConvTranspose, or input_dilation=1.")


def border_conv_call(conv: nnx.Conv, inputs: jax.Array, mode: Any, antialias: Any = None) -> jax.Array:
  """Runs ``conv``'s parameters through ``jaxborders.conv`` with ``mode`` (None: its padding) and ``antialias``."""
  rank = len(conv.kernel_size)
  strides = compat.broadcast("strides", conv.strides, rank)
  dilation = compat.broadcast("kernel_dilation", conv.kernel_dilation, rank)
  kernel = conv.kernel[...]
  if conv.mask is not None:
    kernel = kernel * conv.mask
  bias = conv.bias[...] if conv.bias is not None else None
  inputs, kernel, bias = conv.promote_dtype((inputs, kernel, bias), dtype=conv.dtype)
  anti = switch.parse_antialias(antialias).method != "none" and any(s > 1 for s in strides)
  conv_strides = (1,) * rank if anti else strides
  run = lambda x: compat.conv_with_padding(x, kernel, mode, conv.padding, conv_strides, dilation,  # noqa: E731
                                           conv.feature_group_count, conv.precision)
  y = compat.with_batch_dims(inputs, rank, run, name="inputs")
  if bias is not None:
    y = y + bias
  return switch.downsample(y, strides, antialias) if anti else y


class _Pool(nnx.Module):
  """An NNX layer computing exactly its parameter-free linen twin."""

  def _linen(self) -> Any:
    raise NotImplementedError

  def __call__(self, x: jax.Array, *args: Any) -> Any:
    return self._linen().apply({}, x, *args)


class BlurPool(_Pool):
  """``jaxborders.nn.BlurPool`` as an NNX module (same arguments; see ``jaxborders.blur_pool``).

  Example:
    >>> BlurPool()(jax.numpy.ones((1, 8, 8, 2))).shape
    (1, 4, 4, 2)
  """

  def __init__(self, size: int = 3, stride: Any = 2, kind: str = "binomial", pad_mode: str = "reflect",
               pad_off: int = 0, spatial_dims: int | None = None):
    self.layer = nnx.static(linen_layers.BlurPool(size, stride, kind, pad_mode, pad_off, spatial_dims))

  def _linen(self):
    return self.layer


class MaxBlurPool(_Pool):
  """``jaxborders.nn.MaxBlurPool`` as an NNX module (dense max pool, then BlurPool)."""

  def __init__(self, pool_size: int = 2, size: int = 3, stride: Any = 2, kind: str = "binomial",
               pad_mode: str = "reflect", pad_off: int = 0, spatial_dims: int | None = None):
    self.layer = nnx.static(linen_layers.MaxBlurPool(pool_size, size, stride, kind, pad_mode, pad_off, spatial_dims))

  def _linen(self):
    return self.layer


class APSPool(_Pool):
  """``jaxborders.nn.APSPool`` as an NNX module: ``__call__(x, index=None) -> (y, index)``."""

  def __init__(self, stride: Any = 2, norm: str = "l2", blur_size: int = 1, blur_kind: str = "binomial",
               spatial_dims: int | None = None):
    self.layer = nnx.static(linen_layers.APSPool(stride, norm, blur_size, blur_kind, spatial_dims))

  def _linen(self):
    return self.layer

  def __call__(self, x: jax.Array, index: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    return self.layer.apply({}, x, index)


def from_linen(model: Any, example_input: jax.Array | None = None, rngs: nnx.Rngs | None = None) -> nnx.Module:
  """A linen zoo model as an NNX module (``nnx.bridge.ToNNX``), initialised on ``example_input``.

  Args:
    model: an unbound linen module (e.g. ``jaxborders.models.get_model('resnet18')``).
    example_input: an input to initialise with (default: ``model.example_input_shape(1)`` zeros).
    rngs: ``nnx.Rngs`` for the initialisation (default ``nnx.Rngs(0)``).

  Returns:
    The bridged module; its state layout is described in the module docstring.
  """
  if example_input is None:
    if not hasattr(model, "example_input_shape"):
      raise ValueError(f"{type(model).__name__} has no example_input_shape(); pass example_input=.")
    example_input = jax.numpy.zeros(model.example_input_shape(1), jax.numpy.float32)
  bridged = nnx.bridge.ToNNX(model, rngs=rngs or nnx.Rngs(0))
  nnx.bridge.lazy_init(bridged, example_input)
  return bridged


def set_border_mode(model: nnx.Module, mode: Any, antialias: Any = None) -> list[str]:
  """Switches every ``nnx.Conv`` of ``model`` to ``Conv(mode=mode, antialias=antialias)`` in place.

  Args:
    model: an NNX module.
    mode: one of ``jaxborders.MODES`` (or one per axis), or ``None`` to keep each conv's padding.
    antialias: as in ``Conv``.

  Returns:
    The paths (``'a/b/0'``) of the switched convs.

  Raises:
    ValueError: bad ``mode`` / ``antialias`` (before anything changes); ``NothingToSwitchError`` when the model has
      no ``nnx.Conv``.

  Example:
    >>> model = nnx.Sequential(nnx.Conv(1, 2, (3, 3), rngs=nnx.Rngs(0)))
    >>> set_border_mode(model, 'circular', antialias='blur')
    ['layers/0']
    >>> model(jax.numpy.ones((1, 4, 4, 1))).shape  # stride 1: the blur is not applied
    (1, 4, 4, 2)
  """
  compat.check_mode(mode)
  switch.parse_antialias(antialias)
  if mode is None and antialias is None:
    raise ValueError("set_border_mode(model, None, antialias=None) switches nothing; give a mode, an antialias, "
                     "or both.")
  targets = [(path, conv) for path, conv in nnx.iter_modules(model) if isinstance(conv, nnx.Conv) and path]
  if not targets:
    raise switch.NothingToSwitchError(
        f"set_border_mode: {type(model).__name__} has no nnx.Conv submodule, so nothing was switched (bridged linen "
        f"models are switched with jaxborders.nn.border_mode around their call).")
  for path, conv in targets:
    _replace(model, path, _switched(conv, mode, antialias))
  if any(m in switch.SIZE_CHANGING_MODES for m in ((mode,) if isinstance(mode, str) or mode is None else mode)):
    warnings.warn(f"set_border_mode({mode!r}) changes feature-map sizes: where the model adds or concatenates "
                  f"branches, shapes will stop matching (NNX has no module interception to name the place). The zoo's "
                  f"F-Conv models crop the shortcut: jaxborders.models.get_model('resnet18', conv_mode='full').",
                  stacklevel=2)
  return ["/".join(map(str, path)) for path, _ in targets]


def _switched(conv: nnx.Conv, mode: Any, antialias: Any) -> Conv:
  """A ``Conv`` holding ``conv``'s own ``nnx.Param`` objects (no new values are drawn: ``nnx.eval_shape``)."""
  kwargs = dict(padding=conv.padding, input_dilation=conv.input_dilation, kernel_dilation=conv.kernel_dilation,
                feature_group_count=conv.feature_group_count, use_bias=conv.use_bias, mask=conv.mask,
                dtype=conv.dtype, param_dtype=conv.param_dtype, precision=conv.precision,
                promote_dtype=conv.promote_dtype)
  new = nnx.eval_shape(lambda: Conv(conv.in_features, conv.out_features, conv.kernel_size, conv.strides, mode=mode,
                                    antialias=antialias, rngs=nnx.Rngs(0), **kwargs))
  new.kernel = conv.kernel
  new.bias = conv.bias
  return new


def _replace(model: nnx.Module, path: tuple[Any, ...], new: nnx.Module) -> None:
  parent = model
  for key in path[:-1]:
    parent = parent[key] if isinstance(key, int) else getattr(parent, key)
  if isinstance(path[-1], int):
    parent[path[-1]] = new
  else:
    setattr(parent, path[-1], new)


__all__ = ["Conv", "BlurPool", "MaxBlurPool", "APSPool", "from_linen", "set_border_mode", "border_conv_call"]
