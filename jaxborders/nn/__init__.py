"""Flax linen layers on top of ``jaxborders.ops``, and ``border_mode`` to switch an existing linen model."""

from jaxborders.nn.layers import APSPool, BlurPool, Conv, MaxBlurPool
from jaxborders.nn.switch import BorderModeShapeError, NothingToSwitchError, border_mode

__all__ = ["Conv", "BlurPool", "MaxBlurPool", "APSPool", "border_mode", "BorderModeShapeError",
           "NothingToSwitchError"]
