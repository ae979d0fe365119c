"""ResNet-18/34/50/101/152 (2D) with every border mode and anti-aliasing option (docs/models.md, docs/antialiasing.md).

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

``antialias``:

* ``'blur:<kind>:<size>'`` (BlurPool, AA's ``pool_only`` placement, docs/antialiasing.md): stem conv s2 -> BN -> ReLU ->
  MaxPool k2 s1 -> BlurPool s2; BasicBlock: conv1 3×3 s1 -> BN -> ReLU -> BlurPool s2 -> conv2 -> BN;
  Bottleneck: conv2 3×3 s1 -> BN -> ReLU -> BlurPool s2 -> conv3 1×1 -> BN; shortcut: (pad / crop) -> BlurPool s2
  -> 1×1 s1 -> BN. The blur pads like the border mode (``common.blur_pad_mode``): ``reflect`` (AA) for the
  same-size zero / reflect / replicate modes, wrap for ``circular``, F-Conv's zero ``f-1`` per side for ``full``
  (CWB ``models_fconv_lpf``: stem 7×7 s2 p6 -> MaxPool k2 s1 -> BlurPool s2; shortcut pad 3 (Basic) / 1
  (Bottleneck) -> BlurPool -> 1×1 -> BN) and no padding for ``valid``.
* ``'aps[:norm[:blur]]'`` (docs/antialiasing.md): every stride-2 op (stem conv, stem pool, block conv) runs at stride 1 and is
  followed directly by APS, before its BN (sizes padded circularly to even first); the projection shortcut applies APS with the main
  branch's polyphase index before its 1×1 conv. With ``conv_mode='circular'`` the network is exactly invariant
  to circular shifts of its input (global average pooling). The stem conv then runs at full resolution: it costs
  4× the FLOPs of the strided one.

Cost at 224×224 (XLA's count, ``python -m jaxborders.models.summary resnet50 --conv_mode full``): ``full`` takes
9.40 / 23.57 GFLOPs per image for ResNet-18 / 50 against 3.38 / 8.00 for ``same`` (2.8× / 2.9×; docs/experiments.md
measured 3.07× / 3.14× on the PyTorch reference models). Parameters are identical in every mode.

Parameters are float32; ``dtype`` is the compute dtype. BatchNorm: PyTorch momentum 0.1 (flax 0.9), eps 1e-5.
PyTorch updates ``running_var`` with the unbiased batch variance, flax with the biased one (a factor n/(n-1),
negligible for conv maps); eval-mode outputs are identical.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxborders.models import common
from jaxborders.models.common import AntiAlias, check_conv_mode, parse_antialias
from jaxborders.models.registry import register_model
from jaxborders.ops import aps as aps_ops
from jaxborders.ops import filters
from jaxborders.ops import padding as padding_ops
from jaxborders.ops.checks import check_choice

Dtype = Any
BLOCKS: tuple[str, ...] = ("basic", "bottleneck")
STAGE_WIDTHS: tuple[int, ...] = (64, 128, 256, 512)
FEATURE_NAMES: tuple[str, ...] = ("stem", "stage1", "stage2", "stage3", "stage4", "pre_logits")

# torchvision's init: kaiming_normal(fan_out, relu) for convs; Linear: U(±1/sqrt(fan_in)).
conv_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
dense_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")

# Shortcut padding of CWB's F-Conv blocks (cropping for ``valid``): (identity, projection).
SHORTCUT_OFFSET = {"basic": (2, 3), "bottleneck": (1, 1)}


# ----------------------------------------------------------------------------------------------------------------
# Per-axis ops. Each spatial axis has its own border mode (3D spatial-only F-Conv mixes 'same' in time with 'full'
# in space), so these take one mode per axis; with a single mode they defer to the project's ops.
# ----------------------------------------------------------------------------------------------------------------

_WRAP = {"circular": "wrap", "reflect": "reflect", "replicate": "edge"}


def _pad_axes(x: jax.Array, widths: Sequence[tuple[int, int]], modes: Sequence[str]) -> jax.Array:
  """Pads each spatial axis with its own mode (zero for same/valid/full/zero)."""
  for axis, ((lo, hi), mode) in enumerate(zip(widths, modes), start=1):
    if lo or hi:
      w = [(0, 0)] * x.ndim
      w[axis] = (lo, hi)
      x = jnp.pad(x, w, mode=_WRAP[mode]) if mode in _WRAP else jnp.pad(x, w)
  return x


def border_conv(x: jax.Array, kernel: jax.Array, modes: Sequence[str], strides: Sequence[int]) -> jax.Array:
  """``jaxborders.conv`` with one border mode per spatial axis (a single mode calls it directly)."""
  if len(set(modes)) == 1:
    return padding_ops.conv(x, kernel, modes[0], tuple(strides))
  rank = kernel.ndim - 2
  pads = [padding_ops.padding_for(m, k)[0] for m, k in zip(modes, kernel.shape[:rank])]
  explicit = [p if m in _WRAP else (0, 0) for p, m in zip(pads, modes)]
  implicit = [(0, 0) if m in _WRAP else p for p, m in zip(pads, modes)]
  x = _pad_axes(x, explicit, modes)
  dims = {2: ("NHWC", "HWIO", "NHWC"), 3: ("NDHWC", "DHWIO", "NDHWC")}[rank]
  return lax.conv_general_dilated(x, kernel, tuple(strides), implicit, dimension_numbers=dims)


def _blur_pads(size: int, mode: str) -> tuple[int, int]:
  return (0, 0) if mode == "valid" else filters.blur_padding(size, common.blur_pad_mode(mode))


def border_blur_pool(x: jax.Array, aa: AntiAlias, strides: Sequence[int], modes: Sequence[str]) -> jax.Array:
  """BlurPool whose padding follows each axis's border mode (``common.blur_pad_mode``; none for ``valid``)."""
  pad_modes = {common.blur_pad_mode(m) for m in modes if m != "valid"}
  if len(pad_modes) == 1 and "valid" not in modes:
    return filters.blur_pool(x, aa.size, tuple(strides), aa.kind, pad_modes.pop())
  # Mixed or unpadded axes: the same shift-and-add as filters.blur_pool, one axis at a time.
  taps = filters.filter_taps(aa.kind, aa.size)
  for axis, (s, mode) in enumerate(zip(strides, modes), start=1):
    pad_mode = common.blur_pad_mode(mode)
    x = _pad_axes(x, [(0, 0)] * (axis - 1) + [_blur_pads(aa.size, mode)],
                  ["zero"] * (axis - 1) + ["zero" if pad_mode == "full" else pad_mode])
    n_out = (x.shape[axis] - aa.size) // s + 1
    x = sum(lax.slice_in_dim(x, t, t + (n_out - 1) * s + 1, stride=s, axis=axis) * jnp.asarray(tap, x.dtype)
            for t, tap in enumerate(taps))
  return x


