"""VGG: torchvision parameter counts, F-Conv growth, BlurPool / APS placement, a PyTorch re-statement, errors."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxborders.models import get_model, intermediate_shapes
from jaxborders.models.vgg import CONFIGS, adaptive_avg_pool, torch_layer_names
from jaxborders.nn import APSDownsample, BlurDownsample, blur_pad_mode

TINY = dict(width=8, classifier_width=16)


def _param_count(model, size: int = 32) -> int:
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, size, size, 3)), train=False))
  return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(shapes["params"]))


def _feature_shapes(model, size: int) -> dict[str, tuple[int, ...]]:
  return intermediate_shapes(model, (1, size, size, 3))


@pytest.mark.parametrize("name,count", [("vgg11", 132_863_336), ("vgg16", 138_357_544), ("vgg16_bn", 138_365_992),
                                        ("vgg13", 133_047_848), ("vgg19", 143_667_240), ("vgg19_bn", 143_678_248)])
def test_parameter_counts_match_torchvision(name, count):
  assert _param_count(get_model(name)) == count


def test_cifar_vgg13_parameters_and_defaults():
  model = get_model("vgg13_cifar")
  assert model.conv_mode == "circular" and model.num_classes == 10 and model.batch_norm
  convs = [v for v in CONFIGS[13] if v != "M"]
  expected = sum(9 * c_in * c_out + c_out + 2 * c_out for c_in, c_out in zip([3, *convs], convs)) + 512 * 10 + 10
  assert _param_count(model) == expected


def test_same_shapes_and_features():
  model = get_model("vgg16", **TINY)
  shapes = _feature_shapes(model, 64)
  assert [shapes[f"stage{i}"][1] for i in range(1, 6)] == [32, 16, 8, 4, 2]
  # Network order: torchvision's ReLU indices (conv index + 1), a stage after each pool, then pre_logits.
  expected, i, stage = [], 0, 1
  for v in CONFIGS[16]:
    expected.append(f"stage{stage}" if v == "M" else f"features_{i + 1}")
    stage, i = (stage + 1, i + 1) if v == "M" else (stage, i + 2)
  assert list(shapes) == expected + ["pre_logits"]
  assert shapes["pre_logits"] == (1, 16)
  out = jax.eval_shape(lambda: model.init_with_output(jax.random.key(0), jnp.zeros((3, 32, 32, 3)))[0])
  assert out.shape == (3, 1000)


def test_full_mode_grows_every_conv_by_two():
  # VGG16 at 224: stage sizes (224+4)/2 = 114, (114+4)/2 = 59, (59+6)//2 = 32, (32+6)//2 = 19, (19+6)//2 = 12.
  shapes = _feature_shapes(get_model("vgg16", conv_mode="full", **TINY), 224)
  assert [shapes[f"stage{i}"][1] for i in range(1, 6)] == [114, 59, 32, 19, 12]
  same = _feature_shapes(get_model("vgg16", **TINY), 224)
  assert same["stage5"][1] == 7
  valid = _feature_shapes(get_model("vgg11", conv_mode="valid", **TINY), 224)
  # vgg11 valid: 222/2 = 111, 109/2 = 54, 50/2 = 25, 21/2 = 10, 6/2 = 3
  assert [valid[f"stage{i}"][1] for i in range(1, 6)] == [111, 54, 25, 10, 3]


def _count_calls(model, x, kinds) -> dict[type, int]:
  counts = {k: 0 for k in kinds}

  def interceptor(next_fun, args, kwargs, context):
    if context.method_name == "__call__" and type(context.module) in counts:
      counts[type(context.module)] += 1
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(interceptor):
    jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))
  return counts


@pytest.mark.parametrize("depth", [11, 16])
def test_blurpool_replaces_every_maxpool(depth):
  x = jnp.zeros((1, 64, 64, 3))
  blur = get_model(f"vgg{depth}", antialias="blur:binomial:5", **TINY)
  kinds = [BlurDownsample, APSDownsample]
  assert _count_calls(blur, x, kinds) == {BlurDownsample: 5, APSDownsample: 0}
  aps = get_model(f"vgg{depth}", antialias="aps", **TINY)
  assert _count_calls(aps, x, kinds) == {BlurDownsample: 0, APSDownsample: 5}
  # MaxPool k2 s1 + BlurPool s2 keeps torchvision's stage sizes for even maps.
  plain, blurred = _feature_shapes(get_model(f"vgg{depth}", **TINY), 64), _feature_shapes(blur, 64)
  assert all(plain[f"stage{i}"] == blurred[f"stage{i}"] for i in range(1, 6))


def test_blur_pads_zero_full_under_fconv():
  model = get_model("vgg11", conv_mode="full", antialias="blur:triangle:3", **TINY)
  seen = []

  def interceptor(next_fun, args, kwargs, context):
    if isinstance(context.module, BlurDownsample):
      seen.append(blur_pad_mode(context.module.conv_mode))
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(interceptor):
    jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)), train=False))
  assert seen == ["full"] * 5


def test_aps_circular_cifar_vgg_is_exactly_shift_invariant():
  model = get_model("vgg13_cifar", antialias="aps", width=8)
  x = jax.random.normal(jax.random.key(0), (2, 32, 32, 3))
  variables = jax.jit(lambda x: model.init(jax.random.key(1), x, train=False))(x)
  apply = jax.jit(lambda x: model.apply(variables, x, train=False))
  base = apply(x)
  for shift in [(1, 0), (0, 3), (5, 7)]:
    np.testing.assert_allclose(apply(jnp.roll(x, shift, axis=(1, 2))), base, rtol=1e-5, atol=1e-5)


def test_adaptive_avg_pool_matches_torch():
  torch = pytest.importorskip("torch")
  x = np.random.default_rng(0).normal(size=(2, 11, 5, 3)).astype(np.float32)
  ours = adaptive_avg_pool(jnp.asarray(x), (7, 7))
  ref = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(x).permute(0, 3, 1, 2), (7, 7))
  np.testing.assert_allclose(np.asarray(ours), ref.permute(0, 2, 3, 1).numpy(), rtol=1e-6, atol=1e-6)


def _torch_vgg(torch, depth: int, batch_norm: bool, width: int, hidden: int, classes: int, padding: int):
  """An independent PyTorch statement of torchvision's VGG (narrowed), with 3×3 padding ``padding``."""
  tnn = torch.nn
  layers, c_in = [], 3
  for v in CONFIGS[depth]:
    if v == "M":
      layers.append(tnn.MaxPool2d(2, 2))
      continue
    c_out = v * width // 64
    layers.append(tnn.Conv2d(c_in, c_out, 3, padding=padding))
    if batch_norm:
      layers.append(tnn.BatchNorm2d(c_out))
    layers.append(tnn.ReLU())
    c_in = c_out

  class VGG(tnn.Module):
    def __init__(self):
      super().__init__()
      self.features = tnn.Sequential(*layers)
      self.avgpool = tnn.AdaptiveAvgPool2d((7, 7))
      self.classifier = tnn.Sequential(tnn.Linear(c_in * 49, hidden), tnn.ReLU(), tnn.Dropout(),
                                       tnn.Linear(hidden, hidden), tnn.ReLU(), tnn.Dropout(),
                                       tnn.Linear(hidden, classes))

    def forward(self, x):
      return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))

  return VGG()


