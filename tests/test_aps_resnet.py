"""APS ResNet-18 as its authors place it (Chaman & Dokmanic, CVPR 2021; achaman2/truly_shift_invariant_cnns,
models/aps_models/resnet.py and apspool.py): an independent restatement of the official forward pass, written
here with plain jax.lax ops, must give the model's logits; exact invariance to every circular shift; the
polyphase tie order and the blur-then-pad order on odd maps."""

from __future__ import annotations

import numpy as np
import jax
import jax.numpy as jnp
import pytest
from jax import lax

from jaxborders.models import get_model
from jaxborders.nn import downsampler

HIGHEST = lax.Precision.HIGHEST


def _random_variables(model, shape, seed=0):
  rng = np.random.default_rng(seed)
  shapes = jax.eval_shape(lambda x: model.init(jax.random.key(0), x), jax.ShapeDtypeStruct(shape, jnp.float32))

  def fill(path, s):
    name = path[-1].key
    if name == "var":
      return jnp.asarray(rng.uniform(0.5, 1.5, s.shape), jnp.float32)
    if name in ("scale",):
      return jnp.asarray(rng.uniform(0.75, 1.25, s.shape), jnp.float32)
    if name in ("mean", "bias"):
      return jnp.asarray(rng.normal(0, 0.1, s.shape), jnp.float32)
    return jnp.asarray(rng.normal(0, np.sqrt(2.0 / np.prod(s.shape[:-1])), s.shape), jnp.float32)

  return jax.tree_util.tree_map_with_path(fill, shapes)


# --- the official forward pass, restated (eval mode, NHWC, filter size 1, l2 criterion) -----------------------

def _conv(x, kernel, stride=1):
  """Official conv3x3 / conv7x7: circular pad (k-1)/2, then an unpadded conv; conv1x1: no pad."""
  p = (kernel.shape[0] - 1) // 2
  x = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="wrap")
  return lax.conv_general_dilated(x, kernel, (stride, stride), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                  precision=HIGHEST)


def _bn(x, params, stats):
  return (x - stats["mean"]) / jnp.sqrt(stats["var"] + 1e-5) * params["scale"] + params["bias"]


def _aps(x, index=None):
  """Official aps_pad (odd dims padded circularly at the end), permute_polyphase order, argmax of the l2 norms."""
  x = jnp.pad(x, ((0, 0), (0, x.shape[1] % 2), (0, x.shape[2] % 2), (0, 0)), mode="wrap")
  comps = jnp.stack([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], axis=1)
  if index is None:
    index = jnp.argmax(jnp.sqrt(jnp.sum(comps ** 2, axis=(2, 3, 4))), axis=1)
  return comps[jnp.arange(x.shape[0]), index], index


def _max_pool_2x2_s1_after_circular_pad_01(x):
  x = jnp.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)), mode="wrap")
  return lax.reduce_window(x, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 1, 1, 1), "VALID")


def official_resnet18(variables, x, pool_only=False):
  p, s = variables["params"], variables["batch_stats"]
  x = jax.nn.relu(_bn(_conv(x, p["conv1"]["kernel"], 2 if pool_only else 1), p["bn1"], s["bn1"]))
  if not pool_only:
    x, _ = _aps(x)
  x, _ = _aps(_max_pool_2x2_s1_after_circular_pad_01(x))
  for stage in range(1, 5):
    for b in range(2):
      bp, bs = p[f"layer{stage}_{b}"], s[f"layer{stage}_{b}"]
      out = jax.nn.relu(_bn(_conv(x, bp["conv1"]["kernel"]), bp["bn1"], bs["bn1"]))
      index = None
      if stage > 1 and b == 0:
        out, index = _aps(out)  # after conv1's BN + ReLU
      out = _bn(_conv(out, bp["conv2"]["kernel"]), bp["bn2"], bs["bn2"])
      identity = x
      if "downsample_conv" in bp:
        if index is not None:
          identity, _ = _aps(x, index)  # the main branch's polyphase index
        identity = _bn(_conv(identity, bp["downsample_conv"]["kernel"]), bp["downsample_bn"], bs["downsample_bn"])
      x = jax.nn.relu(out + identity)
  return jnp.mean(x, axis=(1, 2)) @ p["fc"]["kernel"] + p["fc"]["bias"]