def border_max_pool(x: jax.Array, window: Sequence[int], strides: Sequence[int], pads: Sequence[int],
                    modes: Sequence[str]) -> jax.Array:
  """Max pool padding with -inf (PyTorch), except on ``circular`` axes, which wrap."""
  wrap = [(p, p) if m == "circular" else (0, 0) for p, m in zip(pads, modes)]
  x = _pad_axes(x, wrap, modes)
  pads = [0 if m == "circular" else p for p, m in zip(pads, modes)]
  return filters.max_pool(x, tuple(window), tuple(strides), tuple(pads))


def aps_down(x: jax.Array, aa: AntiAlias, strides: Sequence[int], index: jax.Array | None = None):
  """Circular pad to a multiple of the stride, optional circular blur, then APS. Returns ``(y, index)``."""
  x = aps_ops.pad_to_multiple(x, tuple(strides))
  if aa.size > 1:
    x = filters.blur_pool(x, aa.size, 1, "binomial", "circular")
  return aps_ops.aps_pool(x, tuple(strides), aa.norm, index)


def shift_crop(x: jax.Array, offsets: Sequence[int]) -> jax.Array:
  """Zero-pads axis ``i`` by ``offsets[i]`` on both sides if positive, crops ``-offsets[i]`` at its start if
  negative (``valid``: the caller then cuts the end to the main branch's size)."""
  x = x[(slice(None), *(slice(-c, None) if c < 0 else slice(None) for c in offsets))]
  return _pad_axes(x, [(c, c) if c > 0 else (0, 0) for c in offsets], ["zero"] * len(offsets))


