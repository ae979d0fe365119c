"""VGG 11/13/16 (with or without BatchNorm) and the BlurPool paper's CIFAR-10 VGG13, in every border mode.

Structure is torchvision's ``vgg.py``: 3×3 convs (bias) → [BN] → ReLU, MaxPool k2 s2 after each stage,
adaptive average pool to 7×7, classifier Linear(512·7·7, 4096) → ReLU → Dropout(0.5) → Linear(4096, 4096) →
ReLU → Dropout(0.5) → Linear(4096, num_classes).

Border modes (``conv_mode``) change only the 3×3 convs: ``same`` pads 1 (torchvision), ``full`` pads 2 (F-Conv,
docs/models.md: every conv grows the map by 2; the max pools are unchanged, and the adaptive pool absorbs the growth:
VGG16 at 224 ends at 12×12 instead of 7×7), ``valid`` pads 0, ``circular``/``reflect``/``replicate`` pad 1 with
that rule.

Downsampling (``antialias``, docs/antialiasing.md):

* ``None``: MaxPool k2 s2.
* ``'blur:<kind>:<size>'``: MaxPool k2 **s1** → BlurPool s2 (antialiased-cnns' VGG). The blur pads ``reflect``
  (AA's default), except with ``conv_mode='full'`` (zeros, ``f-1`` per side, as CWB's F-Conv + BlurPool) and
  ``'circular'`` (wrap-around, as the BlurPool paper's CIFAR runs).
* ``'aps'``: MaxPool k2 s1 → APSPool s2 (odd maps are circularly padded to even first).

With ``circular`` the dense (stride-1) max pool wraps around too, so that the whole network commutes with
circular shifts.

Parameter names mirror torchvision's module indices so weights convert mechanically: ``features_<i>`` is
``features.<i>`` of torchvision's VGG (convs: ``kernel`` = ``weight.permute(2, 3, 1, 0)``, ``bias``; BN:
``scale``/``bias`` params and ``mean``/``var`` batch stats = ``weight``/``bias``/``running_mean``/``running_var``),
``classifier_<i>`` is ``classifier.<i>`` (``kernel`` = ``weight.T``). The flatten before ``classifier_0`` runs
in torch's (C, H, W) order, so no permutation of that kernel is needed. antialiased-cnns' VGGs insert a
BlurPool after every MaxPool, which shifts their ``features`` indices: ``torch_layer_names`` gives the map for
both layouts.

The CIFAR VGG13 (BlurPool paper §4.1: "2 Conv-BatchNorm-ReLU chunks, followed by MaxPool, doubling feature
channels and halving spatial resolution until all resolution is lost. A final softmax") is VGG13-BN on 32×32
input, ending at 1×1×512, with one Linear(512, num_classes) after a global average pool (identical to a
flatten at 1×1; it absorbs F-Conv's growth). The paper used circular convolution and shifts throughout, so
``vgg13_cifar`` defaults to ``conv_mode='circular'``; note that with ``'same'`` and a reflect-padded blur the
last stage's 1×1 map cannot be reflect-padded, so ``same`` + BlurPool needs at least 48×48 input.

Costs: ``full`` grows every conv's output by 2 per dim; at 224×224 VGG16 takes 22.7 G multiply-adds instead of
15.5 (1.47×), VGG11 10.2 instead of 7.6 (1.35×).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxborders.models import common
from jaxborders.models.common import check_conv_mode, parse_antialias
from jaxborders.models.registry import register_model
from jaxborders.nn.layers import APSPool, BlurPool, Conv
from jaxborders.ops import aps as aps_ops
from jaxborders.ops import filters

# torchvision's configurations: channels of each 3×3 conv, "M" = max pool.
CONFIGS: dict[int, tuple[int | str, ...]] = {
    11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    13: (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    19: (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}
HEADS = ("imagenet", "cifar")

# torchvision's VGG init: convs kaiming_normal(fan_out, relu), linears N(0, 0.01), biases 0.
conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
linear_init = nn.initializers.normal(0.01)


def batch_norm(train: bool, dtype: Any, name: str, use_scale: bool = True, use_bias: bool = True) -> nn.BatchNorm:
  """BatchNorm with PyTorch's defaults (momentum 0.1 = flax 0.9, eps 1e-5)."""
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=dtype, use_scale=use_scale,
                      use_bias=use_bias, name=name)


