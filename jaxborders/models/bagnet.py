"""BagNets (Brendel & Bethge, ICLR 2019): ResNet-50-like nets whose receptive field is 9, 17 or 33 pixels.

Structure (the authors' ``bagnets/pytorchnet.py``): stem 1×1 conv (3→64) → 3×3 conv (64→64, no padding) → BN →
ReLU; four stages of bottlenecks (3, 4, 6, 3 blocks; 64, 128, 256, 512 planes; expansion 4) with strides
(2, 2, 2, 1); only the first block of the first ``k`` stages has a 3×3 conv (the rest are 1×1), which fixes the
receptive field: BagNet-9 k = 2, BagNet-17 k = 3, BagNet-33 k = 4. Global average pool → Linear(2048, classes).
The bottleneck BNs use PyTorch momentum 0.001 (flax 0.999), the shortcut BNs the default 0.1 (flax 0.9).

``conv_mode`` affects the 3×3 convs, which the original runs **unpadded**, so BagNets default to
``conv_mode='valid'``. A valid stride-2 3×3 conv gives a map one pixel smaller than its 1×1 stride-2 shortcut;
the original crops the shortcut at its end (bottom/right), and so does this port whenever the shortcut is
larger. With ``full`` (padding 2) the shortcut is zero-padded by 1 before its 1×1 conv, as in CWB's F-Conv
bottleneck, so both branches stay aligned; the same-size modes need nothing.

Downsampling (``antialias``, ``jaxborders.nn.downsampler``): a strided block runs its conv2 at stride 1 → BN →
ReLU → the antialias layer (BlurPool s2, APS s2, ...) before conv3; its shortcut is the same layer (APS: with the
main branch's polyphase index) → 1×1 s1 → BN.

Intermediates (``jaxborders.models.intermediates``): ``stem``, ``layer<s>.<j>`` after every block,
``stage<s>`` after every stage, ``pre_logits``.

Parameter names: ``conv1``, ``conv2``, ``bn1`` (stem), ``layer<s>_<j>`` = ``layer<s>.<j>`` with ``conv1..3``,
``bn1..3``, ``downsample_0`` (conv) and ``downsample_1`` (BN) = ``downsample.0`` / ``downsample.1``; ``fc``.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxborders.models import common
from jaxborders.models.common import check_conv_mode, parse_antialias
from jaxborders.models.registry import register_model
from jaxborders.nn.downsample import downsampler
from jaxborders.nn.layers import Conv
from jaxborders.nn.norm import batch_norm

# The authors' init: convs N(0, sqrt(2 / (k·k·C_out))) (kaiming, fan_out); fc keeps PyTorch's default.
conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
linear_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")
EXPANSION = 4


def _bias_init(fan_in: int):
  bound = 1.0 / fan_in**0.5
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


def _bn(train: bool, dtype: Any, name: str, momentum: float = 0.999) -> nn.BatchNorm:
  return batch_norm(train, name, dtype, momentum=momentum)


def _fit_end(x: jax.Array, size: tuple[int, int]) -> jax.Array:
  """Crops (or zero-pads) the bottom/right of a (N, H, W, C) map to ``size``, as the original's shortcut crop."""
  x = x[:, :size[0], :size[1]]
  pad = [(0, 0), (0, size[0] - x.shape[1]), (0, size[1] - x.shape[2]), (0, 0)]
  return jnp.pad(x, pad) if any(p != (0, 0) for p in pad) else x


class Bottleneck(nn.Module):
  """1×1 → BN → ReLU → k×k (stride) → BN → ReLU → 1×1 (4·planes) → BN, plus the shortcut, → ReLU."""

  planes: int
  kernel_size: int
  stride: int
  downsample: bool
  conv_mode: str
  antialias: Any
  dtype: Any

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    mode = self.conv_mode if self.kernel_size == 3 else "valid"  # a 1×1 conv pads nothing in any mode
    down = downsampler(self.antialias if self.stride > 1 else None, self.stride, self.conv_mode, name="down")
    out = nn.relu(_bn(train, self.dtype, "bn1")(
        Conv(self.planes, 1, use_bias=False, dtype=self.dtype, kernel_init=conv_init, name="conv1")(x)))
    out = Conv(self.planes, self.kernel_size, down.preceding_stride, mode=mode, use_bias=False, dtype=self.dtype,
               kernel_init=conv_init, name="conv2")(out)
    out = nn.relu(_bn(train, self.dtype, "bn2")(out))
    out, index = down(out, train)
    out = _bn(train, self.dtype, "bn3")(
        Conv(self.planes * EXPANSION, 1, use_bias=False, dtype=self.dtype, kernel_init=conv_init, name="conv3")(out))

    residual = x
    if mode == "full":  # keep the shortcut aligned with the grown main branch (CWB's bottleneck pad 1)
      residual = jnp.pad(residual, ((0, 0), (1, 1), (1, 1), (0, 0)))
    if self.downsample:
      # The shortcut's own layer (same method, the main branch's polyphase index): a method with parameters, such as
      # adaptive anti-aliasing, must not share them across the two branches' channel counts.
      shortcut_down = downsampler(self.antialias if self.stride > 1 else None, self.stride, self.conv_mode,
                                  name="downsample_down")
      residual, _ = shortcut_down(residual, train, index)
      residual = Conv(self.planes * EXPANSION, 1, down.preceding_stride, use_bias=False, dtype=self.dtype,
                      kernel_init=conv_init, name="downsample_0")(residual)
      residual = _bn(train, self.dtype, "downsample_1", momentum=0.9)(residual)
    return nn.relu(out + _fit_end(residual, out.shape[1:3]))