@pytest.mark.parametrize("conv_mode,padding", [("same", 1), ("full", 2)])
def test_equals_pytorch_restatement_with_torchvision_names(conv_mode, padding):
  torch = pytest.importorskip("torch")
  torch.manual_seed(0)
  ref = _torch_vgg(torch, 11, True, 8, 16, 5, padding).eval()
  with torch.no_grad():  # non-trivial BN statistics
    for m in ref.modules():
      if isinstance(m, torch.nn.BatchNorm2d):
        m.running_mean.uniform_(-0.5, 0.5)
        m.running_var.uniform_(0.5, 2.0)
        m.weight.uniform_(0.5, 1.5)
        m.bias.uniform_(-0.5, 0.5)
  state = {k: v.numpy() for k, v in ref.state_dict().items()}
  params, stats = {}, {}
  for flax_name, torch_name in torch_layer_names(11, batch_norm=True).items():
    w = state[f"{torch_name}.weight"]
    if f"{torch_name}.running_mean" in state:
      params[flax_name] = {"scale": w, "bias": state[f"{torch_name}.bias"]}
      stats[flax_name] = {"mean": state[f"{torch_name}.running_mean"], "var": state[f"{torch_name}.running_var"]}
    elif w.ndim == 4:
      params[flax_name] = {"kernel": w.transpose(2, 3, 1, 0), "bias": state[f"{torch_name}.bias"]}
    else:
      params[flax_name] = {"kernel": w.T, "bias": state[f"{torch_name}.bias"]}
  assert len(state) == sum(len(p) for p in params.values()) + sum(len(s) for s in stats.values()) + len(stats)
  model = get_model("vgg11_bn", conv_mode=conv_mode, num_classes=5, **TINY)
  x = np.random.default_rng(0).normal(size=(2, 40, 40, 3)).astype(np.float32)
  ours = jax.jit(lambda v, x: model.apply(v, x, train=False))({"params": params, "batch_stats": stats}, jnp.asarray(x))
  with torch.no_grad():
    expected = ref(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
  np.testing.assert_allclose(np.asarray(ours), expected, rtol=1e-4, atol=1e-5)


def test_torch_layer_names_antialiased_layout():
  names = torch_layer_names(16, batch_norm=False, antialiased=True)
  # antialiased-cnns' vgg16: conv at 0, 2, [pool 4, blur 5], 6, 8, [9, 10], 11, ...
  assert names["features_0"] == "features.0" and names["features_5"] == "features.6"
  assert names["features_10"] == "features.12"
  assert names["classifier_6"] == "classifier.6"


def test_errors_name_the_argument_and_the_choices():
  with pytest.raises(ValueError, match=r"conv_mode='zero' is not supported; accepted values: 'valid', 'same'"):
    get_model("vgg11", conv_mode="zero")
  with pytest.raises(ValueError, match="antialias='blur:gauss:3'"):
    get_model("vgg11", antialias="blur:gauss:3")
  with pytest.raises(ValueError, match=r"depth=12 .* \[11, 13, 16, 19\]"):
    get_model("vgg11").clone(depth=12)
  with pytest.raises(ValueError, match="head='tiny'"):
    get_model("vgg11", head="tiny")
  model = get_model("vgg11", **TINY)
  with pytest.raises(ValueError, match=r"smaller than the minimum \(32, 32\)"):
    model.init(jax.random.key(0), jnp.zeros((1, 31, 40, 3)), train=False)
  assert get_model("vgg11", conv_mode="valid").min_input_size() == (150, 150)
  assert get_model("vgg11", antialias="blur").min_input_size() == (48, 48)  # the reflect pad needs 2 pixels
