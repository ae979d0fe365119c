"""PyTorch <-> Flax conversion: logits equal PyTorch references, exact round trips, strict key checks, files.

The PyTorch references are written here from docs/models.md, docs/antialiasing.md (torchvision ResNet v1 naming; F-Conv per CWB; BlurPool
per antialiased-cnns), independently of the JAX code: random weights and random BatchNorm statistics, eval mode.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from torch import nn as tnn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from jaxborders import convert  # noqa: E402
from jaxborders.models import get_model  # noqa: E402

# ---------------------------------------------------------------------------------------------------------------
# PyTorch references (torchvision module names; `full` = CWB F-Conv, `taps` = AA BlurPool; docs/models.md, docs/antialiasing.md).
# ---------------------------------------------------------------------------------------------------------------


class TorchBlurPool(tnn.Module):
  """antialiased-cnns BlurPool: fixed depthwise filter ``filt`` (C, 1, f, f); reflect pad ((f-1)//2, f//2), or
  CWB's F-Conv blur: zero pad f-1 per side."""

  def __init__(self, channels: int, taps, stride: int = 2, full: bool = False):
    super().__init__()
    a = torch.tensor(taps, dtype=torch.float64)
    f = a[:, None] * a[None, :]
    self.register_buffer("filt", (f / f.sum())[None, None].repeat(channels, 1, 1, 1).float())
    n = len(taps)
    self.pad = tnn.ZeroPad2d(n - 1) if full else tnn.ReflectionPad2d(((n - 1) // 2, n // 2, (n - 1) // 2, n // 2))
    self.stride = stride

  def forward(self, x):
    return F.conv2d(self.pad(x), self.filt, stride=self.stride, groups=x.shape[1])


class TorchBasic(tnn.Module):
  expansion = 1

  def __init__(self, inplanes, planes, stride, downsample, full, taps):
    super().__init__()
    p = 2 if full else 1  # CWB: every 3x3 pads 2
    blur = taps is not None and stride != 1
    self.conv1 = tnn.Conv2d(inplanes, planes, 3, 1 if blur else stride, p, bias=False)
    self.bn1 = tnn.BatchNorm2d(planes)
    conv2 = tnn.Conv2d(planes, planes, 3, 1, p, bias=False)
    self.conv2 = tnn.Sequential(TorchBlurPool(planes, taps, stride, full), conv2) if blur else conv2
    self.bn2 = tnn.BatchNorm2d(planes)
    self.downsample, self.full = downsample, full

  def forward(self, x):
    out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
    if self.downsample is not None:
      identity = self.downsample(F.pad(x, [3] * 4) if self.full else x)  # CWB: pad 3 before the 1x1 s2
    else:
      identity = F.pad(x, [2] * 4) if self.full else x  # CWB: identity padded by 2
    return F.relu(out + identity)


class TorchBottleneck(tnn.Module):
  expansion = 4

  def __init__(self, inplanes, planes, stride, downsample, full, taps):
    super().__init__()
    p = 2 if full else 1
    blur = taps is not None and stride != 1
    self.conv1 = tnn.Conv2d(inplanes, planes, 1, bias=False)
    self.bn1 = tnn.BatchNorm2d(planes)
    self.conv2 = tnn.Conv2d(planes, planes, 3, 1 if blur else stride, p, bias=False)  # v1.5: stride in the 3x3
    self.bn2 = tnn.BatchNorm2d(planes)
    conv3 = tnn.Conv2d(planes, planes * 4, 1, bias=False)
    self.conv3 = tnn.Sequential(TorchBlurPool(planes, taps, stride, full), conv3) if blur else conv3
    self.bn3 = tnn.BatchNorm2d(planes * 4)
    self.downsample, self.full = downsample, full

  def forward(self, x):
    out = F.relu(self.bn1(self.conv1(x)))
    out = F.relu(self.bn2(self.conv2(out)))
    out = self.bn3(self.conv3(out))
    xp = F.pad(x, [1] * 4) if self.full else x  # CWB: pad 1 on identity and projection
    identity = self.downsample(xp) if self.downsample is not None else xp
    return F.relu(out + identity)


class TorchResNet(tnn.Module):

  def __init__(self, block, layers, num_classes=10, full=False, taps=None):
    super().__init__()
    self.inplanes = 64
    self.conv1 = tnn.Conv2d(3, 64, 7, 2, 6 if full else 3, bias=False)  # CWB: stem padding 6
    self.bn1 = tnn.BatchNorm2d(64)
    if taps is not None:  # AA: MaxPool k2 s1 -> BlurPool s2
      self.maxpool = tnn.Sequential(tnn.MaxPool2d(2, 1), TorchBlurPool(64, taps, 2, full))
    else:
      self.maxpool = tnn.MaxPool2d(2, 2, 0) if full else tnn.MaxPool2d(3, 2, 1)  # CWB: k2 s2 p0
    self.full, self.taps = full, taps
    self.layer1 = self._make_layer(block, 64, layers[0], 1)
    self.layer2 = self._make_layer(block, 128, layers[1], 2)
    self.layer3 = self._make_layer(block, 256, layers[2], 2)
    self.layer4 = self._make_layer(block, 512, layers[3], 2)
    self.fc = tnn.Linear(512 * block.expansion, num_classes)

  def _make_layer(self, block, planes, blocks, stride):
    downsample = None
    if stride != 1 or self.inplanes != planes * block.expansion:
      blur = self.taps is not None and stride != 1
      mods = [TorchBlurPool(self.inplanes, self.taps, stride, self.full)] if blur else []
      mods += [tnn.Conv2d(self.inplanes, planes * block.expansion, 1, 1 if blur else stride, bias=False),
               tnn.BatchNorm2d(planes * block.expansion)]
      downsample = tnn.Sequential(*mods)
    layers = [block(self.inplanes, planes, stride, downsample, self.full, self.taps)]
    self.inplanes = planes * block.expansion
    layers += [block(self.inplanes, planes, 1, None, self.full, self.taps) for _ in range(1, blocks)]
    return tnn.Sequential(*layers)

  def forward(self, x):
    x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
    x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
    return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def randomize(model: tnn.Module, seed: int = 0) -> tnn.Module:
  """Random weights and BatchNorm statistics (so that BN conversion is exercised), eval mode."""
  g = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for m in model.modules():
      if isinstance(m, tnn.BatchNorm2d):
        m.weight.copy_(torch.rand(m.weight.shape, generator=g) * 0.5 + 0.75)
        m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
        m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
        m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
      elif isinstance(m, (tnn.Conv2d, tnn.Linear)):
        fan_in = m.weight[0].numel()
        m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
        if m.bias is not None:
          m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
  return model.eval()


_BLOCKS = {18: (TorchBasic, (2, 2, 2, 2)), 50: (TorchBottleneck, (3, 4, 6, 3))}


def torch_resnet(depth: int, full: bool = False, taps=None, seed: int = 0) -> tnn.Module:
  block, layers = _BLOCKS[depth]
  return randomize(TorchResNet(block, layers, 10, full, taps), seed)


def compare(torch_model, jax_model, size: int = 64, seed: int = 1) -> float:
  """Max relative logit error (max |jax - torch| / max |torch|) on a random batch, eval mode."""
  x = np.random.default_rng(seed).standard_normal((2, 3, size, size)).astype(np.float32)
  with torch.no_grad():
    ref = torch_model(torch.from_numpy(x)).numpy()
  variables = convert.from_torch_state_dict(jax_model, torch_model.state_dict())
  out = np.asarray(jax.jit(jax_model.apply)(variables, jnp.asarray(x.transpose(0, 2, 3, 1))))  # eval mode
  return float(np.abs(out - ref).max() / np.abs(ref).max())


# ---------------------------------------------------------------------------------------------------------------
# Logits equal the PyTorch references.
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth,mode", [(18, "same"), (50, "same"), (18, "full")])
def test_logits_match_torch(depth, mode):
  # same = torchvision ResNet v1 layout; full = an independent re-statement of docs/models.md (CWB resnet_fconv).
  err = compare(torch_resnet(depth, full=mode == "full"), get_model(f"resnet{depth}", conv_mode=mode, num_classes=10))
  assert err < 1e-4, err


@pytest.mark.parametrize("mode", ["same", "full"])
def test_blurpool_logits_match_torch(mode):
  # same + blur = antialiased-cnns ResNet (pool_only); full + blur = CWB models_fconv_lpf. AA naming (filt buffers,
  # shifted Sequential indices) is detected from the keys.
  tm = torch_resnet(18, full=mode == "full", taps=[1, 2, 1])
  assert "layer2.0.conv2.0.filt" in tm.state_dict() and "layer2.0.downsample.2.running_var" in tm.state_dict()
  err = compare(tm, get_model("resnet18", conv_mode=mode, antialias="blur:binomial:3", num_classes=10))
  assert err < 1e-4, err


def test_resnet50_blur_naming_round_trip():
  tm = torch_resnet(50, taps=[1, 3, 3, 1])
  model = get_model("resnet50", antialias="blur:binomial:4", num_classes=10)
  sd = tm.state_dict()
  out = convert.to_torch_state_dict(model, convert.from_torch_state_dict(model, sd))
  assert set(out) == set(sd)
  for k in sd:
    assert torch.equal(out[k], sd[k]), k
  tm.load_state_dict(out, strict=True)


# ---------------------------------------------------------------------------------------------------------------
# Round trips are exact.
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [18, 50])
def test_round_trip_torch_flax_torch(depth):
  tm = torch_resnet(depth)
  sd = tm.state_dict()
  model = get_model(f"resnet{depth}", num_classes=10)
  variables = convert.from_torch_state_dict(model, sd, naming="torchvision")
  assert set(variables) == {"params", "batch_stats"}
  assert variables["params"]["conv1"]["kernel"].shape == (7, 7, 3, 64)
  assert variables["params"]["fc"]["kernel"].shape == (512 * (1 if depth == 18 else 4), 10)
  out = convert.to_torch_state_dict(model, variables)
  assert set(out) == set(sd)
  for k in sd:
    assert out[k].dtype == sd[k].dtype and torch.equal(out[k], sd[k]), k
  # ... and back: Flax -> torch -> Flax is bit-exact too.
  again = convert.from_torch_state_dict(model, out)
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), again, variables)


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_blurpool_buffers_follow_the_model_width(name):
  # antialiased-cnns' BlurPool keeps a (channels, 1, k, k) ``filt`` buffer in front of a conv (``<branch>.0.filt``
  # before ``<branch>.1.weight``): its channel count is that conv's input channel count, narrow ResNets included.
  model = get_model(name, num_classes=3, width=8, antialias="blur:binomial:5")
  shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros(model.example_input_shape(1)))
  variables = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
  sd = convert.to_torch_state_dict(model, variables, naming="antialiased")
  filters = {k: tuple(v.shape) for k, v in sd.items() if k.endswith(".filt")}
  assert len(filters) == 7 and filters.pop("maxpool.1.filt") == (8, 1, 5, 5)  # the stem's 8 channels
  for key, shape in filters.items():
    following_conv = sd[key.replace(".0.filt", ".1.weight")]
    assert shape == (following_conv.shape[1], 1, 5, 5), key
  np.testing.assert_allclose(sd["layer2.0.downsample.0.filt"][0, 0].numpy().sum(), 1.0, rtol=1e-6)