def _shortcut_offsets(modes: Sequence[str], offset: int) -> list[int]:
  return [offset if m == "full" else (-offset if m == "valid" else 0) for m in modes]


# ----------------------------------------------------------------------------------------------------------------
# Size arithmetic (mirrors the network; gives min_input_size without tracing).
# ----------------------------------------------------------------------------------------------------------------


def _valid_blur_step(size: int, stride: int) -> common.SizeStep:
  return lambda n: (n - size) // stride + 1 if n >= size else None


def _blur_step(size: int, stride: int, mode: str) -> common.SizeStep:
  return _valid_blur_step(size, stride) if mode == "valid" else common.blur_step(size, stride,
                                                                                   common.blur_pad_mode(mode))


class ResNet(nn.Module):
  """ResNet v1 (torchvision layout) with a border mode and optional anti-aliasing; see the module docstring.

  Call: ``model.apply(variables, x, train=False)`` with ``x`` (N, H, W, C) (2D) or (N, T, H, W, C) (3D) returns
  logits (N, num_classes) in float32; ``return_features=True`` returns ``(logits, features)`` with
  ``features`` = {'stem', 'stage1'..'stage4', 'pre_logits'}. Train with ``mutable=['batch_stats']``.

  Attributes:
    block: ``'basic'`` (ResNet-18/34) or ``'bottleneck'`` (ResNet-50/101/152).
    stage_sizes: blocks per stage.
    num_classes: classifier outputs.
    conv_mode: border mode, one of ``jaxborders.MODES``.
    antialias: ``None``, ``'blur:<kind>:<size>'`` or ``'aps[:norm[:blur]]'`` (``common.parse_antialias``).
    dtype: compute dtype (parameters stay float32).
    rank: 2 (images) or 3 (video, Hara et al.; see ``resnet3d``).
    temporal_mode: 3D only: border mode of the time axis (None: ``'same'`` if ``conv_mode == 'full'``, the
      spatial-only F-Conv, else ``conv_mode``). ``'full'`` is CWB's temporal F-Conv (stem stride 2 in time).
  """

  block: str = "basic"
  stage_sizes: Sequence[int] = (2, 2, 2, 2)
  num_classes: int = 1000
  conv_mode: str = "same"
  antialias: Any = None
  dtype: Dtype = jnp.float32
  rank: int = 2
  temporal_mode: str | None = None
  width: int = 64  # channels of the stem and stage 1 (stages: width·(1, 2, 4, 8)); 64 = torchvision

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
    super().__post_init__()

  # -- configuration per axis ---------------------------------------------------------------------------------

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
    """(window, stride, padding) of the stem MaxPool: k3 s2 p1, CWB's k2 s2 p0 for 2D full, no pad for valid."""
    if self.rank == 2 and self.conv_mode == "full":
      return (2, 2), (2, 2), (0, 0)
    return ((3,) * self.rank, (2,) * self.rank, tuple(0 if m == "valid" else 1 for m in self.axis_modes))

  # -- sizes ----------------------------------------------------------------------------------------------------

  def _axis_steps(self, axis: int) -> list[list[common.SizeStep]]:
    """Size steps along one axis, grouped per named feature (stem, stage1..4) — the main branch's ops."""
    aa = parse_antialias(self.antialias)
    mode = self.axis_modes[axis]
    conv = functools.partial(common.conv_step, mode=mode)
    window, pstride, ppad = (v[axis] for v in self.stem_pool())
    s = self.stem_strides[axis]
    if aa.method == "none":
      stem = [conv(7, s), common.pool_step(window, pstride, ppad)]
    elif aa.method == "blur":
      stem = [conv(7, s), common.pool_step(2, 1), _blur_step(aa.size, pstride, mode)]
    else:
      stem = [conv(7, 1), common.aps_step(s, aa.size), common.pool_step(window, 1, ppad),
              common.aps_step(pstride, aa.size)]
    groups = [stem]
    for stage, n_blocks in enumerate(self.stage_sizes):
      steps = []
      for b in range(n_blocks):
        st = 2 if stage > 0 and b == 0 else 1
        down = []
        if st > 1 and aa.method == "blur":
          down = [_blur_step(aa.size, st, mode)]
        elif st > 1 and aa.method == "aps":
          down = [common.aps_step(st, aa.size)]
        s_conv = st if aa.method == "none" else 1
        if self.block == "basic":
          steps += [conv(3, s_conv), *down, conv(3, 1)]
        else:
          steps += [conv(3, s_conv), *down]
      groups.append(steps)
    return groups

  def _axis_sizes(self, n: int, axis: int) -> list[int] | None:
    sizes = []
    for steps in self._axis_steps(axis):
      n = common.run_steps(n, steps) if steps else n
      if n is None:
        return None
      sizes.append(n)
    return sizes

  def min_input_size(self) -> tuple[int, ...]:
    """Smallest spatial shape ((T,) H, W) this network can process (``__call__`` raises below it).

    >>> from jaxborders.models import get_model
    >>> get_model('resnet18', conv_mode='valid').min_input_size()
    (435, 435)
    """
    return tuple(common.min_length([s for g in self._axis_steps(a) for s in g]) for a in range(self.rank))

  def feature_sizes(self, spatial: Sequence[int]) -> dict[str, tuple[int, ...]]:
    """Spatial shape of each named feature map for an input of spatial shape ``spatial`` (no tracing).

    >>> from jaxborders.models import get_model
    >>> get_model('resnet50', conv_mode='full').feature_sizes((224, 224))
    {'stem': (57, 57), 'stage1': (63, 63), 'stage2': (39, 39), 'stage3': (31, 31), 'stage4': (21, 21)}
    """
    per_axis = [self._axis_sizes(n, a) for a, n in enumerate(spatial)]
    if any(p is None for p in per_axis):
      raise ValueError(f"input spatial size {tuple(spatial)} is smaller than the minimum {self.min_input_size()}.")
    return {name: tuple(p[i] for p in per_axis) for i, name in enumerate(FEATURE_NAMES[:5])}

  def example_input_shape(self, batch: int = 2) -> tuple[int, ...]:
    """A small valid channels-last input shape (each dim: the minimum, made even for APS)."""
    return (batch, *(m + m % 2 for m in self.min_input_size()), 3)

  # -- network --------------------------------------------------------------------------------------------------

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, return_features: bool = False):
    name = f"resnet{'3d' if self.rank == 3 else ''}({self.block}, {tuple(self.stage_sizes)})"
    common.check_input_size(name, x.shape, self.min_input_size())
    aa = parse_antialias(self.antialias)
    modes = self.axis_modes
    features = {}
    x = x.astype(self.dtype)

    # Stem: the 7×7's mode padding is torchvision's 3 (same-size modes), CWB's 6 (full) or 0 (valid).
    s = self.stem_strides
    x = Conv(self.width, 7, s if aa.method != "aps" else 1, modes=modes, dtype=self.dtype, name="conv1")(x)
    if aa.method == "aps":
      x, _ = aps_down(x, aa, s)
    x = nn.relu(_bn(train, self.dtype, "bn1")(x))
    window, pstride, ppad = self.stem_pool()
    if aa.method == "none":
      x = border_max_pool(x, window, pstride, ppad, modes)
    elif aa.method == "blur":
      x = border_max_pool(x, (2,) * self.rank, (1,) * self.rank, (0,) * self.rank, modes)
      x = border_blur_pool(x, aa, pstride, modes)
    else:
      x = border_max_pool(x, window, (1,) * self.rank, ppad, modes)
      x, _ = aps_down(x, aa, pstride)
    features["stem"] = x

    block = BasicBlock if self.block == "basic" else Bottleneck
    expansion = 1 if self.block == "basic" else 4
    in_features = self.width
    widths = tuple(self.width * w // STAGE_WIDTHS[0] for w in STAGE_WIDTHS)
    for stage, (n_blocks, width) in enumerate(zip(self.stage_sizes, widths)):
      for b in range(n_blocks):
        stride = 2 if stage > 0 and b == 0 else 1
        projection = stride > 1 or in_features != width * expansion
        x = block(width, (stride,) * self.rank, projection, modes, aa, self.dtype,
                  name=f"layer{stage + 1}_{b}")(x, train)
        in_features = width * expansion
      features[f"stage{stage + 1}"] = x

    x = jnp.mean(x, axis=tuple(range(1, self.rank + 1)))
    features["pre_logits"] = x
    logits = nn.Dense(self.num_classes, dtype=self.dtype, kernel_init=dense_init, name="fc")(x)
    logits = logits.astype(jnp.float32)
    return (logits, features) if return_features else logits


def _bn(train: bool, dtype: Dtype, name: str) -> nn.BatchNorm:
  # PyTorch BatchNorm: momentum 0.1 on the new value == flax momentum 0.9 on the old one; eps 1e-5.
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=dtype, name=name)