def _both(model, variables, xs, pool_only):
  return jax.jit(lambda v, xs: (model.apply(v, xs), official_resnet18(v, xs, pool_only)))(variables, xs)


def test_aps_resnet18_is_the_official_placement_and_invariant_to_every_circular_shift():
  # One compile: the model and the restated official forward on all 256 circular shifts of a 16×16 input, plus
  # one shift that fills with zeros instead of wrapping (which must change the output: the check can fail).
  n = 16
  x = np.random.default_rng(2).standard_normal((1, n, n, 3)).astype(np.float32)
  zero_filled = np.pad(x[:, :-3, :-5], ((0, 0), (3, 0), (5, 0), (0, 0)))
  xs = jnp.asarray(np.concatenate([np.roll(x, (i, j), axis=(1, 2)) for i in range(n) for j in range(n)]
                                  + [zero_filled]))
  model = get_model("resnet18", conv_mode="circular", antialias="aps", num_classes=4, width=8)
  ours, theirs = (np.asarray(o) for o in _both(model, _random_variables(model, x.shape), xs, False))
  np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)  # the official placement
  scale = np.abs(ours[0]).max()
  assert np.abs(ours[:-1] - ours[:1]).max() / scale < 1e-5  # every circular shift: float rounding only
  assert np.abs(ours[-1] - ours[0]).max() / scale > 1e-2


@pytest.mark.slow
def test_aps_resnet18_pool_only_is_the_official_placement():
  model = get_model("resnet18", conv_mode="circular", antialias="aps", num_classes=5, width=8, pool_only=True)
  xs = jnp.asarray(np.random.default_rng(1).standard_normal((2, 35, 33, 3)), jnp.float32)  # odd maps on the way
  ours, theirs = _both(model, _random_variables(model, xs.shape), xs, True)
  np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=2e-4, atol=2e-4)


def test_ties_keep_the_first_component_in_the_official_order():
  # Components (1, 0) and (0, 1) have the same norm; the official order (0,0), (1,0), (0,1), (1,1) keeps (1, 0).
  x = jnp.zeros((1, 4, 4, 1)).at[0, 1, 0, 0].set(3.0).at[0, 0, 1, 0].set(-3.0)
  y, index = downsampler("aps", 2, "circular").apply({}, x)
  assert int(index[0]) == 1
  np.testing.assert_array_equal(np.asarray(y), np.asarray(x[:, 1::2, 0::2]))
  # All four equal (a constant map): the first, (0, 0).
  _, index = downsampler("aps", 2, "circular").apply({}, jnp.ones((1, 4, 4, 1)))
  assert int(index[0]) == 0


def test_odd_maps_are_blurred_at_their_size_then_padded_to_even():
  x = np.random.default_rng(3).standard_normal((1, 5, 7, 2)).astype(np.float32)
  taps = np.array([1.0, 2.0, 1.0]) / 4
  padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="wrap")  # the official circular blur pad (1, 1)
  blurred = sum(taps[i] * taps[j] * padded[:, i:i + 5, j:j + 7] for i in range(3) for j in range(3))
  even = np.pad(blurred, ((0, 0), (0, 1), (0, 1), (0, 0)), mode="wrap")  # aps_pad, after the blur
  comps = [even[:, 0::2, 0::2], even[:, 1::2, 0::2], even[:, 0::2, 1::2], even[:, 1::2, 1::2]]
  expected = comps[int(np.argmax([np.sum(c ** 2) for c in comps]))]
  y, _ = downsampler("aps:l2:3", 2, "circular").apply({}, jnp.asarray(x))
  np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-6)
  # Padding first (the previous order) blurs a different map: the test can tell the two apart.
  pad_first = np.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)), mode="wrap")
  assert not np.allclose(np.asarray(y), np.asarray(downsampler("aps:l2:3", 2, "circular").apply(
      {}, jnp.asarray(pad_first))[0]), atol=1e-3)