class BagNet(common.ZooModel):
  """BagNet (see the module docstring).

  Attributes:
    kernel3: how many stages start with a 3×3 block ((1, 1, 1, 1) for BagNet-33).
    layers: blocks per stage.
    strides: stride of each stage.
    conv_mode: border mode of the 3×3 convs (``valid`` in the original).
    antialias: ``None``, ``'blur:<kind>:<size>'`` or ``'aps'``.
    num_classes: classifier outputs.
    dtype: computation dtype (parameters stay float32).
    width: stem channels and planes of the first stage (64).

  ``__call__(x, train=False)``: returns logits (N, num_classes).
  """

  kernel3: tuple[int, ...] = (1, 1, 1, 1)
  layers: tuple[int, ...] = (3, 4, 6, 3)
  strides: tuple[int, ...] = (2, 2, 2, 1)
  conv_mode: str = "valid"
  antialias: Any = None
  num_classes: int = 1000
  dtype: Any = jnp.float32
  width: int = 64

  def __post_init__(self):
    check_conv_mode(self.conv_mode)
    parse_antialias(self.antialias)
    for name in ("num_classes", "width"):
      value = getattr(self, name)
      if not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}.")
    if not len(self.kernel3) == len(self.layers) == len(self.strides):
      raise ValueError(f"kernel3, layers and strides need one entry per stage, got {self.kernel3!r}, "
                       f"{self.layers!r}, {self.strides!r}.")
    super().__post_init__()

  def receptive_field(self) -> int:
    """Receptive field side in pixels (33 for BagNet-33)."""
    rf, jump = 3, 1  # the stem's 3×3
    for k3, stride in zip(self.kernel3, self.strides):
      if k3:
        rf += 2 * jump
      jump *= stride
    return rf

  def example_input_shape(self, batch: int = 2) -> tuple[int, int, int, int]:
    """A small valid (N, H, W, 3) input: at least the receptive field."""
    n = max(self.min_input_size()[0], self.receptive_field())
    return (batch, n, n, 3)

  @nn.compact
  @common.checks_input_size
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = x.astype(self.dtype)
    x = Conv(self.width, 1, use_bias=False, dtype=self.dtype, kernel_init=conv_init, name="conv1")(x)
    x = Conv(self.width, 3, mode=self.conv_mode, use_bias=False, dtype=self.dtype, kernel_init=conv_init,
             name="conv2")(x)
    x = common.sow(self, "stem", nn.relu(_bn(train, self.dtype, "bn1")(x)))
    channels = self.width
    for s, (k3, blocks, stride) in enumerate(zip(self.kernel3, self.layers, self.strides), start=1):
      planes = self.width * 2 ** (s - 1)
      for j in range(blocks):
        kernel = 3 if k3 > j else 1  # the original: block j gets a 3×3 while j < kernel3
        block_stride = stride if j == 0 else 1
        downsample = j == 0 and (stride != 1 or channels != planes * EXPANSION)
        x = Bottleneck(planes, kernel, block_stride, downsample, self.conv_mode, self.antialias, self.dtype,
                       name=f"layer{s}_{j}")(x, train)
        common.sow(self, f"layer{s}.{j}", x)
        channels = planes * EXPANSION
      common.sow(self, f"stage{s}", x)
    x = common.sow(self, "pre_logits", jnp.mean(x, axis=(1, 2)))
    logits = nn.Dense(self.num_classes, dtype=self.dtype, kernel_init=linear_init, bias_init=_bias_init(x.shape[-1]),
                      name="fc")(x)
    return logits.astype(jnp.float32)


def _make(kernel3: tuple[int, ...], rf: int):
  def build(conv_mode: str = "valid", antialias: Any = None, num_classes: int = 1000, dtype: Any = jnp.float32,
            **kwargs: Any) -> BagNet:
    return BagNet(kernel3=kernel3, conv_mode=conv_mode, antialias=antialias, num_classes=num_classes, dtype=dtype,
                  **kwargs)

  build.__doc__ = f"BagNet-{rf}: receptive field {rf}×{rf}, 3×3 convs unpadded (``valid``) by default."
  return build


bagnet9 = register_model("bagnet9")(_make((1, 1, 0, 0), 9))
bagnet17 = register_model("bagnet17")(_make((1, 1, 1, 0), 17))
bagnet33 = register_model("bagnet33")(_make((1, 1, 1, 1), 33))

__all__ = ["BagNet", "Bottleneck", "bagnet9", "bagnet17", "bagnet33"]