class BasicBlock(nn.Module):
  """ResNet BasicBlock (two 3×3 convs) with border-mode shortcuts and optional BlurPool / APS downsampling."""

  features: int
  strides: tuple[int, ...]
  projection: bool
  modes: tuple[str, ...]
  aa: AntiAlias
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    ident, proj = SHORTCUT_OFFSET["basic"]
    down = any(s > 1 for s in self.strides)
    conv = functools.partial(Conv, modes=self.modes, dtype=self.dtype)
    plain = self.aa.method == "none" or not down
    y = conv(self.features, 3, self.strides if plain else 1, name="conv1")(x)
    index = None
    if down and self.aa.method == "aps":
      y, index = aps_down(y, self.aa, self.strides)
    y = nn.relu(_bn(train, self.dtype, "bn1")(y))
    if down and self.aa.method == "blur":
      y = border_blur_pool(y, self.aa, self.strides, self.modes)
    y = conv(self.features, 3, 1, name="conv2")(y)
    y = _bn(train, self.dtype, "bn2")(y)
    sc = _shortcut(x, self, proj if self.projection else ident, index, train)
    return nn.relu(y + _match(sc, y))


class Bottleneck(nn.Module):
  """ResNet v1.5 Bottleneck (1×1, 3×3 with the stride, 1×1 ×4) with border-mode shortcuts and optional
  BlurPool / APS downsampling."""

  features: int
  strides: tuple[int, ...]
  projection: bool
  modes: tuple[str, ...]
  aa: AntiAlias
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    ident, proj = SHORTCUT_OFFSET["bottleneck"]
    down = any(s > 1 for s in self.strides)
    conv = functools.partial(Conv, modes=self.modes, dtype=self.dtype)
    plain = self.aa.method == "none" or not down
    y = conv(self.features, 1, 1, name="conv1")(x)
    y = nn.relu(_bn(train, self.dtype, "bn1")(y))
    y = conv(self.features, 3, self.strides if plain else 1, name="conv2")(y)
    index = None
    if down and self.aa.method == "aps":
      y, index = aps_down(y, self.aa, self.strides)
    y = nn.relu(_bn(train, self.dtype, "bn2")(y))
    if down and self.aa.method == "blur":
      y = border_blur_pool(y, self.aa, self.strides, self.modes)
    y = conv(self.features * 4, 1, 1, name="conv3")(y)
    y = _bn(train, self.dtype, "bn3")(y)
    sc = _shortcut(x, self, proj if self.projection else ident, index, train)
    return nn.relu(y + _match(sc, y))


