"""Flax linen layers on top of ``jaxborders.ops``, the downsampling factory, the PyTorch-default BatchNorm, and
``border_mode`` to switch an existing linen model."""

from jaxborders.nn.downsample import (AntiAlias, APSDownsample, BlurDownsample, Downsampler, MaxBlurDownsample,
                                      PlainDownsample, antialias_forms, blur_pad_mode, border_blur_pool,
                                      border_max_pool, downsampler, parse_antialias, register_downsampler)
from jaxborders.nn.layers import APSPool, BlurPool, Conv, MaxBlurPool
from jaxborders.nn.norm import batch_norm
from jaxborders.nn.switch import BorderModeShapeError, NothingToSwitchError, border_mode

__all__ = ["Conv", "BlurPool", "MaxBlurPool", "APSPool", "batch_norm", "downsampler", "register_downsampler",
           "parse_antialias", "antialias_forms", "AntiAlias", "Downsampler", "PlainDownsample", "BlurDownsample",
           "MaxBlurDownsample", "APSDownsample", "blur_pad_mode", "border_blur_pool", "border_max_pool",
           "border_mode", "BorderModeShapeError", "NothingToSwitchError"]
