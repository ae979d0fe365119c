"""Flax linen layers on top of ``jaxborders.ops``."""

from jaxborders.nn.layers import APSPool, BlurPool, Conv, MaxBlurPool
from jaxborders.nn.methods import (AdaptiveBlurPool, AliasFreeActivation, FLCPool, IdealDownsample, LPSPool,
                                   LPSUnpool)

__all__ = ["Conv", "BlurPool", "MaxBlurPool", "APSPool", "LPSPool", "LPSUnpool", "AdaptiveBlurPool", "IdealDownsample",
           "AliasFreeActivation", "FLCPool"]
