"""DenseNet-121: torchvision parameter count, F-Conv growth and concatenation alignment, BlurPool / APS placement,
a PyTorch re-statement, errors."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxborders.models import get_model, intermediate_shapes, intermediates
from jaxborders.models.densenet import align_center
from jaxborders.nn import APSDownsample as APSPool
from jaxborders.nn import BlurDownsample as BlurPool

TINY = dict(growth_rate=4, num_init_features=8, block_config=(2, 3))


def _features(model, x, variables=None):
  if variables is None:
    variables = jax.jit(lambda x: model.init(jax.random.key(0), x, train=False))(x)
  return jax.jit(lambda v, x: (model.apply(v, x, train=False), intermediates(model, v, x)))(variables, x)


def _feature_shapes(model, size: int) -> dict[str, tuple[int, ...]]:
  return intermediate_shapes(model, (1, size, size, 3))


def test_parameter_count_matches_torchvision():
  model = get_model("densenet121")
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 64, 64, 3)), train=False))
  assert sum(int(np.prod(p.shape)) for p in jax.tree.leaves(shapes["params"])) == 7_978_856
  layer = shapes["params"]["denseblock3"]["denselayer24"]
  assert layer["conv1"]["kernel"].shape == (1, 1, 256 + 23 * 32, 128)
  assert layer["conv2"]["kernel"].shape == (3, 3, 128, 32)
  assert shapes["params"]["transition3"]["conv"]["kernel"].shape == (1, 1, 1024, 512)


def test_same_and_full_map_sizes_at_224():
  same = _feature_shapes(get_model("densenet121"), 224)
  names = ("stem", "block1", "transition1_pool", "block2", "transition2_pool", "block3", "transition3_pool", "block4")
  assert [same[k][1] for k in names] == [56, 56, 28, 28, 14, 14, 7, 7]
  assert same["block4"][-1] == 1024
  # F-Conv: stem (224 + 12 - 7)//2 + 1 = 115, MaxPool k2 s2 -> 57; every dense layer adds 2.
  full = _feature_shapes(get_model("densenet121", conv_mode="full"), 224)
  assert [full[k][1] for k in names] == [57, 69, 34, 58, 29, 77, 38, 70]


def test_full_mode_zero_pads_earlier_features_by_the_growth():
  model = get_model("densenet121", conv_mode="full", **TINY)
  x = jax.random.normal(jax.random.key(1), (2, 20, 20, 3))
  _, feats = _features(model, x)
  stem, block1 = feats["stem"], feats["block1"]
  assert block1.shape[1] == stem.shape[1] + 2 * 2  # two layers, +2 each
  # The stem's channels sit centred in the grown block output, with a zero ring of 1 per layer.
  np.testing.assert_array_equal(block1[..., :8], jnp.pad(stem, ((0, 0), (2, 2), (2, 2), (0, 0))))
  # The first layer's features are padded by 1 (one later layer), the last layer's are not padded.
  assert float(jnp.abs(block1[:, 0, :, 8:12]).max()) == 0.0
  assert float(jnp.abs(block1[:, 0, :, 12:16]).max()) > 0.0


def test_valid_mode_crops_earlier_features():
  model = get_model("densenet121", conv_mode="valid", **TINY)
  size = model.min_input_size()[0]
  x = jax.random.normal(jax.random.key(1), (1, size + 8, size + 8, 3))
  _, feats = _features(model, x)
  stem, block1 = feats["stem"], feats["block1"]
  assert block1.shape[1] == stem.shape[1] - 4
  np.testing.assert_array_equal(block1[..., :8], stem[:, 2:-2, 2:-2])


def test_align_center_pads_and_crops():
  x = jnp.arange(16.0).reshape(1, 4, 4, 1)
  np.testing.assert_array_equal(align_center(x, (6, 6))[0, 1:5, 1:5], x[0])
  np.testing.assert_array_equal(align_center(x, (2, 2))[0, :, :, 0], [[5.0, 6.0], [9.0, 10.0]])
  with pytest.raises(ValueError, match="odd difference"):
    align_center(x, (5, 5))


def _count_calls(model, x) -> dict[type, int]:
  counts = {BlurPool: 0, APSPool: 0}

  def interceptor(next_fun, args, kwargs, context):
    if context.method_name == "__call__" and type(context.module) in counts:
      counts[type(context.module)] += 1
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(interceptor):
    jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))
  return counts


def test_blurpool_and_aps_placement():
  x = jnp.zeros((1, 64, 64, 3))
  blur = get_model("densenet121", antialias="blur:triangle:3", growth_rate=4, num_init_features=8)
  assert _count_calls(blur, x) == {BlurPool: 4, APSPool: 0}  # stem + 3 transitions (AvgPools replaced)
  aps = get_model("densenet121", antialias="aps", growth_rate=4, num_init_features=8)
  assert _count_calls(aps, x) == {BlurPool: 0, APSPool: 5}  # stride-1 stem conv, stem pool, 3 transitions
  plain = _feature_shapes(get_model("densenet121", growth_rate=4, num_init_features=8), 64)
  assert list(plain) == ["stem", "block1", "transition1_pool", "block2", "transition2_pool", "block3",
                         "transition3_pool", "block4", "pre_logits"]  # network order
  for model in (blur, aps):
    shapes = _feature_shapes(model, 64)
    assert all(shapes[k] == plain[k] for k in plain), shapes


def test_aps_circular_is_exactly_shift_invariant():
  model = get_model("densenet121", conv_mode="circular", antialias="aps", **TINY)
  x = jax.random.normal(jax.random.key(0), (2, 24, 24, 3))
  variables = jax.jit(lambda x: model.init(jax.random.key(1), x, train=False))(x)
  apply = jax.jit(lambda x: model.apply(variables, x, train=False))
  base = apply(x)
  for shift in [(1, 0), (3, 5)]:
    np.testing.assert_allclose(apply(jnp.roll(x, shift, axis=(1, 2))), base, rtol=1e-5, atol=1e-5)


def _torch_densenet(torch, growth: int, blocks: tuple[int, ...], init: int, classes: int):
  """An independent PyTorch statement of torchvision's DenseNet (narrowed)."""
  tnn = torch.nn

  class Layer(tnn.Module):
    def __init__(self, c_in):
      super().__init__()
      self.norm1, self.conv1 = tnn.BatchNorm2d(c_in), tnn.Conv2d(c_in, 4 * growth, 1, bias=False)
      self.norm2, self.conv2 = tnn.BatchNorm2d(4 * growth), tnn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x):
      new = self.conv2(torch.relu(self.norm2(self.conv1(torch.relu(self.norm1(x))))))
      return torch.cat([x, new], 1)

  features = tnn.Sequential()
  features.add_module("conv0", tnn.Conv2d(3, init, 7, 2, 3, bias=False))
  features.add_module("norm0", tnn.BatchNorm2d(init))
  features.add_module("relu0", tnn.ReLU())
  features.add_module("pool0", tnn.MaxPool2d(3, 2, 1))
  c = init
  for b, n in enumerate(blocks, start=1):
    block = tnn.Sequential()
    for i in range(n):
      block.add_module(f"denselayer{i + 1}", Layer(c + i * growth))
    features.add_module(f"denseblock{b}", block)
    c += n * growth
    if b != len(blocks):
      trans = tnn.Sequential()
      trans.add_module("norm", tnn.BatchNorm2d(c))
      trans.add_module("relu", tnn.ReLU())
      trans.add_module("conv", tnn.Conv2d(c, c // 2, 1, bias=False))
      trans.add_module("pool", tnn.AvgPool2d(2, 2))
      features.add_module(f"transition{b}", trans)
      c //= 2
  features.add_module("norm5", tnn.BatchNorm2d(c))

  class Net(tnn.Module):
    def __init__(self):
      super().__init__()
      self.features, self.classifier = features, tnn.Linear(c, classes)

    def forward(self, x):
      return self.classifier(torch.relu(self.features(x)).mean((2, 3)))

  return Net()


def test_equals_pytorch_restatement_with_torchvision_names():
  torch = pytest.importorskip("torch")
  torch.manual_seed(0)
  ref = _torch_densenet(torch, 4, (2, 3), 8, 5).eval()
  with torch.no_grad():
    for m in ref.modules():
      if isinstance(m, torch.nn.BatchNorm2d):
        m.running_mean.uniform_(-0.5, 0.5)
        m.running_var.uniform_(0.5, 2.0)
        m.weight.uniform_(0.5, 1.5)
        m.bias.uniform_(-0.5, 0.5)
  params, stats = {}, {}
  for key, value in ref.state_dict().items():
    path = key.split(".")
    if path[0] == "features":
      path = path[1:]
    *modules, leaf = path
    value = value.numpy()
    if leaf == "num_batches_tracked":
      continue
    if leaf in ("running_mean", "running_var"):
      tree, leaf = stats, {"running_mean": "mean", "running_var": "var"}[leaf]
    else:
      tree = params
      if leaf == "weight" and value.ndim == 4:
        leaf, value = "kernel", value.transpose(2, 3, 1, 0)
      elif leaf == "weight" and value.ndim == 2:
        leaf, value = "kernel", value.T
      elif leaf == "weight":
        leaf = "scale"
    for m in modules:
      tree = tree.setdefault(m, {})
    tree[leaf] = value
  model = get_model("densenet121", num_classes=5, **TINY)
  x = np.random.default_rng(0).normal(size=(2, 36, 36, 3)).astype(np.float32)
  init_shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.asarray(x), train=False))
  assert jax.tree.structure(init_shapes) == jax.tree.structure({"params": params, "batch_stats": stats})
  ours = jax.jit(lambda v, x: model.apply(v, x, train=False))({"params": params, "batch_stats": stats}, jnp.asarray(x))
  with torch.no_grad():
    expected = ref(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
  np.testing.assert_allclose(np.asarray(ours), expected, rtol=1e-4, atol=1e-5)


def test_errors_and_minimum_size():
  with pytest.raises(ValueError, match="conv_mode='zero' is not supported; accepted values"):
    get_model("densenet121", conv_mode="zero")
  with pytest.raises(ValueError, match="antialias='aps:l3'"):
    get_model("densenet121", antialias="aps:l3")
  with pytest.raises(ValueError, match="block_config"):
    get_model("densenet121", block_config=())
  model = get_model("densenet121", **TINY)
  assert model.min_input_size() == (5, 5)  # 5 -> stem 3 -> pool 2 -> transition 1
  out = jax.eval_shape(lambda: model.init_with_output(jax.random.key(0), jnp.zeros((1, 5, 5, 3)))[0])
  assert out.shape == (1, 1000)
  with pytest.raises(ValueError, match=r"smaller than the minimum \(5, 5\)"):
    model.init(jax.random.key(0), jnp.zeros((1, 4, 9, 3)), train=False)
  assert get_model("densenet121").min_input_size() == (29, 29)
