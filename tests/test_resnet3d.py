"""3D ResNets (Hara et al.; CWB spatial-only and temporal F-Conv): logits equal a PyTorch re-statement of
F-Conv variants, parameter counts, map sizes, the per-axis BlurPool, every mode × antialias combination."""

from __future__ import annotations

import numpy as np
import pytest

import jax
import jax.numpy as jnp

from jaxborders import convert
from jaxborders.models import get_model, intermediate_shapes, list_models
from jaxborders.nn import border_blur_pool
from jaxborders.ops.filters import blur_pool

torch = pytest.importorskip("torch")
from torch import nn as tnn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

MODES = ("same", "full", "circular", "valid", "reflect", "replicate")


# Hara's 3D ResNet (kenshohara/3D-ResNets-PyTorch models/resnet.py, shortcut B) with CWB's F-Conv pads
# (resnet_fconv.py: spatial-only; resnet_fconv_tem.py: temporal), written from docs/models.md.
class TorchBasic3d(tnn.Module):
  expansion = 1

  def __init__(self, inplanes, planes, stride, downsample, pads):
    super().__init__()
    self.conv1 = tnn.Conv3d(inplanes, planes, 3, stride, pads["conv"], bias=False)
    self.bn1 = tnn.BatchNorm3d(planes)
    self.conv2 = tnn.Conv3d(planes, planes, 3, 1, pads["conv"], bias=False)
    self.bn2 = tnn.BatchNorm3d(planes)
    self.downsample, self.pads = downsample, pads

  def forward(self, x):
    out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
    if self.downsample is not None:
      identity = self.downsample(_pad3(x, self.pads["down"]))
    else:
      identity = _pad3(x, self.pads["ident"])
    return F.relu(out + identity)


class TorchBottleneck3d(tnn.Module):
  expansion = 4

  def __init__(self, inplanes, planes, stride, downsample, pads):
    super().__init__()
    self.conv1 = tnn.Conv3d(inplanes, planes, 1, bias=False)
    self.bn1 = tnn.BatchNorm3d(planes)
    self.conv2 = tnn.Conv3d(planes, planes, 3, stride, pads["conv"], bias=False)
    self.bn2 = tnn.BatchNorm3d(planes)
    self.conv3 = tnn.Conv3d(planes, planes * 4, 1, bias=False)
    self.bn3 = tnn.BatchNorm3d(planes * 4)
    self.downsample, self.pads = downsample, pads

  def forward(self, x):
    out = F.relu(self.bn1(self.conv1(x)))
    out = F.relu(self.bn2(self.conv2(out)))
    out = self.bn3(self.conv3(out))
    xp = _pad3(x, self.pads["bneck"])
    return F.relu(out + (self.downsample(xp) if self.downsample is not None else xp))


def _pad3(x, p):  # p = (T, H, W) per side
  return F.pad(x, [p[2], p[2], p[1], p[1], p[0], p[0]])


class TorchResNet3d(tnn.Module):

  def __init__(self, block, layers, variant="same", num_classes=7):
    super().__init__()
    pads = {"same": dict(conv=(1, 1, 1), ident=(0, 0, 0), down=(0, 0, 0), bneck=(0, 0, 0), stem=(3, 3, 3)),
            "full": dict(conv=(1, 2, 2), ident=(0, 2, 2), down=(0, 3, 3), bneck=(0, 1, 1), stem=(3, 6, 6)),
            "temporal": dict(conv=(2, 2, 2), ident=(2, 2, 2), down=(3, 3, 3), bneck=(1, 1, 1), stem=(6, 6, 6))}[variant]
    stem_stride = (2, 2, 2) if variant == "temporal" else (1, 2, 2)
    self.conv1 = tnn.Conv3d(3, 64, 7, stem_stride, pads["stem"], bias=False)
    self.bn1 = tnn.BatchNorm3d(64)
    self.maxpool = tnn.MaxPool3d(3, 2, 1)
    self.inplanes = 64
    for i, (planes, n) in enumerate(zip((64, 128, 256, 512), layers)):
      stride = 1 if i == 0 else 2
      downsample = None
      if stride != 1 or self.inplanes != planes * block.expansion:
        downsample = tnn.Sequential(tnn.Conv3d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                                    tnn.BatchNorm3d(planes * block.expansion))
      blocks = [block(self.inplanes, planes, stride, downsample, pads)]
      self.inplanes = planes * block.expansion
      blocks += [block(self.inplanes, planes, 1, None, pads) for _ in range(1, n)]
      setattr(self, f"layer{i + 1}", tnn.Sequential(*blocks))
    self.fc = tnn.Linear(512 * block.expansion, num_classes)

  def forward(self, x):
    x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
    x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
    return self.fc(torch.flatten(F.adaptive_avg_pool3d(x, 1), 1))


