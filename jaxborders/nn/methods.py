"""Flax linen layers for the later shift-invariance methods: LPS, adaptive anti-aliasing, alias-free (AFC), FLC.

Every downsampling layer has the downsampling factory's contract::

    y, index = layer(x, train=False, index=None)

with fields ``stride`` and ``conv_mode`` first, then its options, and ``preceding_stride == 1`` (the op before it
runs densely and the layer downsamples, as for BlurPool and APS). ``index`` is LPS's choice ((N,) int32 in
inference, (N, P) component weights in training; a shortcut passes its main branch's) and ``None`` for the others.
Each module also has a ``parse_*_options(fields)`` for the spec's ``:``-separated fields after the method name and
a tuple of accepted spellings (``*_FORMS``), to register it in the factory.

How each method uses the border mode ``conv_mode``:

* ``lps``: none; the scoring network and the optional blur are circular (the authors' default), which is what
  makes LPS exactly shift-invariant; odd sizes are padded circularly up to a multiple of the stride (as APS).
* ``adaptive``: the windows and the logit convolution wrap when every axis is ``circular`` and reflect
  otherwise (the authors' ``pad_type='reflect'``), unless ``pad_mode`` is given.
* ``afc``, ``flc``: none; both are circular by construction (Fourier domain); odd sizes are padded circularly up
  to a multiple of the stride first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxborders.ops import adaptive as adaptive_ops
from jaxborders.ops import alias_free, filters, flc, lps, padding
from jaxborders.ops.aps import pad_to_multiple
from jaxborders.nn.downsample import Downsampler, register_downsampler
from jaxborders.ops.checks import as_tuple, check_choice

Index = Any  # None, an (N,) int array or (N, P) weights


class MethodDownsampler(Downsampler):
  """The factory's ``Downsampler`` (``stride``, ``conv_mode``; the op before it runs at stride 1) for these methods."""

  def _strides(self, x: jax.Array) -> tuple[int, ...]:
    return as_tuple("stride", self.stride, x.ndim - 2)


def _parse_int(name: str, field: str) -> int:
  try:
    return int(field)
  except ValueError:
    raise ValueError(f"{name} must be an int, got {field!r}") from None


# --- LPS -------------------------------------------------------------------------------------------------------

LPS_FORMS: tuple[str, ...] = ("'lps'", "'lps:<blur_size>'")


def parse_lps_options(fields: list[str]) -> dict[str, Any]:
  """``'lps'`` -> ``{}``; ``'lps:<blur_size>'`` -> a circular binomial blur of that size first (1 = none).

  >>> parse_lps_options(['3'])
  {'blur_size': 3}
  """
  if len(fields) > 1:
    raise ValueError(f"lps takes at most a blur size; accepted forms: {', '.join(LPS_FORMS)}")
  if not fields:
    return {}
  size = _parse_int("blur_size", fields[0])
  filters.filter_taps("binomial", size)
  return {"blur_size": size}


