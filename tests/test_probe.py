"""Position-information probe (Islam, Jia & Bruce, ICLR 2020): known answers, a naive Spearman, the model path."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxborders as jb
from jaxborders.models import get_model, intermediates

N, H, W, C = 48, 16, 16, 4  # one feature shape for every known-answer probe: the read-out compiles once


def naive_spearman(a, b):
  """Spearman per row from the definition: rank = 1 + #smaller + (#equal - 1) / 2, then Pearson of the ranks."""
  out = []
  for x, y in zip(a.reshape(len(a), -1), b.reshape(len(b), -1)):
    rx = np.array([1 + np.sum(x < v) + (np.sum(x == v) - 1) / 2 for v in x])
    ry = np.array([1 + np.sum(y < v) + (np.sum(y == v) - 1) / 2 for v in y])
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = np.sqrt(np.sum(rx * rx) * np.sum(ry * ry))
    out.append(np.sum(rx * ry) / denominator if denominator > 0 else 0.0)
  return np.array(out)


def mean_predictor_mae(pattern):
  """The MAE of predicting the pattern's mean everywhere, on the pixels a valid 3×3 read-out scores."""
  inner = pattern[1:-1, 1:-1].astype(np.float64)
  return float(np.mean(np.abs(inner - inner.mean())))


def test_patterns_are_the_papers_maps():
  maps = jb.position_patterns(5, 4)
  assert list(maps) == list(jb.PATTERNS)
  for name, m in maps.items():
    assert m.shape == (5, 4) and m.dtype == np.float32, name
    assert m.min() == 0.0 and m.max() == 1.0, name
  np.testing.assert_allclose(maps["horizontal"], np.tile(np.linspace(0, 1, 4), (5, 1)), atol=1e-7)
  np.testing.assert_allclose(maps["vertical"], np.tile(np.linspace(0, 1, 5)[:, None], (1, 4)), atol=1e-7)
  g = jb.position_patterns(9, 9, ("gaussian",))["gaussian"]
  assert g[4, 4] == 1.0 and np.allclose(g, g.T) and np.allclose(g, g[::-1])  # centred, symmetric
  stripes = jb.position_patterns(9, 9, ("horizontal_stripes", "vertical_stripes"))
  np.testing.assert_allclose(stripes["horizontal_stripes"], stripes["vertical_stripes"].T, atol=1e-7)
  assert np.ptp(stripes["horizontal_stripes"], axis=1).max() == 0  # horizontal bands: constant along a row


def test_spearman_matches_naive_restatement_with_ties():
  rng = np.random.default_rng(0)
  a = rng.integers(0, 4, (5, 3, 4)).astype(float)  # many ties
  b = rng.standard_normal((5, 3, 4))
  b[1] = np.round(b[1])
  a[2] = 7.0  # a constant prediction: no order, 0
  np.testing.assert_allclose(jb.spearman_correlation(a, b), naive_spearman(a, b), atol=1e-12)
  assert jb.spearman_correlation(a, b)[2] == 0.0
  np.testing.assert_allclose(jb.spearman_correlation(b, np.exp(b)), 1.0)  # invariant to monotone maps


@pytest.fixture(scope="module")
def noise():
  return jax.random.normal(jax.random.key(0), (N, H, W, C))


def test_coordinate_channel_encodes_position(noise):
  coordinate = jnp.broadcast_to(jnp.linspace(0.0, 1.0, W)[None, None, :, None], (N, H, W, 1))
  features = jnp.concatenate([coordinate, noise[..., 1:]], axis=-1)  # position + distractors
  result = jb.probe_position(features, "horizontal", key=jax.random.key(1))
  assert result["spearman"] > 0.99 and result["mae"] < 1e-3, result
  assert jb.probe_position(features, "horizontal", key=jax.random.key(1)) == result  # deterministic from key
  # A list of maps at different resolutions is resized and concatenated: the coordinate map still reads out.
  listed = jb.probe_position([features, noise[:, ::2, ::2]], "horizontal", key=jax.random.key(1), steps=300)
  assert listed["spearman"] > 0.99 and listed["mae"] < 1e-2, listed


def test_constant_and_circularly_invariant_features_encode_none(noise):
  pattern = jb.position_patterns(H, W, ("horizontal",))["horizontal"]
  constant = jb.probe_position(jnp.full((N, H, W, C), 3.0), pattern, key=jax.random.key(1))
  assert constant["spearman"] == 0.0  # a constant prediction has no order
  np.testing.assert_allclose(constant["mae"], mean_predictor_mae(pattern), rtol=1e-3)
  # A circular conv of i.i.d. noise: every location is distributed alike, so no read-out can find position.
  circular = jb.conv(noise, jax.random.normal(jax.random.key(2), (3, 3, C, C)), mode="circular")
  for name in ("horizontal", "vertical", "gaussian"):
    pattern = jb.position_patterns(H, W, (name,))[name]
    result = jb.probe_position(circular, pattern, key=jax.random.key(1))
    assert abs(result["spearman"]) < 0.15, (name, result)
    assert result["mae"] > 0.98 * mean_predictor_mae(pattern), (name, result)
    assert result["mae"] < 1.1 * mean_predictor_mae(pattern), (name, result)


