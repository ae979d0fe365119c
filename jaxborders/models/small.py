"""Small networks of the F-Conv paper's controlled experiments (docs/models.md).

``redgreen_net``: the Red-Green net (Exp 2): four 3×3 convs without bias, ReLU, no BatchNorm, global max
pool, Linear(64, num_classes). ``patch_toy_net``: the patch-location toy (Fig. 1): one 5×5 conv without bias,
ReLU, global max, Linear(1, num_classes).

Initialisation matches PyTorch's defaults (``kaiming_uniform(a=sqrt(5))``: U(±1/sqrt(fan_in)) for kernels
and biases), because the published numbers come from PyTorch-initialised nets and these tiny nets are
sensitive to it.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxborders.models.common import check_conv_mode, parse_antialias
from jaxborders.models.registry import register_model
from jaxborders.nn.layers import Conv

# PyTorch's default for Conv2d and Linear weights: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
torch_kernel_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def _torch_bias_init(fan_in: int):
  bound = 1.0 / fan_in**0.5
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


def _border_conv(module: nn.Module, x: jax.Array, features: int, kernel_size: int, stride: int, mode: str,
                 dtype: Any, name: str) -> jax.Array:
  """``Conv(mode=mode)`` without bias, PyTorch-initialised."""
  conv = Conv(features, kernel_size, stride, mode=mode, use_bias=False, dtype=dtype, kernel_init=torch_kernel_init,
              name=name)
  return conv(x)


def _check_common(conv_mode: str, antialias: Any, num_classes: int, name: str) -> None:
  check_conv_mode(conv_mode)
  if not parse_antialias(antialias).is_none:
    raise ValueError(f"antialias={antialias!r} is not supported by {name}; accepted values: None.")
  if not isinstance(num_classes, int) or num_classes < 1:
    raise ValueError(f"num_classes must be an int >= 1, got {num_classes!r}.")


class RedGreenNet(nn.Module):
  """Red-Green net: convs 3→32 s1, 32→32 s2, 32→64 s2, 64→64 s2 (3×3, no bias) → ReLU → global max → Linear.

  Padding follows ``conv_mode`` (valid 0, same 1, full 2, circular wrap 1). Minimum input: 17×17 for
  ``valid`` (every conv needs at least 3 pixels), 1×1 for the others.

  Returns ``(logits, features)`` when called with ``return_features=True``, where ``features`` names the
  intermediate maps (``conv1``..``conv4``, ``pre_logits``); otherwise the logits ``(N, num_classes)``.
  """

  conv_mode: str = "same"
  num_classes: int = 2
  antialias: Any = None
  dtype: Any = jnp.float32
  widths: tuple[int, ...] = (32, 32, 64, 64)
  strides: tuple[int, ...] = (1, 2, 2, 2)

  def __post_init__(self):
    _check_common(self.conv_mode, self.antialias, self.num_classes, "redgreen_net")
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, return_features: bool = False):
    del train  # no dropout or BatchNorm
    features = {}
    x = x.astype(self.dtype)
    for i, (width, stride) in enumerate(zip(self.widths, self.strides)):
      x = _border_conv(self, x, width, 3, stride, self.conv_mode, self.dtype, f"conv{i + 1}")
      x = nn.relu(x)
      features[f"conv{i + 1}"] = x
    x = jnp.max(x, axis=(1, 2))
    features["pre_logits"] = x
    logits = nn.Dense(self.num_classes, dtype=self.dtype, kernel_init=torch_kernel_init,
                      bias_init=_torch_bias_init(x.shape[-1]), name="fc")(x)
    logits = logits.astype(jnp.float32)
    return (logits, features) if return_features else logits


class PatchToyNet(nn.Module):
  """Patch-location toy: one 5×5 conv (1 filter, no bias) → ReLU → global max → Linear(1, num_classes)."""

  conv_mode: str = "same"
  num_classes: int = 2
  antialias: Any = None
  dtype: Any = jnp.float32
  kernel_size: int = 5

  def __post_init__(self):
    _check_common(self.conv_mode, self.antialias, self.num_classes, "patch_toy_net")
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, return_features: bool = False):
    del train
    x = x.astype(self.dtype)
    response = nn.relu(_border_conv(self, x, 1, self.kernel_size, 1, self.conv_mode, self.dtype, "conv"))
    pooled = jnp.max(response, axis=(1, 2))
    logits = nn.Dense(self.num_classes, dtype=self.dtype, kernel_init=torch_kernel_init,
                      bias_init=_torch_bias_init(1), name="fc")(pooled).astype(jnp.float32)
    return (logits, {"response": response, "pre_logits": pooled}) if return_features else logits


@register_model("redgreen_net")
def redgreen_net(conv_mode: str = "same", num_classes: int = 2, antialias: Any = None,
                 dtype: Any = jnp.float32) -> RedGreenNet:
  """The Red-Green net of the F-Conv paper (docs/models.md)."""
  return RedGreenNet(conv_mode=conv_mode, num_classes=num_classes, antialias=antialias, dtype=dtype)


@register_model("patch_toy_net")
def patch_toy_net(conv_mode: str = "same", num_classes: int = 2, antialias: Any = None,
                  dtype: Any = jnp.float32) -> PatchToyNet:
  """The patch-location toy net of the F-Conv paper's Fig. 1 (docs/models.md)."""
  return PatchToyNet(conv_mode=conv_mode, num_classes=num_classes, antialias=antialias, dtype=dtype)


__all__ = ["RedGreenNet", "PatchToyNet", "redgreen_net", "patch_toy_net"]