def _shortcut(x: jax.Array, block: nn.Module, offset: int, index: jax.Array | None, train: bool) -> jax.Array:
  """Identity or projection shortcut: pad (full) / crop (valid) by ``offset``, downsample like the main branch
  (strided 1×1, BlurPool, or APS with the main branch's index), 1×1 conv + BN for a projection."""
  x = shift_crop(x, _shortcut_offsets(block.modes, offset))
  if not block.projection:
    return x
  down = any(s > 1 for s in block.strides)
  strides = block.strides
  if down and block.aa.method == "blur":
    x = border_blur_pool(x, block.aa, block.strides, block.modes)
    strides = 1
  elif down and block.aa.method == "aps":
    x, _ = aps_down(x, block.aa, block.strides, index)
    strides = 1
  out = block.features * (4 if isinstance(block, Bottleneck) else 1)
  x = Conv(out, 1, strides, modes=block.modes, dtype=block.dtype, name="downsample_conv")(x)
  return _bn(train, block.dtype, "downsample_bn")(x)


def _match(sc: jax.Array, y: jax.Array) -> jax.Array:
  """Cuts the shortcut's end to the main branch's size (only ``valid`` crops leave extra rows)."""
  if sc.shape == y.shape:
    return sc
  if any(a < b for a, b in zip(sc.shape[1:-1], y.shape[1:-1])):
    raise AssertionError(f"shortcut {sc.shape} smaller than main branch {y.shape}")  # a bug, not bad input
  return sc[(slice(None), *(slice(0, n) for n in y.shape[1:-1]))]