def _randomize(model, seed=0):
  g = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for m in model.modules():
      if isinstance(m, tnn.BatchNorm3d):
        m.weight.copy_(torch.rand(m.weight.shape, generator=g) * 0.5 + 0.75)
        m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
        m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
        m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
  return model.eval()


def variable_shapes(model, shape):
  return jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x), jax.ShapeDtypeStruct(shape, jnp.float32))


def test_registered_names_and_parameter_counts():
  assert {"resnet3d_18", "resnet3d_34", "resnet3d_50"} <= set(list_models("resnet3d*"))
  for depth, block, layers in [(18, TorchBasic3d, (2, 2, 2, 2)), (50, TorchBottleneck3d, (3, 4, 6, 3))]:
    expected = sum(p.numel() for p in TorchResNet3d(block, layers, num_classes=400).parameters())
    for kw in ({}, {"conv_mode": "full"}, {"conv_mode": "full", "temporal_mode": "full"}):
      v = variable_shapes(get_model(f"resnet3d_{depth}", **kw), (1, 4, 16, 16, 3))
      assert sum(x.size for x in jax.tree_util.tree_leaves(v["params"])) == expected


@pytest.mark.parametrize("variant", ["full", "temporal"])
def test_logits_match_torch_fconv(variant):
  tm = _randomize(TorchResNet3d(TorchBasic3d, (2, 2, 2, 2), variant))
  model = get_model("resnet3d_18", conv_mode="full", temporal_mode="full" if variant == "temporal" else None,
                    num_classes=7)
  x = np.random.default_rng(0).standard_normal((1, 3, 4, 24, 24)).astype(np.float32)
  with torch.no_grad():
    ref = tm(torch.from_numpy(x)).numpy()
  variables = convert.from_torch_state_dict(model, tm.state_dict())
  out = np.asarray(jax.jit(model.apply)(variables, jnp.asarray(x.transpose(0, 2, 3, 4, 1))))
  assert np.abs(out - ref).max() / np.abs(ref).max() < 1e-4


def test_feature_map_sizes_16x112x112():
  x = jax.ShapeDtypeStruct((1, 16, 112, 112, 3), jnp.float32)
  expected = {None: (1, 4, 4), "spatial": (1, 17, 17), "temporal": (14, 17, 17)}
  for variant, final in expected.items():
    kw = {} if variant is None else {"conv_mode": "full", "temporal_mode": "full" if variant == "temporal" else None}
    model = get_model("resnet3d_18", **kw)
    assert intermediate_shapes(model, x.shape)["stage4"][1:4] == final


def test_bad_temporal_mode_and_small_clip():
  with pytest.raises(ValueError, match="temporal_mode='wrap' is not supported; accepted values: 'valid'"):
    get_model("resnet3d_18", temporal_mode="wrap")
  model = get_model("resnet3d_18", antialias="blur:triangle:3")
  t, h, w = model.min_input_size()
  with pytest.raises(ValueError, match=rf"smaller than the minimum \({t}, {h}, {w}\)"):
    variable_shapes(model, (1, t - 1, h, w, 3))


