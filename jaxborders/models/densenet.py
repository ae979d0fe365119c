"""DenseNet-121 (torchvision structure) in every border mode, with BlurPool or APS downsampling.

Structure (torchvision ``densenet.py``; growth 32, blocks (6, 12, 24, 16), bottleneck width 4·growth, no
dropout): stem conv 7×7 s2 p3 → BN → ReLU → MaxPool k3 s2 p1; dense layers BN → ReLU → 1×1 → BN → ReLU → 3×3,
each concatenating its ``growth_rate`` new channels to its input; transitions BN → ReLU → 1×1 (halves the
channels) → AvgPool 2; final BN → ReLU → global average pool → Linear.

Border modes (``conv_mode``) change the stem conv, the 3×3 convs and the stem max pool:

* ``same`` (torchvision), ``reflect``, ``replicate``: stem padding 3, 3×3 padding 1 by that rule; max pool
  padding 1 (a -inf pad; reflect/replicate pads would give the same maxima).
* ``circular``: the same sizes, everything wrapping around, including the stem max pool.
* ``valid``: no padding anywhere (stem 7×7 p0, max pool k3 s2 p0, 3×3 p0).
* ``full`` (F-Conv, docs/models.md): stem 7×7 s2 p6, 3×3 padding 2; the stem max pool becomes k2 s2 p0 as in CWB's
  F-Conv ResNet (F-Conv never pads to keep sizes).

**Concatenation when maps change size.** A ``full`` 3×3 conv grows the map by 2 (``valid`` shrinks it by 2), so
inside a dense block the new features no longer match the earlier ones. Before each concatenation the earlier
features are aligned to the new map about the centre: zero-padded by 1 per side under ``full`` (as CWB's padded
identity shortcuts in F-Conv ResNets: an earlier feature keeps its position, and the ring around it is "no
signal"), cropped by 1 per side under ``valid``. Same-size modes need nothing. At 224×224 ``full`` ends at
70×70 instead of 7×7: block 1 grows 57 → 69, block 2 34 → 58, block 3 29 → 77, block 4 38 → 70, which costs
23.1 G multiply-adds instead of 2.8 G (8.2×; counted from the map sizes).

Downsampling (``antialias``, docs/antialiasing.md):

* ``'blur:<kind>:<size>'`` (antialiased-cnns' DenseNet): stem MaxPool k3 **s1** p1 → BlurPool s2 (``full``:
  MaxPool k2 s1 → BlurPool); transition BN → ReLU → 1×1 → BlurPool s2 (replaces the AvgPool). The blur pads
  ``reflect``, or zeros ``f-1`` per side under ``full``, or wraps under ``circular``
  (``common.blur_pad_mode``).
* ``'aps'``: the stem conv runs at stride 1 and is followed by BN → ReLU → APSPool (a strided conv cannot be
  shift invariant); then the dense max pool → APSPool; transitions BN → ReLU → 1×1 → APSPool. Odd maps are
  circularly padded to even before APS. With ``conv_mode='circular'`` the network is then exactly invariant to
  circular shifts of its input. Parameters are the same as the plain network's.

Parameter names mirror torchvision's ``features.*``: ``conv0``, ``norm0``, ``denseblock<b>/denselayer<l>/
{norm1,conv1,norm2,conv2}``, ``transition<b>/{norm,conv}``, ``norm5`` are ``features.<same path with dots>``;
``classifier`` is ``classifier``. Conv ``kernel`` = ``weight.permute(2, 3, 1, 0)``, Dense ``kernel`` =
``weight.T``, BN ``scale``/``bias``/``mean``/``var`` = ``weight``/``bias``/``running_mean``/``running_var``. The
antialiased-cnns DenseNet has the same parametrised names (its BlurPools hold only a fixed filter buffer).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxborders.models import common
from jaxborders.models.common import check_conv_mode, parse_antialias
from jaxborders.models.registry import register_model
from jaxborders.models.vgg import batch_norm
from jaxborders.nn.layers import APSPool, BlurPool, Conv
from jaxborders.ops import aps as aps_ops
from jaxborders.ops import filters

# torchvision's DenseNet init: convs kaiming_normal (fan_in, relu); the classifier keeps PyTorch's default
# U(±1/sqrt(fan_in)) weights with zero bias.
conv_init = nn.initializers.variance_scaling(2.0, "fan_in", "normal")
linear_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def align_center(x: jax.Array, size: tuple[int, int]) -> jax.Array:
  """Zero-pads (or crops) the spatial dims of (N, H, W, C) symmetrically about the centre to ``size``.

  >>> align_center(jnp.ones((1, 2, 2, 1)), (4, 4))[0, :, :, 0].sum().item()
  4.0
  """
  widths = [(0, 0)]
  for n, m in zip(x.shape[1:3], size):
    if (m - n) % 2:
      raise ValueError(f"align_center: cannot centre a map of size {n} in {m} (odd difference).")
    widths.append(((m - n) // 2, (m - n) // 2))
  widths.append((0, 0))
  if any(lo < 0 for lo, _ in widths):
    x = x[:, max(0, -widths[1][0]):x.shape[1] - max(0, -widths[1][1]),
          max(0, -widths[2][0]):x.shape[2] - max(0, -widths[2][1])]
    widths = [(max(lo, 0), max(hi, 0)) for lo, hi in widths]
  return jnp.pad(x, widths) if any(w != (0, 0) for w in widths) else x


class DenseLayer(nn.Module):
  """BN → ReLU → 1×1 (bn_size·growth) → BN → ReLU → 3×3 (growth); returns only the new features."""

  growth_rate: int
  bn_size: int
  conv_mode: str
  dtype: Any

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    x = nn.relu(batch_norm(train, self.dtype, "norm1")(x))
    x = Conv(self.bn_size * self.growth_rate, 1, use_bias=False, dtype=self.dtype, kernel_init=conv_init,
             name="conv1")(x)
    x = nn.relu(batch_norm(train, self.dtype, "norm2")(x))
    return Conv(self.growth_rate, 3, mode=self.conv_mode, use_bias=False, dtype=self.dtype, kernel_init=conv_init,
                name="conv2")(x)


class DenseBlock(nn.Module):
  """``num_layers`` dense layers; earlier features are centre-aligned to each new map before concatenation."""

  num_layers: int
  growth_rate: int
  bn_size: int
  conv_mode: str
  dtype: Any

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    for i in range(self.num_layers):
      new = DenseLayer(self.growth_rate, self.bn_size, self.conv_mode, self.dtype, name=f"denselayer{i + 1}")(x, train)
      x = jnp.concatenate([align_center(x, new.shape[1:3]), new], axis=-1)
    return x


class DenseNet(nn.Module):
  """DenseNet with a border mode and anti-aliased downsampling (see the module docstring).

  Attributes:
    conv_mode: border mode, one of ``jaxborders.MODES``.
    antialias: ``None``, ``'blur:<kind>:<size>'`` or ``'aps'``.
    num_classes: classifier outputs.
    dtype: computation dtype (parameters stay float32).
    growth_rate: new channels per dense layer (32).
    block_config: dense layers per block ((6, 12, 24, 16) for DenseNet-121).
    num_init_features: stem channels (64).
    bn_size: bottleneck width as a multiple of ``growth_rate`` (4).

  ``__call__(x, train, return_features=False)``: ``x`` is (N, H, W, C); returns logits, or ``(logits,
  features)`` with ``stem``, ``block<b>``, ``transition<b>`` and ``pre_logits``.
  """

  conv_mode: str = "same"
  antialias: Any = None
  num_classes: int = 1000
  dtype: Any = jnp.float32
  growth_rate: int = 32
  block_config: tuple[int, ...] = (6, 12, 24, 16)
  num_init_features: int = 64
  bn_size: int = 4

  def __post_init__(self):
    check_conv_mode(self.conv_mode)
    parse_antialias(self.antialias)
    for name in ("num_classes", "growth_rate", "num_init_features", "bn_size"):
      value = getattr(self, name)
      if not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}.")
    if not self.block_config or any(not isinstance(b, int) or b < 1 for b in self.block_config):
      raise ValueError(f"block_config must be a non-empty tuple of ints >= 1, got {self.block_config!r}.")
    super().__post_init__()

  # -- input-size convention (jaxborders.models.common) --------------------------------------------------------

  def _size_steps(self) -> list:
    aa = parse_antialias(self.antialias)
    mode = self.conv_mode
    pad_mode = common.blur_pad_mode(mode)
    steps = [common.conv_step(7, 1 if aa.method == "aps" else 2, mode)]
    if aa.method == "aps":
      steps.append(common.aps_step(2, aa.size))
    stride = 2 if aa.method == "none" else 1
    if mode == "full":
      steps.append(common.pool_step(2, stride))
    elif mode == "circular":
      steps += [common.pad_step(1), common.pool_step(3, stride)]
    else:
      steps.append(common.pool_step(3, stride, 0 if mode == "valid" else 1))
    down = {"none": common.pool_step(2, 2), "blur": common.blur_step(aa.size, 2, pad_mode),
            "aps": common.aps_step(2, aa.size)}[aa.method]
    if aa.method != "none":
      steps.append(down)
    for b, layers in enumerate(self.block_config):
      steps += [common.conv_step(3, 1, mode)] * layers
      if b != len(self.block_config) - 1:
        steps.append(down)
    return steps

  def min_input_size(self) -> tuple[int, int]:
    """Smallest (H, W) this configuration can process (29×29 for ``same``)."""
    n = common.min_length(self._size_steps())
    return (n, n)

  def example_input_shape(self, batch: int = 2) -> tuple[int, int, int, int]:
    """A small valid (N, H, W, 3) input."""
    return (batch, *self.min_input_size(), 3)

  # -- network ---------------------------------------------------------------------------------------------------

  def _down(self, x: jax.Array, name: str) -> jax.Array:
    """The anti-aliased stride-2 step (BlurPool or APS) of the stem and the transitions."""
    aa = parse_antialias(self.antialias)
    if aa.method == "blur":
      return BlurPool(aa.size, 2, aa.kind, common.blur_pad_mode(self.conv_mode), name=name)(x)
    y, _ = APSPool(2, aa.norm, aa.size, name=name)(aps_ops.pad_to_multiple(x, 2))
    return y

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, return_features: bool = False):
    common.check_input_size("densenet", x.shape, self.min_input_size())
    aa = parse_antialias(self.antialias)
    mode = self.conv_mode
    x = x.astype(self.dtype)
    features: dict[str, jax.Array] = {}
    x = Conv(self.num_init_features, 7, 1 if aa.method == "aps" else 2, mode=mode, use_bias=False, dtype=self.dtype,
             kernel_init=conv_init, name="conv0")(x)
    x = nn.relu(batch_norm(train, self.dtype, "norm0")(x))
    if aa.method == "aps":
      x = self._down(x, "conv0_aps")
    stride = 2 if aa.is_none else 1  # anti-aliased nets pool densely, then blur / APS
    if mode == "full":
      x = filters.max_pool(x, 2, stride)
    elif mode == "circular":
      x = filters.max_pool(jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="wrap"), 3, stride)
    else:
      x = filters.max_pool(x, 3, stride, 0 if mode == "valid" else 1)
    if not aa.is_none:
      x = self._down(x, "pool0")
    features["stem"] = x
    channels = self.num_init_features
    for b, layers in enumerate(self.block_config, start=1):
      x = DenseBlock(layers, self.growth_rate, self.bn_size, mode, self.dtype, name=f"denseblock{b}")(x, train)
      features[f"block{b}"] = x
      channels += layers * self.growth_rate
      if b == len(self.block_config):
        break
      channels //= 2
      x = Transition(channels, self.dtype, name=f"transition{b}")(x, train)
      if aa.is_none:
        x = nn.avg_pool(x, (2, 2), (2, 2))
      else:
        x = self._down(x, f"transition{b}_pool")
      features[f"transition{b}"] = x
    x = nn.relu(batch_norm(train, self.dtype, "norm5")(x))
    x = jnp.mean(x, axis=(1, 2))
    features["pre_logits"] = x
    logits = nn.Dense(self.num_classes, dtype=self.dtype, kernel_init=linear_init, name="classifier")(x)
    logits = logits.astype(jnp.float32)
    return (logits, features) if return_features else logits


class Transition(nn.Module):
  """BN → ReLU → 1×1 conv (the pooling that follows is applied by ``DenseNet``)."""

  features: int
  dtype: Any

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    x = nn.relu(batch_norm(train, self.dtype, "norm")(x))
    return Conv(self.features, 1, use_bias=False, dtype=self.dtype, kernel_init=conv_init, name="conv")(x)


@register_model("densenet121")
def densenet121(conv_mode: str = "same", antialias: Any = None, num_classes: int = 1000, dtype: Any = jnp.float32,
                **kwargs: Any) -> DenseNet:
  """DenseNet-121: ``DenseNet`` with growth 32, blocks (6, 12, 24, 16), 64 stem channels, bn_size 4."""
  return DenseNet(conv_mode=conv_mode, antialias=antialias, num_classes=num_classes, dtype=dtype, **kwargs)


__all__ = ["DenseNet", "DenseBlock", "DenseLayer", "Transition", "align_center", "densenet121"]
