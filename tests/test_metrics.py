"""Metrics on models whose behaviour is known, against hand-computed values and NumPy brute force."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxborders as jb

RNG = np.random.default_rng(0)


def global_max(x):
  """Exactly shift invariant: the max is the same under any reordering of the positions."""
  return x.max(axis=(1, 2))


def row_parity(x):
  """Reads the absolute row of the brightest pixel (channel 0): logits one_hot(row % 2) (margin 1)."""
  flat = jnp.argmax(x[..., 0].reshape(x.shape[0], -1), axis=1)
  return jax.nn.one_hot((flat // x.shape[2]) % 2, 2)


def np_row_parity(x):
  flat = np.argmax(x[..., 0].reshape(x.shape[0], -1), axis=1)
  return np.eye(2)[(flat // x.shape[2]) % 2]


def bright_centre_images(n=6, size=10, channels=3):
  """Zero images with noise in [0, 1) in the central 2x2 region (rows and cols 4, 5) that every 6x6 crop at
  offsets in [0, 4] contains, one pixel there set to 5 in a random channel; the label is that channel."""
  images = np.zeros((n, size, size, channels), np.float32)
  images[:, 4:6, 4:6] = RNG.uniform(size=(n, 2, 2, channels))
  labels = RNG.integers(0, channels, size=n)
  rows, cols = RNG.integers(4, 6, size=n), RNG.integers(4, 6, size=n)
  images[np.arange(n), rows, cols, labels] = 5.0
  return jnp.asarray(images), jnp.asarray(labels, jnp.int32)


def single_pixel_images(n=8, size=10, low=3, high=7):
  """One bright pixel (channel 0) per image at a random position in [low, high) per dim, zeros elsewhere."""
  images = np.zeros((n, size, size, 1), np.float32)
  rows, cols = RNG.integers(low, high, size=n), RNG.integers(low, high, size=n)
  images[np.arange(n), rows, cols, 0] = 1.0
  return jnp.asarray(images), rows, cols


def test_accuracy_and_batching():
  images, labels = bright_centre_images()
  assert float(jb.accuracy(global_max, images, labels)) == 100.0
  wrong = (labels + 1) % 3
  assert float(jb.accuracy(global_max, images, wrong)) == 0.0
  mixed = labels.at[:2].set(wrong[:2])
  # batch_size 4 on 6 images pads the last batch; the padded copies must not count.
  assert float(jb.accuracy(global_max, images, mixed, batch_size=4)) == pytest.approx(100 * 4 / 6)


def test_invariant_model_scores_perfectly():
  images, labels = bright_centre_images()
  key = jax.random.key(0)
  assert float(jb.consistency(global_max, images, key, crop_size=6, max_offset=5, passes=3)) == 100.0
  assert float(jb.circular_consistency(global_max, images, key, max_shift=5, passes=3)) == 100.0
  assert float(jb.classification_variation(global_max, images, labels, 6, jb.diagonal_offsets(4))) == 0.0
  assert float(jb.classification_variation(global_max, images, labels, None, jb.shift_grid(2))) == 0.0
  per_offset, mean = jb.diagonal_shift_accuracy(global_max, images, labels, 6, range(5))
  assert per_offset.tolist() == [100.0] * 5 and float(mean) == 100.0
  assert jb.adversarial_shift_accuracy(global_max, images, labels, 6, [0, 1, 2]).tolist() == [100.0] * 3
  assert jb.adversarial_shift_accuracy(global_max, images, labels, None, [0, 2]).tolist() == [100.0] * 2


@pytest.mark.parametrize("batch_size", [None, 3])
def test_consistency_matches_numpy_brute_force(batch_size):
  images = jnp.asarray(RNG.normal(size=(7, 9, 9, 1)).astype(np.float32))  # the brightest pixel may be cropped out
  key = jax.random.key(42)
  got = float(jb.consistency(row_parity, images, key, crop_size=6, max_offset=4, passes=3, batch_size=batch_size))
  pairs = np.asarray(jb.random_offset_pairs(key, 7, 2, 0, 4, passes=3))
  x = np.asarray(images)
  same = []
  for p in range(3):
    for i in range(7):
      (h1, w1), (h2, w2) = pairs[p, i]
      a = np_row_parity(x[i:i + 1, h1:h1 + 6, w1:w1 + 6]).argmax()
      b = np_row_parity(x[i:i + 1, h2:h2 + 6, w2:w2 + 6]).argmax()
      same.append(a == b)
  assert got == pytest.approx(100 * np.mean(same), abs=1e-4)

  got = float(jb.circular_consistency(row_parity, images, key, max_shift=4, passes=2, batch_size=batch_size))
  pairs = np.asarray(jb.random_offset_pairs(key, 7, 2, -4, 4, passes=2))
  same = [np_row_parity(np.roll(x[i:i + 1], tuple(pairs[p, i, 0]), (1, 2))).argmax()
          == np_row_parity(np.roll(x[i:i + 1], tuple(pairs[p, i, 1]), (1, 2))).argmax()
          for p in range(2) for i in range(7)]
  assert got == pytest.approx(100 * np.mean(same), abs=1e-4)


def test_position_reading_model_is_near_chance():
  # Bright pixel inside every crop: the predicted parity flips exactly when the two row offsets differ in parity.
  images, _, _ = single_pixel_images(n=200, size=12, low=4, high=8)
  key = jax.random.key(1)
  crop = float(jb.consistency(row_parity, images, key, crop_size=8, max_offset=4, passes=2))
  pairs = np.asarray(jb.random_offset_pairs(key, 200, 2, 0, 4, passes=2))
  assert crop == pytest.approx(100 * np.mean((pairs[:, :, 0, 0] - pairs[:, :, 1, 0]) % 2 == 0), abs=1e-4)
  assert 35 < crop < 65
  circ = float(jb.circular_consistency(row_parity, images, key, max_shift=4, passes=2))
  assert 35 < circ < 65
  # Same key, same result; a different key draws other shifts.
  assert float(jb.consistency(row_parity, images, key, crop_size=8, max_offset=4, passes=2)) == crop


def test_position_reading_model_shift_curves():
  images, rows, _ = single_pixel_images(n=8, size=10, low=3, high=7)
  labels = jnp.asarray(rows % 2, jnp.int32)  # correct without shift
  # Diagonal crop offset o moves the pixel up by o rows: correct exactly for even o.
  per_offset, mean = jb.diagonal_shift_accuracy(row_parity, images, labels, 7, range(4))
  assert per_offset.tolist() == [100.0, 0.0, 100.0, 0.0] and float(mean) == 50.0
  per_offset, _ = jb.diagonal_shift_accuracy(row_parity, images, labels, None, [0, 1, 2])
  assert per_offset.tolist() == [100.0, 0.0, 100.0]
  # Centred 6x6 crop of 10x10 starts at row 2 (even), so unshifted parity is kept; any m >= 1 allows a 1-row shift.
  assert jb.adversarial_shift_accuracy(row_parity, images, labels, 6, [0, 1, 2]).tolist() == [100.0, 0.0, 0.0]
  assert jb.adversarial_shift_accuracy(row_parity, images, labels, None, [0, 1]).tolist() == [100.0, 0.0]
  # Two shifts, correct at one and wrong at the other: p(correct) is a = e/(e+1) and 1 - a, std = a - 1/2.
  a = np.e / (np.e + 1)
  variation = float(jb.classification_variation(row_parity, images, labels, 7, [0, 1]))
  assert variation == pytest.approx(a - 0.5, abs=1e-6)
  # A 2D offset array works the same: column shifts do not change the row parity.
  variation = float(jb.classification_variation(row_parity, images, labels, 7, np.array([[0, 0], [0, 3]])))
  assert variation == pytest.approx(0.0, abs=1e-7)


def test_one_compile_for_new_shifts_and_params():
  traces = []

  def apply(params, x):
    traces.append(1)
    return global_max(x) * params["scale"]

  images, labels = bright_centre_images()
  fn = jax.tree_util.Partial(apply, {"scale": jnp.ones(3)})
  jb.diagonal_shift_accuracy(fn, images, labels, 6, [0, 1, 2])
  n = len(traces)
  jb.diagonal_shift_accuracy(fn, images, labels, 6, [2, 3, 4])
  fn2 = jax.tree_util.Partial(apply, {"scale": -jnp.ones(3)})
  _, mean = jb.diagonal_shift_accuracy(fn2, images, labels, 6, [1, 2, 4])
  assert len(traces) == n and float(mean) == 0.0  # new params are arguments, not baked-in constants


def _conv_stack(mode, stride2=False):
  k1 = jnp.asarray(RNG.uniform(size=(3, 3, 2, 4)).astype(np.float32))
  k2 = jnp.asarray(RNG.uniform(size=(3, 3, 4, 4)).astype(np.float32))

  def features(x):
    h1 = jax.nn.relu(jb.conv(x, k1, mode=mode))
    h2 = jax.nn.relu(jb.conv(h1, k2, mode=mode))
    out = {"conv1": h1, "conv2": h2, "pooled": h2.mean(axis=(1, 2))}
    if stride2:
      out["sub2"] = h2[:, ::2, ::2]
    return out

  return features


def test_feature_equivariance_distance():
  images = jnp.asarray(RNG.uniform(size=(3, 8, 8, 2)).astype(np.float32))
  shifts = np.array([[0, 0], [1, 0], [0, 3], [2, 2], [-3, 1]])
  circ = jb.feature_equivariance_distance(_conv_stack("circular", stride2=True), images, shifts, batch_size=2)
  assert set(circ) == {"conv1", "conv2", "pooled", "sub2"}
  for name in ("conv1", "conv2", "pooled"):
    assert circ[name].shape == (5,)
    np.testing.assert_allclose(circ[name], 0.0, atol=1e-6)
  # Stride 2: exact at shifts that are multiples of 2 in both dims, not at the others.
  np.testing.assert_allclose(circ["sub2"][np.array([0, 3])], 0.0, atol=1e-6)
  assert np.all(np.asarray(circ["sub2"][np.array([1, 2, 4])]) > 1e-4)
  same = jb.feature_equivariance_distance(_conv_stack("same"), images, shifts)
  assert float(same["conv1"][0]) < 1e-6  # no shift, no distance
  assert np.all(np.asarray(same["conv1"][1:]) > 1e-4) and np.all(np.asarray(same["conv2"][1:]) > 1e-4)


def test_feature_distance_against_numpy():
  images = jnp.asarray(RNG.normal(size=(2, 4, 4, 1)).astype(np.float32))
  d = jb.feature_equivariance_distance(lambda x: {"sub": x[:, ::2, ::2]}, images, [1])["sub"]
  x = np.asarray(images)
  up = np.repeat(np.repeat(x[:, ::2, ::2], 2, 1), 2, 2)
  moved = np.roll(x, (1, 1), (1, 2))[:, ::2, ::2]
  a = np.roll(up, (1, 1), (1, 2)).reshape(2, -1)
  b = np.repeat(np.repeat(moved, 2, 1), 2, 2).reshape(2, -1)
  cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
  assert float(d[0]) == pytest.approx(np.mean(1 - cos), abs=1e-6)
  assert jb.cosine_distance(jnp.zeros((1, 3)), jnp.zeros((1, 3))).tolist() == [0.0]
  assert jb.cosine_distance(jnp.zeros((1, 3)), jnp.ones((1, 3))).tolist() == [1.0]
  assert jb.cosine_distance(jnp.ones((1, 3)), -jnp.ones((1, 3))).tolist() == [2.0]


def test_filter_total_variation_hand_computed():
  # Filter 0 (one input channel): horizontal |2-1|+|0-2| + |1-0|+|0-1| + |0-0|+|-1-0| = 6, vertical
  # |0-1|+|0-0| + |1-2|+|0-1| + |0-0|+|-1-0| = 4, l1 = 5 -> TV 2. Filter 1 is constant -> TV 0.
  f0 = np.array([[1., 2., 0.], [0., 1., 0.], [0., 0., -1.]])
  kernel = np.stack([f0, np.full((3, 3), 0.5)], axis=-1)[:, :, None, :]  # HWIO (3, 3, 1, 2)
  tv = jb.filter_total_variation({"block": {"conv": {"kernel": kernel, "bias": np.ones(2)}}}, per_filter=True)
  assert list(tv) == ["block/conv/kernel"]
  np.testing.assert_allclose(tv["block/conv/kernel"], [2.0, 0.0], atol=1e-6)
  assert jb.filter_total_variation({"k": kernel})["k"] == pytest.approx(1.0)
  # Input channels share the filter's l1 norm: two channels [1, 0] and [0, 0] in 1D -> (1 + 0) / 1.
  assert float(jb.filter_total_variation({"k": np.array([[[1., 0.]], [[0., 0.]]]).reshape(2, 2, 1)},
                                         spatial_dims=1)["k"]) == pytest.approx(1.0)
  # Scale invariant, and in a Flax-shaped params tree only conv kernels are picked (1x1 has TV 0).
  shapes = {"Conv_0": {"kernel": (3, 3, 3, 4), "bias": (4,)}, "Conv_1": {"kernel": (1, 1, 4, 4), "bias": (4,)},
            "Dense_0": {"kernel": (4, 2), "bias": (2,)}}
  params = jax.tree_util.tree_map(lambda s: RNG.normal(size=s), shapes, is_leaf=lambda s: isinstance(s, tuple))
  tv = jb.filter_total_variation(params)
  assert sorted(tv) == ["Conv_0/kernel", "Conv_1/kernel"] and float(tv["Conv_1/kernel"]) == 0.0
  scaled = jb.filter_total_variation(jax.tree_util.tree_map(lambda p: 3 * p, params))
  assert scaled["Conv_0/kernel"] == pytest.approx(tv["Conv_0/kernel"], rel=1e-5) and tv["Conv_0/kernel"] > 0


IMAGES = np.zeros((2, 8, 8, 1), np.float32)
LABELS = np.zeros(2, np.int32)


@pytest.mark.parametrize("call, message", [
    (lambda: jb.accuracy(global_max, IMAGES[0, 0], LABELS), r"images must be channels-last and batched"),
    (lambda: jb.accuracy(global_max, IMAGES, LABELS[:1]), r"labels must be an int array of shape \(2,\)"),
    (lambda: jb.accuracy(global_max, IMAGES, LABELS.astype(float)), r"labels must be an int array"),
    (lambda: jb.accuracy(None, IMAGES, LABELS), r"apply_fn must be a callable"),
    (lambda: jb.accuracy(global_max, IMAGES, LABELS, batch_size=0), r"batch_size must be >= 1"),
    (lambda: jb.consistency(global_max, IMAGES, jax.random.key(0), 9, 1), r"crop_size=9 is larger than the image"),
    (lambda: jb.consistency(global_max, IMAGES, jax.random.key(0), 6, 4), r"crop_size \+ max_offset - 1 must be <="),
    (lambda: jb.consistency(global_max, IMAGES, jax.random.key(0), 6, (1, 4)), r"crop_size \+ max_offset - 1"),
    (lambda: jb.consistency(global_max, IMAGES, jax.random.key(0), 6, (1, 2, 3)), r"max_offset must have one"),
    (lambda: jb.consistency(global_max, IMAGES, jax.random.key(0), 6, 2, passes=0), r"passes must be >= 1"),
    (lambda: jb.circular_consistency(global_max, IMAGES, jax.random.key(0), 0), r"max_shift must be >= 1"),
    (lambda: jb.diagonal_shift_accuracy(global_max, IMAGES, LABELS, 6, [0, 3]), r"offsets must lie in \[0, image"),
    (lambda: jb.diagonal_shift_accuracy(global_max, IMAGES, LABELS, 6, []), r"offsets must be a non-empty int"),
    (lambda: jb.diagonal_shift_accuracy(global_max, IMAGES, LABELS, 6, np.zeros((2, 3), int)), r"shape \(K, 2\)"),
    (lambda: jb.classification_variation(global_max, IMAGES, LABELS, None, [0.5]), r"offsets must be a non-empty"),
    (lambda: jb.adversarial_shift_accuracy(global_max, IMAGES, LABELS, 6, [-1]), r"max_shifts must be a non-empty"),
    (lambda: jb.adversarial_shift_accuracy(global_max, IMAGES, LABELS, 6, [2]), r"offsets must lie in"),
    (lambda: jb.feature_equivariance_distance(lambda x: {"f": x[:, :3]}, IMAGES, [1]),
     r"feature 'f' has spatial shape \(3, 8\), which does not divide"),
    (lambda: jb.feature_equivariance_distance(lambda x: x, IMAGES, [1]), r"features_fn must return a dict"),
    (lambda: jb.cosine_distance(jnp.zeros((2, 3)), jnp.zeros((2, 4))), r"a and b must have the same shape"),
    (lambda: jb.filter_total_variation({}, spatial_dims=4), r"spatial_dims must be 1, 2 or 3"),
])
def test_bad_input(call, message):
  with pytest.raises(ValueError, match=message):
    call()
