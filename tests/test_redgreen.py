"""Red-Green data (docs/experiments.md): box positions and values, labels, dissimilar shift, split independence, leak flag."""

import ml_collections
import numpy as np
import pytest

from jaxborders.data import redgreen


def _cfg(**kw):
  c = ml_collections.ConfigDict(dict(redgreen.DEFAULTS))
  c.update(kw)
  return c


@pytest.fixture(scope="module")
def splits():
  c = _cfg(train_size=400, val_size=200, test_size=200)
  return {s: redgreen.load(c, s, seed=0) for s in redgreen.SPLITS}


def _boxes(image):
  """(row, col) of the top-left corner of the box in channels 0 and 1."""
  out = []
  for ch in (0, 1):
    rows, cols = np.nonzero(image[:, :, ch])
    out.append((rows.min(), cols.min(), rows.max() - rows.min() + 1, cols.max() - cols.min() + 1))
  return out


def test_shapes_values_and_labels(splits):
  d = splits["train"]
  assert d["image"].shape == (400, 32, 32, 3) and d["image"].dtype == np.float32
  assert set(np.unique(d["image"])) == {0.0, 1.0}
  assert d["label"].tolist() == [i % 2 for i in range(400)]  # labels alternate
  assert (d["image"][..., 2] == 0).all()  # blue channel black
  assert (d["image"].sum(axis=(1, 2))[:, :2] == 16).all()  # one 4x4 box per colour


def test_box_positions_follow_spec(splits):
  for img, label in zip(splits["train"]["image"], splits["train"]["label"]):
    (r_red, c_red, h0, w0), (r_green, c_green, h1, w1) = _boxes(img)
    assert (h0, w0, h1, w1) == (4, 4, 4, 4)
    offset = 7 if label == 0 else 23
    assert offset - 4 <= r_red <= offset + 3 and offset - 4 <= r_green <= offset + 3
    left, right = (c_red, c_green) if label == 0 else (c_green, c_red)  # class 0: red left of green
    assert 0 <= left <= 9 and left <= right <= 27 and right - left >= 5


def test_dissimilar_is_similar_shifted_16_rows(splits):
  sim, dis = splits["test_similar"], splits["test_dissimilar"]
  assert (sim["label"] == dis["label"]).all()
  for img_s, img_d, label in zip(sim["image"], dis["image"], sim["label"]):
    shift = 16 if label == 0 else -16
    np.testing.assert_array_equal(np.roll(img_s, shift, axis=0), img_d)


def test_splits_independent_and_leaky_flag(splits):
  train, val, test = splits["train"]["image"], splits["val"]["image"], splits["test_similar"]["image"]
  assert not np.array_equal(val, train[:200]) and not np.array_equal(test, train[:200])
  assert not np.array_equal(val, test)
  leaky = {s: redgreen.load(_cfg(train_size=400, val_size=200, test_size=200, leaky_splits=True), s, 0)
           for s in ("train", "val", "test_similar")}
  np.testing.assert_array_equal(leaky["val"]["image"], leaky["train"]["image"][:200])
  np.testing.assert_array_equal(leaky["test_similar"]["image"], leaky["train"]["image"][:200])


def test_deterministic_and_bad_split():
  c = _cfg(train_size=10)
  np.testing.assert_array_equal(redgreen.load(c, "train", 0)["image"], redgreen.load(c, "train", 5)["image"])
  with pytest.raises(ValueError, match="split='tset'.*'test_similar'"):
    redgreen.load(c, "tset", 0)