def adaptive_avg_pool(x: jax.Array, output_size: Sequence[int]) -> jax.Array:
  """PyTorch's ``AdaptiveAvgPool2d`` on (N, H, W, C): bin ``i`` averages ``[floor(i·n/m), ceil((i+1)·n/m))``.

  Written as two small averaging matrices (built from the static sizes), so it is exact for any input size,
  including inputs smaller than the output (bins then repeat pixels, as in PyTorch).

  >>> adaptive_avg_pool(jnp.arange(4.).reshape(1, 4, 1, 1), (2, 1))[0, :, 0, 0].tolist()
  [0.5, 2.5]
  """

  def matrix(n: int, m: int) -> np.ndarray:
    a = np.zeros((m, n), np.float32)
    for i in range(m):
      lo, hi = (i * n) // m, -(-((i + 1) * n) // m)
      a[i, lo:hi] = 1.0 / (hi - lo)
    return a

  (h, w), (oh, ow) = x.shape[1:3], tuple(output_size)
  rows, cols = jnp.asarray(matrix(h, oh), x.dtype), jnp.asarray(matrix(w, ow), x.dtype)
  return jnp.einsum("ih,jw,nhwc->nijc", rows, cols, x, precision=jax.lax.Precision.HIGHEST)


def dense_max_pool(x: jax.Array, circular: bool) -> jax.Array:
  """MaxPool k2 s1 of antialiased downsampling; with ``circular`` it wraps around and keeps the size."""
  if circular:
    x = jnp.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)), mode="wrap")
  return filters.max_pool(x, 2, 1)


def torch_layer_names(depth: int, batch_norm: bool = False, antialiased: bool = False) -> dict[str, str]:
  """Flax module name → PyTorch module prefix for a VGG's parametrised layers.

  ``antialiased=True`` gives antialiased-cnns' layout, where each ``MaxPool2d`` is followed by a ``BlurPool``
  (two ``features`` entries instead of one).

  >>> torch_layer_names(11, antialiased=True)['features_3']
  'features.4'
  """
  names, torch_i, flax_i = {}, 0, 0
  for v in CONFIGS[depth]:
    if v == "M":
      flax_i += 1
      torch_i += 2 if antialiased else 1
      continue
    names[f"features_{flax_i}"] = f"features.{torch_i}"
    if batch_norm:
      names[f"features_{flax_i + 1}"] = f"features.{torch_i + 1}"
    step = 3 if batch_norm else 2
    flax_i += step
    torch_i += step
  for i in (0, 3, 6):
    names[f"classifier_{i}"] = f"classifier.{i}"
  return names