def test_position_information_on_a_zoo_model_in_network_order():
  model = get_model("redgreen_net", conv_mode="same")
  images = jb.position_free_images(jax.random.key(0), 6, (8, 8, 3))
  variables = model.init(jax.random.key(1), images)
  result = jb.position_information(model, variables, images, key=jax.random.key(2), patterns=("horizontal",),
                                   steps=20)
  spatial = [k for k, v in intermediates(model, variables, images).items() if v.ndim == 4]
  assert list(result) == spatial and len(spatial) >= 2
  for layer in result.values():
    assert set(layer) == {"horizontal"} and set(layer["horizontal"]) == {"spearman", "mae"}
    assert all(np.isfinite(v) for v in layer["horizontal"].values())
  chosen = jb.position_information(model, variables, images, key=jax.random.key(2), patterns=("horizontal",),
                                   steps=20, layers=[spatial[-1], spatial[0]])
  assert list(chosen) == [spatial[0], spatial[-1]]  # network order, whatever order they were asked in
  assert chosen[spatial[0]] == result[spatial[0]]


class UserNet(nn.Module):
  """A user's module (no ``train`` argument) that records maps with Flax's own ``sow``."""

  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Conv(3, (3, 3))(x))
    self.sow("intermediates", "first", x)
    x = nn.Conv(3, (3, 3), strides=2)(x)
    self.sow("intermediates", "second", x)
    return x.mean(axis=(1, 2))


def test_position_information_on_a_user_module():
  images = jb.position_free_images(jax.random.key(0), 4, (8, 8, 1), kind="smooth_noise")
  variables = UserNet().init(jax.random.key(1), images)
  result = jb.position_information(UserNet(), variables, images, key=jax.random.key(2), patterns=("vertical",),
                                   steps=5, readout="linear")
  assert list(result) == ["first", "second"]


def test_position_free_images():
  key = jax.random.key(0)
  for kind in jb.IMAGE_KINDS:
    x = jb.position_free_images(key, 3, (5, 6, 2), kind)
    assert x.shape == (3, 5, 6, 2) and x.dtype == jnp.float32
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
  assert float(jb.position_free_images(key, 2, (3, 3, 1), "black").max()) == 0.0


def test_bad_input_names_argument_and_choices():
  f = jnp.zeros((4, 5, 5, 2))
  key = jax.random.key(0)
  with pytest.raises(ValueError, match="readout='mlp' is not supported; accepted values: 'conv3x3', 'linear'"):
    jb.probe_position(f, "horizontal", key=key, readout="mlp")
  with pytest.raises(ValueError, match="pattern=.*'diagonal'.*'horizontal', 'vertical', 'gaussian'"):
    jb.probe_position(f, "diagonal", key=key)
  with pytest.raises(ValueError, match="names=.*'horizontal', 'vertical'"):
    jb.position_patterns(4, 4, ("up",))
  with pytest.raises(ValueError, match="holdout must be a fraction"):
    jb.probe_position(f, "horizontal", key=key, holdout=1.0)
  with pytest.raises(ValueError, match="steps must be an int >= 1"):
    jb.probe_position(f, "horizontal", key=key, steps=0)
  with pytest.raises(ValueError, match="features must be an array"):
    jb.probe_position(jnp.zeros((4, 5, 5)), "horizontal", key=key)
  with pytest.raises(ValueError, match="same images"):
    jb.probe_position([f, jnp.zeros((3, 5, 5, 1))], "horizontal", key=key)
  with pytest.raises(ValueError, match="at least 2 images"):
    jb.probe_position(f[:1], "horizontal", key=key)
  with pytest.raises(ValueError, match="kind='gray' is not supported; accepted values: 'noise'"):
    jb.position_free_images(key, 2, (4, 4, 3), "gray")
  with pytest.raises(ValueError, match="key must be a jax.random key"):
    jb.probe_position(f, "horizontal", key=0)
  model = get_model("redgreen_net")
  images = jnp.zeros((2, 8, 8, 3))
  with pytest.raises(ValueError, match="layers=.*accepted layer names.*'relu1'"):
    jb.position_information(model, model.init(key, images), images, key=key, layers=["logits"])