def test_per_axis_blur_pool_is_separable_blur_pool():
  # The 3D spatial-only F-Conv blurs time with AA's reflect pad and space with CWB's full zero pad; the mixed
  # path must equal 1D blur_pool applied per axis.
  x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 6, 7, 8, 3)), jnp.float32)
  got = border_blur_pool(x, 4, "binomial", (2, 2, 2), ("same", "full", "full"))
  ref = x
  for axis, pad_mode in ((1, "reflect"), (2, "full"), (3, "full")):
    moved = jnp.moveaxis(ref, axis, 1)
    shape = moved.shape
    y = blur_pool(moved.reshape(shape[0], shape[1], -1), 4, 2, "binomial", pad_mode)
    ref = jnp.moveaxis(y.reshape(shape[0], y.shape[1], *shape[2:]), 1, axis)
  np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)
  uniform = border_blur_pool(x, 4, "binomial", (1, 2, 2), ("full", "full", "full"))
  np.testing.assert_allclose(uniform, blur_pool(x, 4, (1, 2, 2), "binomial", "full"), rtol=1e-6, atol=1e-6)


_COMBOS = [(m, a, t) for m in MODES for a in (None, "blur:triangle:3", "aps") for t in ((None, "full") if m == "full"
                                                                                       else (None,))]
_QUICK = {("full", None, None), ("full", "blur:triangle:3", None), ("full", "aps", "full"), ("circular", "aps", None),
          ("valid", None, None), ("reflect", "blur:triangle:3", None)}


# The quick run traces one block per stage (the first block of a stage is the only one with a projection or a
# stride, and stage 1's is an identity block: every block kind); the slow run traces the full ResNet3D-18.
@pytest.mark.parametrize("combos, stage_sizes", [
    pytest.param([c for c in _COMBOS if c in _QUICK], (1, 1, 1, 1), id="quick"),
    pytest.param(_COMBOS, None, id="all", marks=pytest.mark.slow)])
def test_combinations_trace_forward_backward(combos, stage_sizes):
  for mode, antialias, temporal in combos:
    model = get_model("resnet3d_18", conv_mode=mode, antialias=antialias, temporal_mode=temporal, num_classes=3)
    model = model.clone(stage_sizes=stage_sizes) if stage_sizes else model
    shape = (1, *(max(m, 12) for m in model.min_input_size()), 3)
    v = variable_shapes(model, shape)

    def loss(p, bs, x):
      y, upd = model.apply({"params": p, "batch_stats": bs}, x, train=True, mutable=["batch_stats"])
      return jnp.sum(y), upd

    grads, upd = jax.eval_shape(jax.grad(loss, has_aux=True), v["params"], v["batch_stats"],
                                jax.ShapeDtypeStruct(shape, jnp.float32))
    assert jax.tree_util.tree_structure(grads) == jax.tree_util.tree_structure(v["params"]), (mode, antialias)


def test_spatial_fconv_blur_and_aps_run_under_jit():
  models = [get_model("resnet3d_18", conv_mode="full", antialias=a, num_classes=3).clone(stage_sizes=(1, 1, 1, 1))
            for a in ("blur:binomial:3", "aps")]  # one block per stage: every path, half the compile
  shape = (1, 10, 12, 12, 3)  # the time axis blurs with AA's reflect pad (min 10 frames); space is full
  vs = [jax.tree_util.tree_map(lambda s: jnp.full(s.shape, 0.01, s.dtype), variable_shapes(m, shape)) for m in models]
  x = jnp.linspace(-1, 1, np.prod(shape)).reshape(shape)

  @jax.jit
  def step(vs):
    out = []
    for m, v in zip(models, vs):
      def loss(p):
        y, _ = m.apply({"params": p, "batch_stats": v["batch_stats"]}, x, train=True, mutable=["batch_stats"])
        return jnp.sum(y ** 2)
      out.append(jax.grad(loss)(v["params"]))
    return out

  for grads in step(vs):
    assert all(bool(jnp.isfinite(g).all()) for g in jax.tree_util.tree_leaves(grads))