class VGG(nn.Module):
  """VGG with a border mode and anti-aliased downsampling (see the module docstring).

  Attributes:
    depth: 11, 13, 16 or 19.
    batch_norm: a BatchNorm after every conv (torchvision's ``vgg*_bn``).
    conv_mode: border mode of the 3×3 convs, one of ``jaxborders.MODES``.
    antialias: ``None``, ``'blur:<kind>:<size>'`` or ``'aps'`` (see ``parse_antialias``).
    num_classes: classifier outputs.
    dtype: computation dtype (parameters stay float32).
    width: channels of the first stage (64); every stage scales with it (narrow nets for tests).
    classifier_width: hidden units of the ImageNet head (4096).
    dropout: dropout rate of the ImageNet head (uses the ``'dropout'`` rng when ``train``).
    head: ``'imagenet'`` (adaptive pool 7×7 + 3 linears) or ``'cifar'`` (global average pool + 1 linear).

  ``__call__(x, train, return_features=False)``: ``x`` is (N, H, W, C); returns logits (N, num_classes), or
  ``(logits, features)`` with ``features`` = ``stage1``..``stage5`` (after each downsampling) and
  ``pre_logits``.
  """

  depth: int = 16
  batch_norm: bool = False
  conv_mode: str = "same"
  antialias: Any = None
  num_classes: int = 1000
  dtype: Any = jnp.float32
  width: int = 64
  classifier_width: int = 4096
  dropout: float = 0.5
  head: str = "imagenet"

  def __post_init__(self):
    if self.depth not in CONFIGS:
      raise ValueError(f"depth={self.depth!r} is not supported; accepted values: {sorted(CONFIGS)}.")
    check_conv_mode(self.conv_mode)
    parse_antialias(self.antialias)
    common.check_choice("head", self.head, HEADS)
    for name in ("num_classes", "width", "classifier_width"):
      value = getattr(self, name)
      if not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}.")
    super().__post_init__()

  # -- input-size convention (jaxborders.models.common) --------------------------------------------------------

  def _size_steps(self) -> list:
    aa = parse_antialias(self.antialias)
    dense = ([common.pad_step(0, 1)] if self.conv_mode == "circular" else []) + [common.pool_step(2, 1)]
    if aa.method == "blur":
      down = dense + [common.blur_step(aa.size, 2, common.blur_pad_mode(self.conv_mode))]
    elif aa.method == "aps":
      down = dense + [common.aps_step(2, aa.size)]
    else:
      down = [common.pool_step(2, 2)]
    steps = []
    for v in CONFIGS[self.depth]:
      steps += down if v == "M" else [common.conv_step(3, 1, self.conv_mode)]
    return steps

  def min_input_size(self) -> tuple[int, int]:
    """Smallest (H, W) this configuration can process (32×32 for ``same``)."""
    n = common.min_length(self._size_steps())
    return (n, n)

  def example_input_shape(self, batch: int = 2) -> tuple[int, int, int, int]:
    """A small valid (N, H, W, 3) input."""
    return (batch, *self.min_input_size(), 3)

  # -- network ---------------------------------------------------------------------------------------------------

  def _downsample(self, x: jax.Array, name: str) -> jax.Array:
    aa = parse_antialias(self.antialias)
    if aa.method == "none":
      return filters.max_pool(x, 2, 2)
    x = dense_max_pool(x, self.conv_mode == "circular")
    if aa.method == "blur":
      return BlurPool(aa.size, 2, aa.kind, common.blur_pad_mode(self.conv_mode), name=f"{name}_blur")(x)
    y, _ = APSPool(2, aa.norm, aa.size, name=f"{name}_aps")(aps_ops.pad_to_multiple(x, 2))
    return y

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, return_features: bool = False):
    common.check_input_size(f"vgg{self.depth}", x.shape, self.min_input_size())
    x = x.astype(self.dtype)
    features: dict[str, jax.Array] = {}
    i, stage = 0, 1
    for v in CONFIGS[self.depth]:
      if v == "M":
        x = self._downsample(x, f"features_{i}")
        features[f"stage{stage}"] = x
        stage, i = stage + 1, i + 1
        continue
      x = Conv(v * self.width // 64, 3, 1, mode=self.conv_mode, dtype=self.dtype, kernel_init=conv_init,
               name=f"features_{i}")(x)
      if self.batch_norm:
        x = batch_norm(train, self.dtype, f"features_{i + 1}")(x)
      x = nn.relu(x)
      i += 3 if self.batch_norm else 2
    if self.head == "cifar":
      x = jnp.mean(x, axis=(1, 2))
      features["pre_logits"] = x
      logits = nn.Dense(self.num_classes, dtype=self.dtype, kernel_init=linear_init, name="classifier")(x)
    else:
      x = adaptive_avg_pool(x, (7, 7))
      x = jnp.transpose(x, (0, 3, 1, 2)).reshape(x.shape[0], -1)  # torch's (C, H, W) flatten order
      for j in (0, 3):
        x = nn.Dense(self.classifier_width, dtype=self.dtype, kernel_init=linear_init, name=f"classifier_{j}")(x)
        x = nn.Dropout(self.dropout, deterministic=not train)(nn.relu(x))
      features["pre_logits"] = x
      logits = nn.Dense(self.num_classes, dtype=self.dtype, kernel_init=linear_init, name="classifier_6")(x)
    logits = logits.astype(jnp.float32)
    return (logits, features) if return_features else logits


def _make(depth: int, batch_norm: bool, head: str = "imagenet", default_classes: int = 1000,
          default_mode: str = "same"):
  def build(conv_mode: str = default_mode, antialias: Any = None, num_classes: int = default_classes,
            dtype: Any = jnp.float32, **kwargs: Any) -> VGG:
    kwargs = {"head": head, **kwargs}  # the variant's head unless the caller names one
    return VGG(depth=depth, batch_norm=batch_norm, conv_mode=conv_mode, antialias=antialias,
               num_classes=num_classes, dtype=dtype, **kwargs)

  return build


vgg11 = register_model("vgg11")(_make(11, False))
vgg13 = register_model("vgg13")(_make(13, False))
vgg16 = register_model("vgg16")(_make(16, False))
vgg11_bn = register_model("vgg11_bn")(_make(11, True))
vgg13_bn = register_model("vgg13_bn")(_make(13, True))
vgg16_bn = register_model("vgg16_bn")(_make(16, True))
vgg13_cifar = register_model("vgg13_cifar")(_make(13, True, "cifar", 10, "circular"))
for _fn, _doc in ((vgg11, "VGG-11"), (vgg13, "VGG-13"), (vgg16, "VGG-16"), (vgg11_bn, "VGG-11 with BatchNorm"),
                  (vgg13_bn, "VGG-13 with BatchNorm"), (vgg16_bn, "VGG-16 with BatchNorm"),
                  (vgg13_cifar, "The BlurPool paper's CIFAR-10 VGG13 (BN, 32×32 input, one linear layer; circular "
                                "convolution by default, as in the paper)")):
  _fn.__doc__ = f"{_doc}: ``VGG`` with the given ``conv_mode``, ``antialias``, ``num_classes``, ``dtype``."

__all__ = ["VGG", "CONFIGS", "adaptive_avg_pool", "dense_max_pool", "torch_layer_names", "batch_norm", "vgg11",
           "vgg13", "vgg16", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg13_cifar"]
