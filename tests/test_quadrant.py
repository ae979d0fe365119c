"""Natural-image patches and the quadrant location task (F-Conv paper Exp 1): geometry, balance, splits."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxborders.data import patches as patches_lib
from jaxborders.data import quadrant


def test_patches_deterministic_shapes_and_range():
  a = patches_lib.natural_patches("train", 6, 12, seed=3)
  b = patches_lib.natural_patches("train", 6, 12, seed=3)
  c = patches_lib.natural_patches("train", 6, 12, seed=4)
  assert a.shape == (6, 12, 12, 3) and a.dtype == np.float32
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)
  assert 0.0 <= a.min() and a.max() <= 1.0
  assert patches_lib.natural_patches("val", 2, 8, color="gray").shape == (2, 8, 8, 1)


def test_source_split_disjoint_images():
  sets = {s: set(patches_lib.SOURCE_SPLITS[s]) for s in patches_lib.SPLITS}
  assert not sets["train"] & sets["val"] and not sets["train"] & sets["test"] and not sets["val"] & sets["test"]
  for split in patches_lib.SPLITS:
    _, boxes = patches_lib.natural_patches(split, 7, 8, return_boxes=True)
    assert {b[0] for b in boxes} <= sets[split]


def test_region_split_disjoint_bands():
  for split in patches_lib.SPLITS:
    _, boxes = patches_lib.natural_patches(split, 20, 8, split_by="region", return_boxes=True)
    lo, hi = patches_lib.REGION_BANDS[split]
    for name, row, _, side in boxes:
      height = patches_lib.load_image(name).shape[0]
      assert round(lo * height) <= row and row + side <= round(hi * height), (split, name, row, side)


def test_patches_bad_arguments():
  with pytest.raises(ValueError, match="split="):
    patches_lib.natural_patches("dev", 1, 8)
  with pytest.raises(ValueError, match="split_by="):
    patches_lib.natural_patches("train", 1, 8, split_by="random")
  with pytest.raises(ValueError, match="images="):
    patches_lib.natural_patches("train", 1, 8, images=("coffee",))  # a test image under the source split


@pytest.mark.parametrize("border", [0, 5])
def test_compose_geometry(border):
  p, canvas = 4, 10
  patches = np.random.default_rng(0).uniform(0.1, 1, (2, p, p, 1)).astype(np.float32)
  labels = np.array([0, 1])
  images = quadrant.compose(patches, labels, canvas, border)
  size = quadrant.image_size(canvas, border)
  assert images.shape == (2, size, size, 1) and size == canvas + 2 * border
  offsets = quadrant.patch_offsets(p, canvas, border)
  for i, label in enumerate(labels):
    r, c = offsets[label]
    np.testing.assert_array_equal(images[i, r:r + p, c:c + p], patches[i])
    rest = images[i].copy()
    rest[r:r + p, c:c + p] = 0
    assert not rest.any()  # black canvas and border
  assert offsets == {0: (border, border), 1: (border + canvas - p,) * 2}


def test_compose_jax_matches_numpy():
  patches = np.random.default_rng(1).uniform(size=(4, 3, 3, 2)).astype(np.float32)
  labels = np.array([0, 1, 1, 0])
  want = quadrant.compose(patches, labels, 8, 2)
  got = jax.jit(lambda p, l: quadrant.compose(p, l, 8, 2, xp=jnp))(patches, labels)
  np.testing.assert_array_equal(np.asarray(got), want)


def test_compose_bad_sizes():
  with pytest.raises(ValueError, match="canvas_size"):
    quadrant.compose(np.zeros((1, 8, 8, 1)), np.zeros(1), 6)
  with pytest.raises(ValueError, match="border"):
    quadrant.compose(np.zeros((1, 8, 8, 1)), np.zeros(1), 16, -1)


def test_quadrant_split_pairs_balanced():
  d = quadrant.quadrant_split("val", 5, patch_size=8, canvas_size=20, border=3, color="gray")
  assert d["image"].shape == (10, 26, 26, 1)
  assert (d["label"] == 0).sum() == (d["label"] == 1).sum() == 5
  far = 3 + 20 - 8
  for i in range(5):  # both images of a pair hold the identical patch
    np.testing.assert_array_equal(d["image"][2 * i, 3:11, 3:11], d["image"][2 * i + 1, far:far + 8, far:far + 8])


def _data_config(**kw):
  from train import data as data_lib

  c = ml_collections.ConfigDict(dict(source="quadrant", shuffle=False, num_train=4, num_val=2, num_test=3,
                                     patch_size=8, canvas_size=16, border=4, color="gray"))
  c.update(kw)
  return data_lib.source_config(c)


def test_data_source_in_memory_and_stream():
  from train import data as data_lib

  mem = data_lib.load_split(_data_config(), "test", 0)
  assert mem["image"].shape == (6, 24, 24, 1) and mem["label"].tolist() == [0, 1] * 3
  stream = quadrant.load(_data_config(max_gb=1e-9), "test", 0)
  assert isinstance(stream, data_lib.Stream) and stream.num_examples == 6 and stream.image_shape == (24, 24, 1)
  batches = list(stream.batches(0, 2, 0, 1))
  np.testing.assert_array_equal(np.concatenate([b["image"] for b in batches]), mem["image"])


def test_imagenet_source_missing_fails_clearly(tmp_path):
  pytest.importorskip("tensorflow_datasets")
  with pytest.raises((FileNotFoundError, ImportError), match="imagenet"):
    quadrant.imagenet_patches("train", 2, 8, data_dir=str(tmp_path))


def test_scales():
  assert quadrant.CPU.canvas_size - quadrant.CPU.patch_size == 32  # corners one total stride (32) apart
  assert quadrant.PAPER.borders == (0, 16, 32, 64, 128, 256, 512) and quadrant.PAPER.patch_size == 56


def test_imagenet_source_with_mock_tfds():
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=12):
    d = quadrant.quadrant_split("test", 3, patch_size=8, canvas_size=16, source="imagenet")
  assert d["image"].shape == (6, 16, 16, 3) and d["label"].tolist() == [0, 1] * 3