def test_old_torchvision_files_without_num_batches_tracked_load():
  tm = torch_resnet(18)
  sd = {k: v for k, v in tm.state_dict().items() if not k.endswith("num_batches_tracked")}
  model = get_model("resnet18", num_classes=10)
  out = convert.to_torch_state_dict(model, convert.from_torch_state_dict(model, sd), num_batches_tracked=None)
  assert set(out) == set(sd)


# ---------------------------------------------------------------------------------------------------------------
# Strict key checks.
# ---------------------------------------------------------------------------------------------------------------


def test_mismatched_state_dict_names_every_bad_key():
  model = get_model("resnet18", num_classes=10)
  sd = dict(torch_resnet(18).state_dict())
  del sd["layer1.0.conv1.weight"]
  del sd["bn1.running_var"]
  sd["layer9.0.conv1.weight"] = torch.zeros(1)
  sd["fc.weight"] = torch.zeros(7, 512)
  with pytest.raises(convert.StateDictMismatchError) as info:
    convert.from_torch_state_dict(model, sd)
  msg = str(info.value)
  for key in ("layer1.0.conv1.weight", "bn1.running_var", "layer9.0.conv1.weight", "fc.weight (expected (10, 512)"):
    assert key in msg, msg
  assert info.value.missing == ["bn1.running_var", "layer1.0.conv1.weight"] or set(info.value.missing) == {
      "bn1.running_var", "layer1.0.conv1.weight"}
  assert isinstance(info.value, ValueError) and "nothing was loaded" in msg


