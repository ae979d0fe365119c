"""Flax linen layers on top of ``jaxborders.ops``."""

from jaxborders.nn.layers import APSPool, BlurPool, Conv, MaxBlurPool

__all__ = ["Conv", "BlurPool", "MaxBlurPool", "APSPool"]
