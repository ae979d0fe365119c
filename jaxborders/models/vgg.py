"""VGG 11/13/16/19 (with or without BatchNorm) and the BlurPool paper's CIFAR-10 VGG13, in every border mode.

Structure is torchvision's ``vgg.py``: 3×3 convs (bias) → [BN] → ReLU, MaxPool k2 s2 after each stage,
adaptive average pool to 7×7, classifier Linear(512·7·7, 4096) → ReLU → Dropout(0.5) → Linear(4096, 4096) →
ReLU → Dropout(0.5) → Linear(4096, num_classes).

Border modes (``conv_mode``) change only the 3×3 convs: ``same`` pads 1 (torchvision), ``full`` pads 2 (F-Conv:
every conv grows the map by 2; the max pools are unchanged, and the adaptive pool absorbs the growth:
VGG16 at 224 ends at 12×12 instead of 7×7), ``valid`` pads 0, ``circular``/``reflect``/``replicate`` pad 1 with
that rule.

Downsampling (``antialias``): every MaxPool k2 s2 is ``jaxborders.nn.max_pool_downsample``: the plain pool
for ``None``; MaxPool k2 **s1** -> the antialias layer otherwise (``'blur:<kind>:<size>'``: BlurPool s2, as
antialiased-cnns' VGG; ``'aps'``: APS s2, odd maps blurred (if asked) then circularly padded to even). The blur pads
``reflect`` (AA's default), except with ``conv_mode='full'`` (zeros, ``f-1`` per side, as CWB's F-Conv + BlurPool)
and ``'circular'`` (wrap-around, as the BlurPool paper's CIFAR runs); with ``circular`` the dense max pool also
wraps, padded (0, 1), so that the whole network commutes with circular shifts.

Intermediates (``jaxborders.models.intermediates``): ``features_<i>`` after every conv's ReLU (torchvision's
index of that ReLU), ``stage<s>`` after every downsampling, ``pre_logits``.

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
from jaxborders.nn.downsample import downsampler, max_pool_downsample
from jaxborders.nn.layers import Conv
from jaxborders.nn.norm import batch_norm
from jaxborders.ops.checks import check_choice

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


class VGG(common.ZooModel):
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

  ``__call__(x, train=False)``: ``x`` is (N, H, W, C); returns logits (N, num_classes).
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
    check_choice("head", self.head, HEADS)
    for name in ("num_classes", "width", "classifier_width"):
      value = getattr(self, name)
      if not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}.")
    super().__post_init__()

  @nn.compact
  @common.checks_input_size
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = x.astype(self.dtype)
    i, stage = 0, 1
    for v in CONFIGS[self.depth]:
      if v == "M":
        down = downsampler(self.antialias, 2, self.conv_mode, name=f"features_{i}")
        x, _ = max_pool_downsample(down, x, 2, 0, train)
        common.sow(self, f"stage{stage}", x)
        stage, i = stage + 1, i + 1
        continue
      conv_name = f"features_{i}"
      x = Conv(v * self.width // 64, 3, 1, mode=self.conv_mode, dtype=self.dtype, kernel_init=conv_init,
               name=conv_name)(x)
      if self.batch_norm:
        x = batch_norm(train, f"features_{i + 1}", self.dtype)(x)
      step = 3 if self.batch_norm else 2
      x = common.sow(self, f"features_{i + step - 1}", nn.relu(x))  # torchvision's index of this ReLU
      i += step
    if self.head == "cifar":
      x = common.sow(self, "pre_logits", jnp.mean(x, axis=(1, 2)))
      logits = nn.Dense(self.num_classes, dtype=self.dtype, kernel_init=linear_init, name="classifier")(x)
    else:
      x = adaptive_avg_pool(x, (7, 7))
      x = jnp.transpose(x, (0, 3, 1, 2)).reshape(x.shape[0], -1)  # torch's (C, H, W) flatten order
      for j in (0, 3):
        x = nn.Dense(self.classifier_width, dtype=self.dtype, kernel_init=linear_init, name=f"classifier_{j}")(x)
        x = nn.Dropout(self.dropout, deterministic=not train)(nn.relu(x))
      x = common.sow(self, "pre_logits", x)
      logits = nn.Dense(self.num_classes, dtype=self.dtype, kernel_init=linear_init, name="classifier_6")(x)
    return logits.astype(jnp.float32)


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
vgg19 = register_model("vgg19")(_make(19, False))
vgg19_bn = register_model("vgg19_bn")(_make(19, True))
vgg13_cifar = register_model("vgg13_cifar")(_make(13, True, "cifar", 10, "circular"))
for _fn, _doc in ((vgg11, "VGG-11"), (vgg13, "VGG-13"), (vgg16, "VGG-16"), (vgg11_bn, "VGG-11 with BatchNorm"),
                  (vgg13_bn, "VGG-13 with BatchNorm"), (vgg16_bn, "VGG-16 with BatchNorm"),
                  (vgg19, "VGG-19"), (vgg19_bn, "VGG-19 with BatchNorm"),
                  (vgg13_cifar, "The BlurPool paper's CIFAR-10 VGG13 (BN, 32×32 input, one linear layer; circular "
                                "convolution by default, as in the paper)")):
  _fn.__doc__ = f"{_doc}: ``VGG`` with the given ``conv_mode``, ``antialias``, ``num_classes``, ``dtype``."

__all__ = ["VGG", "CONFIGS", "adaptive_avg_pool", "torch_layer_names", "vgg11", "vgg13", "vgg16", "vgg19",
           "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn", "vgg13_cifar"]