def test_wrong_architecture_and_bad_naming():
  sd = torch_resnet(18).state_dict()
  with pytest.raises(ValueError, match="missing keys: .*layer1.0.conv3.weight"):
    convert.from_torch_state_dict(get_model("resnet50", num_classes=10), sd)
  with pytest.raises(ValueError, match="naming='timm' is not supported; accepted values: 'auto', 'torchvision'"):
    convert.from_torch_state_dict(get_model("resnet18", num_classes=10), sd, naming="timm")
  # torchvision weights into an AA model with AA naming: the shifted names are missing.
  with pytest.raises(ValueError, match="layer2.0.conv2.1.weight"):
    convert.from_torch_state_dict(get_model("resnet18", num_classes=10, antialias="blur"), sd, naming="antialiased")


def test_torchvision_weights_load_into_blurpool_model():
  # Fine-tuning pretrained torchvision weights with BlurPool (AA's recipe): same parameters, auto naming.
  sd = torch_resnet(18).state_dict()
  model = get_model("resnet18", num_classes=10, antialias="blur:triangle:3")
  variables = convert.from_torch_state_dict(model, sd)
  out = convert.to_torch_state_dict(model, variables, naming="torchvision")
  assert all(torch.equal(out[k], sd[k]) for k in sd)


# ---------------------------------------------------------------------------------------------------------------
# Files.
# ---------------------------------------------------------------------------------------------------------------