class LPSPool(MethodDownsampler):
  """Learnable polyphase downsampling (``jaxborders.lps_pool`` with ``jaxborders.lps_logits`` as the scorer).

  Parameters: ``w1`` (*k, C, H), ``b1`` (H,), ``w2`` (*k, H, H), ``b2`` (H,) of the scoring network.

  Attributes:
    hidden: hidden channels H of the scoring network (``None``: ``max(1, C // 8)``, the ratio of the authors'
      ResNet-18 ImageNet configuration, ``logits_channels/resnet18_imagenet.json`` in the configs folder of
      raymondyeh07/learnable_polyphase_sampling).
    kernel_size: scoring conv window per spatial dim (the authors': 3).
    blur_size: circular binomial blur before the selection (1 = none), as for APS.
    score_mode: border mode of the scoring convs (``circular``: exactly invariant).
    selection: training-time selection, ``gumbel`` (the authors' default) or ``softmax``; inference: arg-max.
    temperature: Gumbel-softmax temperature (the authors anneal it; pass the current value).
    hard: straight-through one-hot weights in training.
    rng_collection: flax RNG stream of the Gumbel noise (the trainer supplies ``dropout``).

  Placement in the zoo's ResNets is the authors' (``learn_poly_sampling/models/resnet_custom.py`` of
  raymondyeh07/learnable_polyphase_sampling, ImageNet configuration): the stem conv runs at stride 1 and LPS takes
  its stride, then a circular (0, 1) pad, a dense 2×2 max pool and LPS again; as for APS, the class attributes say
  so. Without this the stem's strided conv alone breaks the exact circular-shift invariance.
  """

  antialiases_stem_conv = True
  dense_pool_pad = (0, 1)

  hidden: int | None = None
  kernel_size: int = 3
  blur_size: int = 1
  score_mode: str = "circular"
  selection: str = "gumbel"
  temperature: float = 1.0
  hard: bool = False
  rng_collection: str = "dropout"

  def __post_init__(self):
    filters.filter_taps("binomial", self.blur_size)
    check_choice("selection", self.selection, ("gumbel", "softmax"))
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, index: Index = None) -> tuple[jax.Array, Index]:
    strides = self._strides(x)
    if self.blur_size > 1:
      x = filters.blur_pool(x, self.blur_size, 1, "binomial", "circular")
    x = pad_to_multiple(x, strides)
    if index is not None:
      return lps.lps_pool(x, stride=strides, index=index)
    rank, c = x.ndim - 2, x.shape[-1]
    h = self.hidden or max(1, c // 8)
    ks = (self.kernel_size,) * rank
    init = nn.initializers.lecun_normal()
    scorer = lps.LpsScorer(self.param("w1", init, (*ks, c, h)), self.param("b1", nn.initializers.zeros, (h,)),
                           self.param("w2", init, (*ks, h, h)), self.param("b2", nn.initializers.zeros, (h,)))
    logits = lps.lps_logits(x, scorer, strides, self.score_mode)
    if not train:
      return lps.lps_pool(x, logits, strides, "argmax")
    if self.selection == "gumbel" and not self.has_rng(self.rng_collection):
      raise ValueError(f"LPSPool samples its component in training: pass rngs={{'{self.rng_collection}': key}} to "
                       f"apply (rng_collection={self.rng_collection!r}).")
    key = self.make_rng(self.rng_collection) if self.selection == "gumbel" else None
    return lps.lps_pool(x, logits, strides, self.selection, key, self.temperature, self.hard)


class LPSUnpool(nn.Module):
  """Learnable polyphase upsampling (``jaxborders.lps_unpool``): ``__call__(y, index) -> x``."""

  stride: int | Sequence[int] = 2

  def __call__(self, y: jax.Array, index: jax.Array) -> jax.Array:
    return lps.lps_unpool(y, index, self.stride)


# --- adaptive anti-aliasing -------------------------------------------------------------------------------------

ADAPTIVE_FORMS: tuple[str, ...] = ("'adaptive'", "'adaptive:<size>'", "'adaptive:<size>:<groups>'")


def parse_adaptive_options(fields: list[str]) -> dict[str, Any]:
  """``'adaptive'``, ``'adaptive:<size>'``, ``'adaptive:<size>:<groups>'`` -> ``{'size', 'groups'}``.

  >>> parse_adaptive_options(['3', '8'])
  {'size': 3, 'groups': 8}
  """
  if len(fields) > 2:
    raise ValueError(f"adaptive takes at most a size and a group count; accepted forms: {', '.join(ADAPTIVE_FORMS)}")
  options = {}
  if fields:
    options["size"] = _parse_int("size", fields[0])
  if len(fields) > 1:
    options["groups"] = _parse_int("groups", fields[1])
  adaptive_ops.check_adaptive_args(options.get("size", 3), options.get("groups", 1))
  return options


class AdaptiveBlurPool(MethodDownsampler):
  """Content-adaptive anti-aliasing (the authors' ``Downsample_PASA_group_softmax``): a strided ``size``-window
  conv (no bias) predicts ``groups * size**rank`` logits per kept position, BatchNorm (PyTorch momentum 0.1,
  eps 1e-5), then ``jaxborders.adaptive_blur_pool``.

  Attributes:
    size: odd window size (the authors': 3).
    groups: channel groups sharing a predicted kernel (the authors' default: 2); must divide the channels.
    pad_mode: border of windows and logit conv (``None``: from ``conv_mode``, see the module docstring).
    normalize: ``group`` (each kernel sums to 1) or ``all`` (the authors' code); see ``adaptive_blur_pool``.
    use_batch_norm: the authors' BatchNorm on the logits.
  """

  size: int = 3
  groups: int = 2
  pad_mode: str | None = None
  normalize: str = "group"
  use_batch_norm: bool = True

  def __post_init__(self):
    adaptive_ops.check_adaptive_args(self.size, self.groups, None, self.pad_mode or "reflect", self.normalize)
    super().__post_init__()

  @property
  def border(self) -> str:
    if self.pad_mode is not None:
      return self.pad_mode
    modes = (self.conv_mode,) if isinstance(self.conv_mode, str) else tuple(self.conv_mode)
    return "circular" if all(m == "circular" for m in modes) else "reflect"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, index: Index = None) -> tuple[jax.Array, Index]:
    del index
    strides = self._strides(x)
    rank, c = x.ndim - 2, x.shape[-1]
    adaptive_ops.check_adaptive_args(self.size, self.groups, c, self.border, self.normalize)
    out_channels = self.groups * self.size**rank
    # PyTorch kaiming_normal_(mode='fan_out', nonlinearity='relu'), as the authors initialise the logit conv.
    init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
    kernel = self.param("kernel", init, ((self.size,) * rank + (c, out_channels)))
    logits = padding.conv(x, kernel.astype(x.dtype), self.border, strides)
    if self.use_batch_norm:
      logits = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=jnp.float32)(logits)
    y = adaptive_ops.adaptive_blur_pool(x, logits, self.size, strides, self.groups, self.border, self.normalize)
    return y, None


