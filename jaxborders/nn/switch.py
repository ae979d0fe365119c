"""Switch the border mode (and anti-aliasing) of an existing flax.linen model with one ``with`` statement.

    with jaxborders.nn.border_mode('circular'):
      logits = model.apply(variables, x)          # every flax.linen.Conv now pads circularly

    with jaxborders.nn.border_mode('same', antialias='blur:triangle:3'):
      logits = model.apply(variables, x)          # strided convs: stride-1 conv, then BlurPool

Built on flax's method interception (``flax.linen.intercept_methods``): while the context is active, the
``__call__`` of every ``flax.linen.Conv`` runs through ``jaxborders.conv`` with the chosen mode, creating or reading
the very same ``kernel`` / ``bias`` parameters (names, shapes, initialisers), so the model's own checkpoint loads
and ``mode='same'`` at stride 1 reproduces its outputs (flax's ``'SAME'`` and our ``same`` pad alike at stride 1).

What is switched, and what is not:

* switched: every ``flax.linen.Conv`` (and subclasses) in the model, whatever its ``padding`` (``mode`` wins);
  with ``antialias``, each strided one becomes a stride-1 conv followed by the downsampling (BlurPool or APS)
  with the conv's stride. ``mode=None`` keeps each conv's own padding and only anti-aliases.
* not switched: pooling functions called in the model's code (``nn.max_pool``, ``nn.avg_pool``), ``jnp.pad``,
  ``flax.linen.ConvTranspose`` / ``ConvLocal``, and ``jaxborders.nn.Conv`` (which has its own ``mode``).
* APS here picks one polyphase component per strided conv; the zoo's APS ResNets share the main branch's
  component with the shortcut (``index``), which a switch cannot see. antialiased-cnns blurs after the ReLU that
  follows a strided conv; the switch blurs right after the conv (it cannot see the ReLU).
* tracing happens where the model is called: call ``model.apply`` (or a ``jax.jit`` of it) inside the context; a
  function jitted and traced before, outside the context, keeps its old trace.

Size-preserving modes (``same``, ``circular``, ``reflect``, ``replicate``) work for any model. ``full`` grows and
``valid`` shrinks every feature map, so where a model merges branches (residual add, concatenation) the shapes stop
matching; the error (``BorderModeShapeError``) names the module where it happened and the last switched conv, and
points to the zoo's F-Conv models (``jaxborders.models.get_model('resnet18', conv_mode='full')``), which crop the
shortcut to the main branch.

References: F-Conv, Kayhan & van Gemert (CVPR 2020); BlurPool, Zhang (ICML 2019); APS, Chaman & Dokmanic (CVPR 2021).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Iterator
from typing import Any

import flax.errors
import flax.linen as fnn
import jax
import jax.numpy as jnp

from jaxborders.nn import compat
from jaxborders.nn import downsample as downsample_lib
from jaxborders.nn.layers import APSPool, BlurPool

SIZE_CHANGING_MODES: tuple[str, ...] = ("full", "valid")


class BorderModeShapeError(ValueError):
  """Feature maps changed size under a switched border mode and a module could not combine them."""


class NothingToSwitchError(ValueError):
  """The model run under ``border_mode`` had no ``flax.linen.Conv`` to switch."""


SWITCH_ANTIALIAS: tuple[str, ...] = ("blur", "aps")


def parse_antialias(antialias: Any):
  """The zoo's ``antialias`` spec (``jaxborders.nn.downsample``), limited to the methods a switch can insert."""
  aa = downsample_lib.parse_antialias(antialias)
  if aa.method not in ("none", *SWITCH_ANTIALIAS):
    raise ValueError(f"antialias={antialias!r} is not supported by the border-mode switch; accepted methods: None, "
                     f"{', '.join(map(repr, SWITCH_ANTIALIAS))} (with their options, e.g. 'blur:triangle:3', 'aps:l1').")
  return aa


def downsample(x: jax.Array, strides: tuple[int, ...], antialias: Any) -> jax.Array:
  """The anti-aliased downsampling that replaces a conv's stride (BlurPool or APS) on ``(*batch, *spatial, C)``."""
  aa = parse_antialias(antialias)
  rank = len(strides)
  if aa.method == "blur":
    return BlurPool(size=aa.size, stride=strides, kind=aa.kind, spatial_dims=rank).apply({}, x)
  if aa.method == "aps":
    return APSPool(stride=strides, norm=aa.norm, blur_size=aa.size, spatial_dims=rank).apply({}, x)[0]
  raise ValueError(f"antialias={antialias!r}: no downsampling to insert.")


_SHAPE_MESSAGE = re.compile(r"incompatible shapes|with shapes|same shape|expected to generate shape", re.IGNORECASE)


def _is_shape_error(error: Exception) -> bool:
  return (isinstance(error, (flax.errors.ScopeParamShapeError, flax.errors.ScopeParamNotFoundError))
          or _SHAPE_MESSAGE.search(str(error)) is not None)


def _path(module: fnn.Module) -> str:
  path = getattr(module, "path", None) or ()
  return "/".join(map(str, path)) or "<root>"