def test_load_torch_save_and_safetensors_files(tmp_path):
  from safetensors.torch import save_file

  tm = torch_resnet(18)
  sd = tm.state_dict()
  model = get_model("resnet18", num_classes=10)
  pth = tmp_path / "rn18.pth"
  torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": 3}, pth)  # AA / DataParallel style
  st = tmp_path / "rn18.safetensors"
  save_file(dict(sd), str(st))
  ref = convert.from_torch_state_dict(model, sd)
  for path in (pth, st, str(st)):
    loaded = convert.load_torch_file(path)
    assert set(loaded) == set(sd)
    variables = convert.from_torch_state_dict(model, path)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), variables, ref)
  with pytest.raises(FileNotFoundError, match="no such weight file"):
    convert.load_torch_file(tmp_path / "nope.pth")
  torch.save([1, 2], tmp_path / "list.pth")
  with pytest.raises(ValueError, match="does not hold a state_dict"):
    convert.load_torch_file(tmp_path / "list.pth")


@pytest.mark.parametrize("name,keys", [
    ("vgg11", ["features.0.weight", "features.18.bias", "classifier.0.weight", "classifier.6.bias"]),
    ("vgg11_bn", ["features.1.running_var", "features.1.num_batches_tracked", "classifier.3.weight"]),
    ("densenet121", ["features.conv0.weight", "features.norm0.running_mean", "features.denseblock1.denselayer1.conv1"
                     ".weight", "features.transition3.norm.weight", "features.norm5.bias", "classifier.weight"])])
