"""``quadrant_net``: a narrow ResNet for the border-distance sweep (F-Conv paper Exp 1) on a CPU.

ResNet-18's structure (stem 7×7 s2 → BN → ReLU → MaxPool k2 s2, four stages of BasicBlocks with widths
``width·(1, 2, 4, 8)``, strides (1, 2, 2, 2)) with a configurable ``width`` (default 8 instead of 64) and
``stage_sizes`` (default (2, 2, 2, 2) = ResNet-18; (1, 1, 1, 1) is a ResNet-10). The head follows the reference
of Exp 1 (CWB ``QI_location.py``): global **max** pool → Linear(·, 2) (``pool='avg'`` for torchvision's head);
the max pool is kernel 2 as there.

Border modes (docs/models.md, CWB ``resnet_fconv.py``): every 3×3 / 7×7 conv uses ``conv_mode``; ``full`` pads k-1
per side, so maps grow; the BasicBlock shortcut then zero-pads 2 per side (identity) or 3 before its 1×1 stride-2
conv (downsample), which keeps the two branches the same size *and* aligned on the same input pixels.
``valid`` crops 2 / 3 instead; same-size modes need neither.

``frozen_features=True`` is the paper's "random frozen features" setting: the backbone's output passes
through ``stop_gradient``, so only the head learns (BatchNorm statistics still update in training mode, as in
the reference, whose frozen PyTorch BN layers kept updating their running statistics). This needs no trainer
support; set the optimizer's weight decay to 0 to keep the frozen weights exactly fixed (coupled L2 would
shrink them).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxborders.models import common
from jaxborders.models.common import check_conv_mode, parse_antialias
from jaxborders.models.registry import register_model
from jaxborders.nn.layers import Conv
from jaxborders.ops.checks import check_choice

POOLS = ("max", "avg")
NORMS = ("batch", "none")
# torchvision's ResNet init: kaiming_normal(fan_out, relu) for convs.
conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def _shortcut_pad(conv_mode: str, downsample: bool) -> int:
  """Per-side pad (negative: crop) that aligns a BasicBlock's shortcut with its main branch (docs/models.md)."""
  if conv_mode == "full":
    return 3 if downsample else 2
  if conv_mode == "valid":
    return -3 if downsample else -2
  return 0


def _pad_or_crop(x: jax.Array, p: int) -> jax.Array:
  if p > 0:
    return jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
  if p < 0:
    return x[:, -p:p, -p:p, :]
  return x


def _norm(norm: str, train: bool, dtype: Any, name: str):
  """BatchNorm with PyTorch's defaults (momentum 0.1 = flax 0.9, eps 1e-5), or the identity for ``'none'``."""
  if norm == "none":
    return lambda x: x
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=dtype, name=name)


def _stem_pool(x: jax.Array, conv_mode: str) -> jax.Array:
  """MaxPool k2 s2 (the reference's kernel 2). Under ``full`` an odd map is first zero-padded at the bottom /
  right (PyTorch's ``ceil_mode``), because dropping its last row would lose the activations of content near
  that border and break F-Conv's equivalence of the two corners (post-ReLU values are >= 0, so zeros never win
  a max that had a real value)."""
  if conv_mode == "full":
    x = jnp.pad(x, ((0, 0), (0, x.shape[1] % 2), (0, x.shape[2] % 2), (0, 0)))
  return nn.max_pool(x, (2, 2), (2, 2), padding="VALID")


class BasicBlock(nn.Module):
  """ResNet BasicBlock in any border mode (see the module docstring)."""

  features: int
  stride: int
  conv_mode: str
  norm: str = "batch"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    y = Conv(self.features, 3, self.stride, mode=self.conv_mode, use_bias=False, dtype=self.dtype,
             kernel_init=conv_init, name="conv1")(x)
    y = nn.relu(_norm(self.norm, train, self.dtype, "bn1")(y))
    y = Conv(self.features, 3, 1, mode=self.conv_mode, use_bias=False, dtype=self.dtype, kernel_init=conv_init,
             name="conv2")(y)
    y = _norm(self.norm, train, self.dtype, "bn2")(y)
    downsample = self.stride != 1 or x.shape[-1] != self.features
    shortcut = _pad_or_crop(x, _shortcut_pad(self.conv_mode, downsample))
    if downsample:
      shortcut = Conv(self.features, 1, self.stride, mode="same", use_bias=False, dtype=self.dtype,
                      kernel_init=conv_init, name="downsample_conv")(shortcut)
      shortcut = _norm(self.norm, train, self.dtype, "downsample_bn")(shortcut)
    return nn.relu(y + shortcut)