class Conv(nn.Module):
  """Bias-free conv with one border mode per spatial axis (``kernel``: (*k, C_in, C_out), torchvision init)."""

  features: int
  kernel_size: int | Sequence[int]
  strides: int | Sequence[int] = 1
  modes: tuple[str, ...] = ("same", "same")
  dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    rank = len(self.modes)
    ks = (self.kernel_size,) * rank if isinstance(self.kernel_size, int) else tuple(self.kernel_size)
    ss = (self.strides,) * rank if isinstance(self.strides, int) else tuple(self.strides)
    kernel = self.param("kernel", conv_init, (*ks, x.shape[-1], self.features), jnp.float32)
    x, kernel = nn.dtypes.promote_dtype(x, kernel, dtype=self.dtype)
    return border_conv(x, kernel, self.modes, ss)


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
            dtype: Dtype = jnp.float32, width: int = 64) -> ResNet:
    return ResNet(block=block, stage_sizes=stages, num_classes=num_classes, conv_mode=conv_mode,
                  antialias=antialias, dtype=dtype, width=width)

  build.__name__ = f"resnet{depth}"
  build.__doc__ = (f"ResNet-{depth} ({block} blocks {stages}); ``same`` = torchvision, ``full`` = CWB F-Conv "
                   f"(see ``jaxborders.models.resnet``).")
  return register_model(f"resnet{depth}")(build)


resnet18 = _make(18)
resnet34 = _make(34)
resnet50 = _make(50)
resnet101 = _make(101)
resnet152 = _make(152)

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "Conv", "resnet18", "resnet34", "resnet50", "resnet101",
           "resnet152", "border_conv", "border_blur_pool", "border_max_pool", "aps_down", "FEATURE_NAMES"]