def test_vgg_densenet_torchvision_names_round_trip(name, keys):
  narrow = {"vgg": dict(width=8, classifier_width=16),
            "den": dict(growth_rate=4, num_init_features=8, block_config=(1, 1, 1, 1))}[name[:3]]
  model = get_model(name, num_classes=10).clone(**narrow)  # names do not depend on widths; keeps the test cheap
  shapes = jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x),
                          jax.ShapeDtypeStruct(model.example_input_shape(1), jnp.float32))
  rng = np.random.default_rng(0)
  variables = jax.tree_util.tree_map(lambda s: jnp.asarray(rng.standard_normal(s.shape), jnp.float32), shapes)
  sd = convert.to_torch_state_dict(model, variables)
  assert set(keys) <= set(sd), sorted(sd)[:8]
  again = convert.from_torch_state_dict(model, sd)
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), again, variables)
  if name == "vgg11":  # antialiased-cnns' VGG: a BlurPool (with a filt buffer) after every MaxPool shifts indices
    aa = convert.to_torch_state_dict(model, variables, naming="antialiased")
    assert {"features.4.weight", "features.22.bias"} <= set(aa) and "features.18.weight" not in aa
    aa["features.3.filt"] = torch.zeros(8, 1, 3, 3)  # detected as antialiased-cnns naming, then ignored
    again = convert.from_torch_state_dict(model, aa)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), again, variables)


# ---------------------------------------------------------------------------------------------------------------
# Bad input: dtypes, types, truncated files, model kwargs.
# ---------------------------------------------------------------------------------------------------------------


def _toy_state_dict():
  model = get_model("resnet18", num_classes=3, width=8)
  shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros(model.example_input_shape(1)))
  variables = jax.tree.map(lambda s: np.ones(s.shape, np.float32), shapes)
  return model, {k: v.numpy() for k, v in convert.to_torch_state_dict(model, variables).items()}


def test_weights_that_are_not_real_floats_are_refused():
  model, sd = _toy_state_dict()
  for dtype, what in [(np.complex64, "complex dtype complex64"), (np.int64, "integer dtype int64"),
                      (bool, "bool dtype bool")]:
    bad = dict(sd, **{"layer1.0.conv1.weight": sd["layer1.0.conv1.weight"].astype(dtype)})
    with pytest.raises(ValueError, match=rf"state_dict\['layer1.0.conv1.weight'\] has {what}"):
      convert.from_torch_state_dict(model, bad)
  bad = dict(sd, **{"fc.bias": torch.zeros(3, dtype=torch.complex64)})  # torch tensors are checked too
  with pytest.raises(ValueError, match=r"state_dict\['fc.bias'\] has complex dtype complex64"):
    convert.from_torch_state_dict(model, bad)
  ok = dict(sd, **{k: v.astype(np.int64) for k, v in sd.items() if k.endswith("num_batches_tracked")})
  convert.from_torch_state_dict(model, ok)  # integer counters are not weights: accepted
  with pytest.raises(ValueError, match="state_dict must be a mapping .* got list"):
    convert.from_torch_state_dict(model, list(sd.items()))


def test_truncated_files_and_malicious_pickles(tmp_path):
  import pickle

  from safetensors.numpy import save_file

  _, sd = _toy_state_dict()
  save_file({k: np.ascontiguousarray(v) for k, v in sd.items() if v.ndim}, str(tmp_path / "w.safetensors"))
  torch.save({k: torch.from_numpy(v) for k, v in sd.items()}, tmp_path / "w.pth")
  for name in ("w.safetensors", "w.pth"):
    data = (tmp_path / name).read_bytes()
    (tmp_path / f"cut_{name}").write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match=f"cut_{name} is not a readable"):
      convert.load_torch_file(tmp_path / f"cut_{name}")

  class Evil:
    def __reduce__(self):
      return (print, ("pwned",))

  (tmp_path / "evil.pth").write_bytes(pickle.dumps({"w": Evil()}, protocol=2))
  with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
    convert.load_torch_file(tmp_path / "evil.pth")


def test_get_model_unknown_argument_names_model_and_arguments():
  with pytest.raises(ValueError, match="model 'resnet18' does not take 'bogus'; accepted arguments: conv_mode, "
                                       "antialias, num_classes, dtype, width"):
    get_model("resnet18", bogus=1)
