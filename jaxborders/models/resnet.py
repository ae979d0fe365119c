"""ResNet-18/34/50/101/152 (2D) with every border mode and anti-aliasing option (F-Conv, BlurPool, APS).

One implementation serves 2D and 3D (``jaxborders.models.resnet3d`` sets ``rank=3``): every border decision is
made per spatial axis, so the 3D spatial-only F-Conv (zero "same" padding in time, full padding in space) is the
same code as the 2D one.

How each ``conv_mode`` is built (k×k convs, k > 1; 1×1 convs never pad):

=============  ==================================================================================================
``same``       torchvision ResNet v1 exactly: 3×3 pad 1, stem 7×7 s2 p3, MaxPool k3 s2 p1, stride in the
               Bottleneck's 3×3 (v1.5, like torchvision), projection shortcut 1×1 stride s + BN.
``full``       CWB's F-Conv ResNet exactly: 3×3 pad 2, stem 7×7 s2 p6, MaxPool k2 s2 p0 (2D; 3D keeps k3 s2 p1);
               shortcuts are zero-padded so they meet the grown main branch: BasicBlock identity pad 2, projection
               pad 3 then 1×1 stride 2; Bottleneck identity pad 1, projection (also layer1's stride-1 one) pad 1.
               Maps grow: at 224 the stem gives 115, the pool 57, ResNet-18/50 end at 21×21 (S-Conv: 7×7).
``circular``,  as ``same`` with the padding of every k×k conv wrapped / mirrored / edge-repeated; the stem MaxPool
``reflect``,   pads with -inf (PyTorch) except for ``circular``, where it wraps (so a circular net is exactly
``replicate``  equivariant to circular shifts).
``valid``      no padding anywhere (stem MaxPool k3 s2 p0); shortcuts are cropped instead of padded, by the
               amounts ``full`` pads (2 / 3 / 1 / 1), starting at the top-left, then cut to the main branch's size
               so both branches stay centred on the same input pixels.
=============  ==================================================================================================

``antialias`` (one layer from ``jaxborders.nn.downsampler`` at every stride-2 step; the spec's forms are listed
there):

* ``None``: the stride stays in the stem conv, the stem MaxPool, the block's strided conv and the 1×1 projection.
* BlurPool (``'blur:<kind>:<size>'``, ``'maxblur:...'``), antialiased-cnns' placement (``pool_only=True``, its
  default): stem conv s2 -> BN -> ReLU -> MaxPool k2 s1 -> BlurPool s2; BasicBlock: conv1 3×3 s1 -> BN -> ReLU ->
  BlurPool s2 -> conv2 -> BN; Bottleneck: conv2 3×3 s1 -> BN -> ReLU -> BlurPool s2 -> conv3 1×1 -> BN; projection
  shortcut: (pad / crop) -> BlurPool s2 -> 1×1 s1 -> BN. The blur pads like the border mode
  (``jaxborders.nn.blur_pad_mode``): ``reflect`` (AA) for the same-size zero / reflect / replicate modes, wrap for
  ``circular``, F-Conv's zero ``f-1`` per side for ``full`` (CWB ``models_fconv_lpf``: stem 7×7 s2 p6 -> MaxPool
  k2 s1 -> BlurPool s2; shortcut pad 3 (Basic) / 1 (Bottleneck) -> BlurPool -> 1×1 -> BN) and none for ``valid``.
* APS (``'aps[:norm[:blur]]'``), placed as the official code (``achaman2/truly_shift_invariant_cnns``,
  ``models/aps_models/resnet.py``): where BlurPool sits, i.e. *after* the stride-1 conv's BN + ReLU. Stem (its
  default, ``pool_only=False``): conv 7×7 s1 -> BN -> ReLU -> APS -> pad (0, 1) -> MaxPool 2×2 s1 -> APS (the pad
  wraps under ``circular``, the official setting, and is -inf otherwise); ``pool_only=True``: conv 7×7 s2 -> BN ->
  ReLU -> pad (0, 1) -> MaxPool 2×2 s1 -> APS. Blocks as BlurPool above with APS in its place; the projection
  shortcut applies APS with the main branch's polyphase index before its 1×1 conv. Each APS blurs (optional,
  circular binomial) at the map's own size, then pads odd maps circularly to even, then keeps the component of
  largest norm, components ordered (0,0), (1,0), (0,1), (1,1), the first on ties (``jaxborders.aps_pool``). With
  ``conv_mode='circular'`` the network is exactly invariant to circular shifts of its input. Until this version
  APS sat right after the stride-1 conv (before BN + ReLU), the stem pool was a wrapped 3×3 s1 max pool, and odd
  maps were padded before the blur; with the same weights the logits differ.
* LPS (``'lps[:blur]'``), placed as its authors' ResNet (``raymondyeh07/learnable_polyphase_sampling``,
  ``models/resnet_custom.py``): exactly APS's positions above (stem conv s1 -> LPS, dense pool -> LPS, blocks,
  the shortcut reusing the main branch's choice), so a circular LPS ResNet is exactly circular-shift invariant in
  inference. Until this version the LPS stem conv kept its stride 2, which broke that invariance.

Cost at 224×224 (XLA's count, ``python -m jaxborders.models.summary resnet50 --conv_mode full``): ``full`` takes
9.40 / 23.57 GFLOPs per image for ResNet-18 / 50 against 3.38 / 8.00 for ``same`` (2.8× / 2.9×).
Parameters are identical in every mode.

Parameters are float32; ``dtype`` is the compute dtype. BatchNorm: ``jaxborders.nn.batch_norm`` (PyTorch defaults).

Intermediates (``jaxborders.models.intermediates``): ``stem``, ``layer<s>_<b>`` after every block, ``stage<s>``
after every stage, ``pre_logits``.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxborders.models import common
from jaxborders.models.common import check_conv_mode, parse_antialias
from jaxborders.models.registry import register_model
from jaxborders.nn import layers
from jaxborders.nn.downsample import downsampler, max_pool_downsample
from jaxborders.nn.norm import batch_norm
from jaxborders.ops import padding as padding_ops
from jaxborders.ops.checks import check_choice

Dtype = Any
BLOCKS: tuple[str, ...] = ("basic", "bottleneck")
STAGE_WIDTHS: tuple[int, ...] = (64, 128, 256, 512)

# torchvision's init: kaiming_normal(fan_out, relu) for convs; Linear: U(±1/sqrt(fan_in)).
conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
dense_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")

# Shortcut padding of CWB's F-Conv blocks (cropping for ``valid``): (identity, projection).
SHORTCUT_OFFSET = {"basic": (2, 3), "bottleneck": (1, 1)}


def shift_crop(x: jax.Array, offsets: Sequence[int]) -> jax.Array:
  """Zero-pads axis ``i`` by ``offsets[i]`` on both sides if positive, crops ``-offsets[i]`` at its start if
  negative (``valid``: the caller then cuts the end to the main branch's size)."""
  x = x[(slice(None), *(slice(-c, None) if c < 0 else slice(None) for c in offsets))]
  widths = [(0, 0), *((c, c) if c > 0 else (0, 0) for c in offsets), (0, 0)]
  return jnp.pad(x, widths) if any(w != (0, 0) for w in widths) else x


def _shortcut_offsets(modes: Sequence[str], offset: int) -> list[int]:
  return [offset if m == "full" else (-offset if m == "valid" else 0) for m in modes]


class ResNet(common.ZooModel):
  """ResNet v1 (torchvision layout) with a border mode and optional anti-aliasing; see the module docstring.

  Call: ``model.apply(variables, x, train=False)`` with ``x`` (N, H, W, C) (2D) or (N, T, H, W, C) (3D) returns
  logits (N, num_classes) in float32; intermediates: ``jaxborders.models.intermediates``. Train with
  ``mutable=['batch_stats']``.

  Attributes:
    block: ``'basic'`` (ResNet-18/34) or ``'bottleneck'`` (ResNet-50/101/152).
    stage_sizes: blocks per stage.
    num_classes: classifier outputs.
    conv_mode: border mode, one of ``jaxborders.MODES`` (``partial`` pads the stem pool like ``same``).
    antialias: an ``antialias`` spec (``jaxborders.nn.parse_antialias``).
    dtype: compute dtype (parameters stay float32).
    rank: 2 (images) or 3 (video, Hara et al.; see ``resnet3d``).
    temporal_mode: 3D only: border mode of the time axis (None: ``'same'`` if ``conv_mode == 'full'``, the
      spatial-only F-Conv, else ``conv_mode``). ``'full'`` is CWB's temporal F-Conv (stem stride 2 in time).
    width: channels of the stem and stage 1 (stages: width·(1, 2, 4, 8)); 64 = torchvision.
    pool_only: anti-alias only the stem pool, not the stem conv (None: the method authors' default: True for
      BlurPool as antialiased-cnns, False for APS as the official APS code).

  Example:
    >>> from jaxborders.models import get_model, intermediate_shapes
    >>> model = get_model('resnet18', conv_mode='circular', antialias='aps', width=8)
    >>> model.min_input_size()
    (3, 3)
    >>> shapes = intermediate_shapes(model, (1, 32, 32, 3))
    >>> [(k, v[1:3]) for k, v in shapes.items()][:3], list(shapes)[-1]
    ([('stem', (8, 8)), ('layer1.0', (8, 8)), ('layer1.1', (8, 8))], 'pre_logits')
  """

  block: str = "basic"
  stage_sizes: Sequence[int] = (2, 2, 2, 2)
  num_classes: int = 1000
  conv_mode: str = "same"
  antialias: Any = None
  dtype: Dtype = jnp.float32
  rank: int = 2
  temporal_mode: str | None = None
  width: int = 64
  pool_only: bool | None = None

  def __post_init__(self):
    check_choice("block", self.block, BLOCKS)
    check_conv_mode(self.conv_mode)
    parse_antialias(self.antialias)
    if self.rank not in (2, 3):
      raise ValueError(f"rank={self.rank!r} is not supported; accepted values: 2, 3.")
    if self.temporal_mode is not None:
      if self.rank != 3:
        raise ValueError(f"temporal_mode={self.temporal_mode!r} only applies to 3D ResNets (rank=3); use None.")
      check_choice("temporal_mode", self.temporal_mode, padding_ops.MODES)
    if not isinstance(self.width, int) or self.width < 1:
      raise ValueError(f"width must be an int >= 1, got {self.width!r}.")
    if not isinstance(self.num_classes, int) or self.num_classes < 1:
      raise ValueError(f"num_classes must be an int >= 1, got {self.num_classes!r}.")
    if len(tuple(self.stage_sizes)) != 4 or any(int(s) < 1 for s in self.stage_sizes):
      raise ValueError(f"stage_sizes must be 4 ints >= 1, got {self.stage_sizes!r}.")
    if self.pool_only not in (None, True, False):
      raise ValueError(f"pool_only={self.pool_only!r} is not supported; accepted values: None, True, False.")
    super().__post_init__()

  @property
  def spatial_rank(self) -> int:
    return self.rank

  @property
  def axis_modes(self) -> tuple[str, ...]:
    """Border mode of each spatial axis ((T,) H, W)."""
    if self.rank == 2:
      return (self.conv_mode,) * 2
    t = self.temporal_mode or ("same" if self.conv_mode == "full" else self.conv_mode)
    return (t, self.conv_mode, self.conv_mode)

  @property
  def stem_strides(self) -> tuple[int, ...]:
    if self.rank == 2:
      return (2, 2)
    return (2 if self.temporal_mode == "full" else 1, 2, 2)  # CWB resnet_fconv_tem: stride 2 in time too

  def stem_pool(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(window, stride, padding) of the plain stem MaxPool: k3 s2 p1, CWB's k2 s2 p0 for 2D full, no pad for
    valid."""
    if self.rank == 2 and self.conv_mode == "full":
      return (2, 2), (2, 2), (0, 0)
    return ((3,) * self.rank, (2,) * self.rank, tuple(0 if m == "valid" else 1 for m in self.axis_modes))

  def _stem(self, x: jax.Array, train: bool) -> jax.Array:
    """conv 7×7 -> BN -> ReLU (-> downsampler when the stem conv is anti-aliased) -> downsampling max pool."""
    modes = self.axis_modes
    pool_down = downsampler(self.antialias, self.stem_pool()[1], modes, name="pool_down")
    pool_only = (not type(pool_down).antialiases_stem_conv) if self.pool_only is None else self.pool_only
    conv_down = downsampler(None if pool_only else self.antialias, self.stem_strides, modes, name="conv1_down")
    x = Conv(self.width, 7, conv_down.preceding_stride, modes=modes, dtype=self.dtype, name="conv1")(x)
    x = nn.relu(batch_norm(train, "bn1", self.dtype)(x))
    x, _ = conv_down(x, train)
    window, _, padding = self.stem_pool()
    x, _ = max_pool_downsample(pool_down, x, window, [(p, p) for p in padding], train)
    return x

  @nn.compact
  @common.checks_input_size
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = common.sow(self, "stem", self._stem(x.astype(self.dtype), train))
    block = BasicBlock if self.block == "basic" else Bottleneck
    expansion = 1 if self.block == "basic" else 4
    in_features = self.width
    widths = tuple(self.width * w // STAGE_WIDTHS[0] for w in STAGE_WIDTHS)
    for stage, (n_blocks, width) in enumerate(zip(self.stage_sizes, widths)):
      for b in range(n_blocks):
        stride = 2 if stage > 0 and b == 0 else 1
        projection = stride > 1 or in_features != width * expansion
        name = f"layer{stage + 1}_{b}"
        x = block(width, (stride,) * self.rank, projection, self.axis_modes, self.antialias, self.dtype,
                  name=name)(x, train)
        common.sow(self, f"layer{stage + 1}.{b}", x)  # torchvision's block name (the module is layer{s}_{b})
        in_features = width * expansion
      common.sow(self, f"stage{stage + 1}", x)
    x = common.sow(self, "pre_logits", jnp.mean(x, axis=tuple(range(1, self.rank + 1))))
    logits = nn.Dense(self.num_classes, dtype=self.dtype, kernel_init=dense_init, name="fc")(x)
    return logits.astype(jnp.float32)


class BasicBlock(nn.Module):
  """ResNet BasicBlock (two 3×3 convs) with border-mode shortcuts; a strided block downsamples after conv1's BN +
  ReLU with the block's downsampler (the plain method strides conv1 itself)."""

  features: int
  strides: tuple[int, ...]
  projection: bool
  modes: tuple[str, ...]
  antialias: Any
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    ident, proj = SHORTCUT_OFFSET["basic"]
    down = _block_downsampler(self)
    conv = functools.partial(Conv, modes=self.modes, dtype=self.dtype)
    y = conv(self.features, 3, down.preceding_stride, name="conv1")(x)
    y = nn.relu(batch_norm(train, "bn1", self.dtype)(y))
    y, index = down(y, train)
    y = batch_norm(train, "bn2", self.dtype)(conv(self.features, 3, 1, name="conv2")(y))
    sc = _shortcut(x, self, down, proj if self.projection else ident, index, train, self.features)
    return nn.relu(y + _match(sc, y))


class Bottleneck(nn.Module):
  """ResNet v1.5 Bottleneck (1×1, 3×3 with the stride, 1×1 ×4); a strided block downsamples after conv2's BN +
  ReLU with the block's downsampler."""

  features: int
  strides: tuple[int, ...]
  projection: bool
  modes: tuple[str, ...]
  antialias: Any
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    ident, proj = SHORTCUT_OFFSET["bottleneck"]
    down = _block_downsampler(self)
    conv = functools.partial(Conv, modes=self.modes, dtype=self.dtype)
    y = nn.relu(batch_norm(train, "bn1", self.dtype)(conv(self.features, 1, 1, name="conv1")(x)))
    y = conv(self.features, 3, down.preceding_stride, name="conv2")(y)
    y = nn.relu(batch_norm(train, "bn2", self.dtype)(y))
    y, index = down(y, train)
    y = batch_norm(train, "bn3", self.dtype)(conv(self.features * 4, 1, 1, name="conv3")(y))
    sc = _shortcut(x, self, down, proj if self.projection else ident, index, train, self.features * 4)
    return nn.relu(y + _match(sc, y))


def _block_downsampler(block: nn.Module, name: str = "down") -> nn.Module:
  """The block's stride step: the antialias method for a strided block, the identity for a stride-1 one."""
  strided = any(s > 1 for s in block.strides)
  return downsampler(block.antialias if strided else None, block.strides, block.modes, name=name)


def _shortcut(x: jax.Array, block: nn.Module, down: nn.Module, offset: int, index: jax.Array | None, train: bool,
              features: int) -> jax.Array:
  """Identity or projection shortcut: pad (full) / crop (valid) by ``offset``; a projection downsamples like the
  main branch (the same method with the main branch's polyphase index; a method with parameters, such as adaptive
  anti-aliasing, has its own layer here, as in its authors' ResNets), then 1×1 conv + BN."""
  x = shift_crop(x, _shortcut_offsets(block.modes, offset))
  if not block.projection:
    return x
  x, _ = _block_downsampler(block, name="downsample_down")(x, train, index)
  x = Conv(features, 1, down.preceding_stride, modes=block.modes, dtype=block.dtype, name="downsample_conv")(x)
  return batch_norm(train, "downsample_bn", block.dtype)(x)


def _match(sc: jax.Array, y: jax.Array) -> jax.Array:
  """Cuts the shortcut's end to the main branch's size (only ``valid`` crops leave extra rows)."""
  if sc.shape == y.shape:
    return sc
  if any(a < b for a, b in zip(sc.shape[1:-1], y.shape[1:-1])):
    raise AssertionError(f"shortcut {sc.shape} smaller than main branch {y.shape}")  # a bug, not bad input
  return sc[(slice(None), *(slice(0, n) for n in y.shape[1:-1]))]


def Conv(features: int, kernel_size: int, strides: int | Sequence[int], modes: Sequence[str], dtype: Dtype,
         name: str) -> nn.Module:
  """Bias-free ``jaxborders.nn.Conv`` with one border mode per spatial axis and torchvision's init."""
  rank = len(modes)
  return layers.Conv(features, (kernel_size,) * rank, strides, mode=tuple(modes), use_bias=False, dtype=dtype,
                     kernel_init=conv_init, name=name)


_DEPTHS: dict[int, tuple[str, tuple[int, ...]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


def _make(depth: int):
  block, stages = _DEPTHS[depth]

  def build(conv_mode: str = "same", antialias: Any = None, num_classes: int = 1000,
            dtype: Dtype = jnp.float32, width: int = 64, pool_only: bool | None = None) -> ResNet:
    return ResNet(block=block, stage_sizes=stages, num_classes=num_classes, conv_mode=conv_mode,
                  antialias=antialias, dtype=dtype, width=width, pool_only=pool_only)

  build.__name__ = f"resnet{depth}"
  build.__doc__ = (f"ResNet-{depth} ({block} blocks {stages}); ``same`` = torchvision, ``full`` = CWB F-Conv "
                   f"(see ``jaxborders.models.resnet``).")
  return register_model(f"resnet{depth}")(build)


resnet18 = _make(18)
resnet34 = _make(34)
resnet50 = _make(50)
resnet101 = _make(101)
resnet152 = _make(152)

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "Conv", "resnet18", "resnet34", "resnet50",
           "resnet101", "resnet152"]