class QuadrantNet(nn.Module):
  """Narrow ResNet with a global-max head (see the module docstring).

  Attributes:
    conv_mode: border mode of every k×k conv, one of ``jaxborders.MODES``.
    num_classes: head outputs.
    antialias: only ``None`` (plain strided downsampling) is supported.
    width: channels of the first stage (ResNet-18: 64).
    stage_sizes: BasicBlocks per stage (ResNet-18: (2, 2, 2, 2)).
    pool: global ``'max'`` (the reference of Exp 1) or ``'avg'`` pooling before the head.
    norm: ``'batch'`` (BatchNorm, as ResNet-18) or ``'none'`` (no normalisation: every layer maps zero to zero).
      See the module docstring for why ``'none'`` matters to F-Conv.
    frozen_features: stop gradients at the backbone output (the "random frozen features" setting).
    dtype: computation dtype.

  ``__call__(x, train=False, return_features=False)`` returns logits, or ``(logits, features)`` with
  ``features`` = ``stem``, ``stage1``..``stage4``, ``pre_logits``.
  """

  conv_mode: str = "same"
  num_classes: int = 2
  antialias: Any = None
  width: int = 8
  stage_sizes: tuple[int, ...] = (2, 2, 2, 2)
  pool: str = "max"
  norm: str = "batch"
  frozen_features: bool = False
  dtype: Any = jnp.float32

  def __post_init__(self):
    check_conv_mode(self.conv_mode)
    if not parse_antialias(self.antialias).is_none:
      raise ValueError(f"antialias={self.antialias!r} is not supported by quadrant_net; accepted values: None.")
    check_choice("pool", self.pool, POOLS)
    check_choice("norm", self.norm, NORMS)
    for name in ("num_classes", "width"):
      value = getattr(self, name)
      if not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}.")
    if not self.stage_sizes or any(int(s) < 1 for s in self.stage_sizes):
      raise ValueError(f"stage_sizes must be a non-empty sequence of ints >= 1, got {self.stage_sizes!r}.")
    super().__post_init__()

  def _size_steps(self) -> list:
    pool = (lambda n: n // 2 + n % 2) if self.conv_mode == "full" else common.pool_step(2, 2)
    steps = [common.conv_step(7, 2, self.conv_mode), pool]
    for i, blocks in enumerate(self.stage_sizes):
      for b in range(int(blocks)):
        stride = 2 if i > 0 and b == 0 else 1
        steps += [common.conv_step(3, stride, self.conv_mode), common.conv_step(3, 1, self.conv_mode)]
    return steps

  def min_input_size(self) -> tuple[int, int]:
    """Smallest (H, W) this configuration can process."""
    n = common.min_length(self._size_steps())
    return (n, n)

  def example_input_shape(self, batch: int = 2) -> tuple[int, int, int, int]:
    """A small valid (N, H, W, 3) input."""
    return (batch, *self.min_input_size(), 3)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, return_features: bool = False):
    common.check_input_size("quadrant_net", x.shape, self.min_input_size())
    features = {}
    x = x.astype(self.dtype)
    x = Conv(self.width, 7, 2, mode=self.conv_mode, use_bias=False, dtype=self.dtype, kernel_init=conv_init,
             name="conv1")(x)
    x = nn.relu(_norm(self.norm, train, self.dtype, "bn1")(x))
    x = _stem_pool(x, self.conv_mode)
    features["stem"] = x
    for i, blocks in enumerate(self.stage_sizes):
      for b in range(int(blocks)):
        stride = 2 if i > 0 and b == 0 else 1
        x = BasicBlock(self.width * 2**i, stride, self.conv_mode, self.norm, self.dtype,
                       name=f"layer{i + 1}_{b}")(x, train)
      features[f"stage{i + 1}"] = x
    x = jnp.max(x, axis=(1, 2)) if self.pool == "max" else jnp.mean(x, axis=(1, 2))
    if self.frozen_features:
      x = jax.lax.stop_gradient(x)
    features["pre_logits"] = x
    logits = nn.Dense(self.num_classes, dtype=self.dtype, name="fc")(x).astype(jnp.float32)
    return (logits, features) if return_features else logits


@register_model("quadrant_net")
def quadrant_net(conv_mode: str = "same", num_classes: int = 2, antialias: Any = None, width: int = 8,
                 stage_sizes: tuple[int, ...] = (2, 2, 2, 2), pool: str = "max", norm: str = "batch",
                 frozen_features: bool = False, dtype: Any = jnp.float32) -> QuadrantNet:
  """Narrow ResNet-18 with a global-max head for the quadrant location task (F-Conv paper Exp 1)."""
  return QuadrantNet(conv_mode=conv_mode, num_classes=num_classes, antialias=antialias, width=width,
                     stage_sizes=tuple(int(s) for s in stage_sizes), pool=pool, norm=norm,
                     frozen_features=frozen_features,
                     dtype=dtype)


__all__ = ["QuadrantNet", "BasicBlock", "quadrant_net"]