# --- alias-free (AFC) -------------------------------------------------------------------------------------------

AFC_FORMS: tuple[str, ...] = ("'afc'",)


def parse_afc_options(fields: list[str]) -> dict[str, Any]:
  """``'afc'`` takes no options.

  >>> parse_afc_options([])
  {}
  """
  if fields:
    raise ValueError(f"afc takes no options; accepted forms: {', '.join(AFC_FORMS)}")
  return {}


class IdealDownsample(MethodDownsampler):
  """Alias-free downsampling (``jaxborders.ideal_downsample``), odd sizes padded circularly first."""

  def __call__(self, x: jax.Array, train: bool = False, index: Index = None) -> tuple[jax.Array, Index]:
    del train, index
    strides = self._strides(x)
    return alias_free.ideal_downsample(pad_to_multiple(x, strides), strides), None


AFC_ACTIVATIONS: tuple[str, ...] = ("poly", "relu", "gelu")


class AliasFreeActivation(nn.Module):
  """The alias-free activation (``jaxborders.alias_free_activation``): ideal upsampling by ``up``, a pointwise
  nonlinearity, ideal low-pass and subsampling.

  Attributes:
    kind: ``poly`` (the authors' trainable per-channel degree-2 polynomial, parameter ``coeffs`` (3, C),
      initialised to ``POLY_INIT_COEFFS``: exactly alias-free for ``up >= 2``), ``relu`` or ``gelu``
      (approximately alias-free).
    up: upsampling factor.
  """

  kind: str = "poly"
  up: int = 2

  def __post_init__(self):
    check_choice("kind", self.kind, AFC_ACTIVATIONS)
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    fn: Callable[[jax.Array], jax.Array]
    if self.kind == "poly":
      init = lambda key, shape: jnp.tile(jnp.array(alias_free.POLY_INIT_COEFFS)[:, None], (1, shape[1]))  # noqa: E731
      coeffs = self.param("coeffs", init, (len(alias_free.POLY_INIT_COEFFS), x.shape[-1]))
      fn = lambda z: alias_free.polynomial_activation(z, coeffs)  # noqa: E731
    else:
      fn = jax.nn.relu if self.kind == "relu" else jax.nn.gelu
    return alias_free.alias_free_activation(x, fn, self.up)


# --- FLC --------------------------------------------------------------------------------------------------------

FLC_FORMS: tuple[str, ...] = ("'flc'", "'flc:<output>'")


def parse_flc_options(fields: list[str]) -> dict[str, Any]:
  """``'flc'`` (magnitude, as the authors) or ``'flc:real'`` / ``'flc:abs'``.

  >>> parse_flc_options(['real'])
  {'output': 'real'}
  """
  if len(fields) > 1:
    raise ValueError(f"flc takes at most an output; accepted forms: {', '.join(FLC_FORMS)}")
  if not fields:
    return {}
  return {"output": check_choice("output", fields[0], flc.FLC_OUTPUTS)}


class FLCPool(MethodDownsampler):
  """Frequency low-cut pooling (``jaxborders.flc_pool``), odd sizes padded circularly first."""

  output: str = "abs"

  def __post_init__(self):
    check_choice("output", self.output, flc.FLC_OUTPUTS)
    super().__post_init__()

  def __call__(self, x: jax.Array, train: bool = False, index: Index = None) -> tuple[jax.Array, Index]:
    del train, index
    strides = self._strides(x)
    return flc.flc_pool(pad_to_multiple(x, strides), strides, self.output), None



# The factory's antialias specs (``jaxborders.nn.downsampler``): every zoo family takes them as ``antialias=``.
register_downsampler("lps", LPSPool, parse_lps_options, LPS_FORMS)
register_downsampler("adaptive", AdaptiveBlurPool, parse_adaptive_options, ADAPTIVE_FORMS)
register_downsampler("afc", IdealDownsample, parse_afc_options, AFC_FORMS)
register_downsampler("flc", FLCPool, parse_flc_options, FLC_FORMS)

__all__ = ["MethodDownsampler", "LPSPool", "LPSUnpool", "AdaptiveBlurPool", "IdealDownsample", "AliasFreeActivation",
           "FLCPool", "parse_lps_options", "parse_adaptive_options", "parse_afc_options", "parse_flc_options",
           "LPS_FORMS", "ADAPTIVE_FORMS", "AFC_FORMS", "FLC_FORMS", "AFC_ACTIVATIONS"]