@dataclasses.dataclass
class SwitchRecord:
  """What a ``border_mode`` context switched: the paths of the convs it ran, in call order."""

  mode: Any
  antialias: Any
  paths: list[str] = dataclasses.field(default_factory=list)

  @property
  def size_changing(self) -> bool:
    modes = (self.mode,) if isinstance(self.mode, str) or self.mode is None else tuple(self.mode)
    return any(m in SIZE_CHANGING_MODES for m in modes)

  def intercept(self, next_fun, args, kwargs, context):
    module = context.module
    if context.method_name == "__call__" and isinstance(module, fnn.Conv):
      return self._conv(module, *args, **kwargs)
    if not self.size_changing:
      return next_fun(*args, **kwargs)
    try:
      return next_fun(*args, **kwargs)
    except (TypeError, ValueError, flax.errors.FlaxError) as e:
      # A merge of mismatched maps (add, concatenate), a parameter of another shape, or a branch taken only
      # because shapes changed (flax examples build a projection shortcut when `residual.shape != y.shape`).
      if isinstance(e, BorderModeShapeError) or not self.paths or not _is_shape_error(e):
        raise
      raise BorderModeShapeError(self._shape_message(module, e)) from e

  def _shape_message(self, module: fnn.Module, error: Exception) -> str:
    last = self.paths[-1] if self.paths else "(none yet)"
    return (f"border_mode({self.mode!r}) changes feature-map sizes, and module '{_path(module)}' "
            f"({type(module).__name__}) could not combine them: {error} Last switched conv before the error: '{last}'. "
            f"Size-preserving modes ('same', 'circular', 'reflect', 'replicate') switch any model; 'full' and 'valid' "
            f"need a model that crops or pads where branches merge, as the zoo's F-Conv models do "
            f"(jaxborders.models.get_model('resnet18', conv_mode='full'), see jaxborders.models.resnet).")

  def _conv(self, module: fnn.Conv, inputs: jax.Array) -> jax.Array:
    ks = (module.kernel_size,) if isinstance(module.kernel_size, int) else tuple(module.kernel_size)  # flax's reading
    rank = len(ks)
    strides = compat.broadcast("strides", module.strides, rank)
    dilation = compat.broadcast("kernel_dilation", module.kernel_dilation, rank)
    if compat.broadcast("input_dilation", module.input_dilation, rank) != (1,) * rank:
      raise ValueError(f"border_mode cannot switch conv '{_path(module)}': input_dilation={module.input_dilation!r} "
                       f"(a transposed convolution) is not supported.")
    kernel_shape = (*ks, inputs.shape[-1] // module.feature_group_count, module.features)
    kernel = module.param("kernel", module.kernel_init, kernel_shape, module.param_dtype)
    if module.mask is not None:
      kernel = kernel * module.mask
    bias = module.param("bias", module.bias_init, (module.features,), module.param_dtype) if module.use_bias else None
    inputs, kernel, bias = module.promote_dtype(inputs, kernel, bias, dtype=module.dtype)
    anti = parse_antialias(self.antialias).method != "none" and any(s > 1 for s in strides)
    conv_strides = (1,) * rank if anti else strides
    run = lambda x: compat.conv_with_padding(x, kernel, self.mode, module.padding, conv_strides,  # noqa: E731
                                             dilation, module.feature_group_count, module.precision)
    y = compat.with_batch_dims(inputs, rank, run, name="inputs")
    if bias is not None:
      y = y + bias
    self.paths.append(_path(module))
    return downsample(y, strides, self.antialias) if anti else y


@contextlib.contextmanager
def border_mode(mode: Any, antialias: Any = None) -> Iterator[SwitchRecord]:
  """Runs every ``flax.linen.Conv`` called inside the context with border ``mode`` (and ``antialias``).

  Args:
    mode: one of ``jaxborders.MODES`` (or one per spatial axis), or ``None`` to keep each conv's padding.
    antialias: ``None``, ``'blur'`` / ``'blur:<kind>:<size>'`` (BlurPool) or ``'aps'`` / ``'aps:<norm>'`` /
      ``'aps:<norm>:<blur_size>'``: every strided conv becomes stride 1 followed by this downsampling.

  Yields:
    A ``SwitchRecord`` whose ``paths`` lists the switched convs (in call order, one entry per call).

  Raises:
    ValueError: a bad ``mode`` / ``antialias`` (before anything runs); ``NothingToSwitchError`` at exit when no
      ``flax.linen.Conv`` ran inside; ``BorderModeShapeError`` where a size-changing mode breaks a merge.

  Example:
    >>> import flax.linen as fnn
    >>> conv = fnn.Conv(2, (3, 3))
    >>> x = jnp.ones((1, 4, 4, 1)); v = conv.init(jax.random.key(0), x)
    >>> with border_mode('full') as switched:
    ...   conv.apply(v, x).shape
    (1, 6, 6, 2)
    >>> switched.paths
    ['<root>']
  """
  compat.check_mode(mode)
  parse_antialias(antialias)
  if mode is None and antialias is None:
    raise ValueError("border_mode(None, antialias=None) switches nothing; give a mode, an antialias, or both.")
  record = SwitchRecord(mode, antialias)
  with fnn.intercept_methods(record.intercept):
    yield record
  if not record.paths:
    raise NothingToSwitchError(
        f"border_mode({mode!r}, antialias={antialias!r}): no flax.linen.Conv ran inside the context, so nothing was "
        f"switched. Only flax.linen.Conv modules are switched (not jaxborders.nn.Conv, ConvTranspose, ConvLocal or "
        f"pooling functions), and only when the model is called (traced) inside the context.")


__all__ = ["border_mode", "BorderModeShapeError", "NothingToSwitchError", "SwitchRecord", "downsample",
           "SIZE_CHANGING_MODES"]
