"""Brown / PhotoTour reader on patch sheets the test writes in the real format (1024x1024 bmp, info.txt, m50)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from jaxborders.data import brown as B

NUM_PATCHES = 300  # two sheets: 256 + 44 patches (the last sheet partly empty, as in the real data)


def _patch(i: int) -> np.ndarray:
  """Patch i: constant value i % 251 with a marker pixel, so position and order are checkable."""
  patch = np.full((64, 64), i % 251, np.uint8)
  patch[0, 0] = 255 - (i // 251)
  return patch


@pytest.fixture()
def phototour(tmp_path):
  folder = tmp_path / "liberty"
  folder.mkdir()
  for s in range(2):
    sheet = np.zeros((1024, 1024), np.uint8)
    for k in range(256):
      i = s * 256 + k
      if i < NUM_PATCHES:
        r, c = divmod(k, 16)
        sheet[r * 64:(r + 1) * 64, c * 64:(c + 1) * 64] = _patch(i)
    Image.fromarray(sheet).save(folder / f"patches{s:04d}.bmp")
  point_ids = np.arange(NUM_PATCHES) // 3  # 100 3D points of 3 patches each
  (folder / "info.txt").write_text("".join(f"{p} 0\n" for p in point_ids))
  pairs = [(0, 1), (3, 4), (0, 3), (5, 299), (298, 297)]
  (folder / B.MATCHES_FILE).write_text(
      "".join(f"{a} {point_ids[a]} 0 {b} {point_ids[b]} 0 0\n" for a, b in pairs))
  return str(tmp_path)


def test_reader_gets_patches_ids_and_pairs(phototour):
  data = B.read_phototour(phototour, "liberty")
  assert data.patches.shape == (NUM_PATCHES, 64, 64) and data.patches.dtype == np.uint8
  for i in (0, 17, 255, 256, 299):
    np.testing.assert_array_equal(data.patches[i], _patch(i))
  np.testing.assert_array_equal(data.point_ids, np.arange(NUM_PATCHES) // 3)
  assert data.matches.tolist() == [[0, 1, 1], [3, 4, 1], [0, 3, 0], [5, 299, 0], [298, 297, 1]]


def test_missing_folder_says_where_to_download(tmp_path):
  with pytest.raises(FileNotFoundError, match="matthewalunbrown.com/patchdata"):
    B.read_phototour(str(tmp_path), "notredame")


def test_too_many_patches_in_info(phototour, tmp_path):
  (tmp_path / "liberty" / "info.txt").write_text("0 0\n" * 600)
  with pytest.raises(ValueError, match="lists 600 patches but the 2 sheets hold 512"):
    B.read_phototour(phototour, "liberty")


def test_triplets_hardnet_rules():
  point_ids = np.repeat(np.arange(40), 3)
  point_ids[-1] = 1000  # a point with a single patch: never an anchor
  triplets = B.sample_triplets(point_ids, 200, batch_size=16, seed=0)
  assert triplets.shape == (200, 3)
  a, p, n = point_ids[triplets].T
  assert np.all(a == p) and np.all(triplets[:, 0] != triplets[:, 1]) and np.all(a != n)
  assert 1000 not in a
  for block in range(200 // 16):
    anchors = a[block * 16:(block + 1) * 16]
    assert len(set(anchors.tolist())) == 16  # distinct points inside a batch (in-batch negatives)
  np.testing.assert_array_equal(triplets, B.sample_triplets(point_ids, 200, batch_size=16, seed=0))
  assert not np.array_equal(triplets, B.sample_triplets(point_ids, 200, batch_size=16, seed=1))
  with pytest.raises(ValueError, match="batch_size=64 needs at least"):
    B.sample_triplets(point_ids, 10, batch_size=64, seed=0)


def test_preprocess_is_2x2_mean_and_normalised():
  patches = np.arange(64 * 64, dtype=np.uint8).reshape(1, 64, 64)
  out = B.preprocess_patches(patches)
  assert out.shape == (1, 32, 32, 1) and out.dtype == np.float32
  block = patches[0, :2, :2].astype(np.float64).mean()
  np.testing.assert_allclose(out[0, 0, 0, 0], (block / 255 - B.HARDNET_MEAN) / B.HARDNET_STD, rtol=1e-5)


def test_triplet_batches_resume_shard_and_augment(phototour):
  data = B.read_phototour(phototour, "liberty")
  triplets = B.sample_triplets(data.point_ids, 64, batch_size=8, seed=0)
  full = list(B.triplet_batches(data, triplets, 8, augment=True, seed=3))
  assert len(full) == 8 and full[0]["anchor"].shape == (8, 32, 32, 1)
  resumed = list(B.triplet_batches(data, triplets, 8, augment=True, seed=3, start_step=5))
  for a, b in zip(full[5:], resumed):
    np.testing.assert_array_equal(a["positive"], b["positive"])
  halves = [next(B.triplet_batches(data, triplets, 8, shard_index=i, shard_count=2)) for i in range(2)]
  plain = next(B.triplet_batches(data, triplets, 8))
  np.testing.assert_array_equal(halves[1]["anchor"], plain["anchor"][1::2])


def test_pairs_and_fpr95(phototour):
  data = B.read_phototour(phototour, "liberty")
  batches = list(B.pair_batches(data, 2))
  assert [b["mask"].tolist() for b in batches] == [[1, 1], [1, 1], [1, 0]]
  assert np.concatenate([b["label"] for b in batches])[:5].tolist() == [1, 1, 0, 0, 1]
  # Hand-made distances: matches at 0.1, 0.5, 0.9; non-matches at 0.3 and 0.7. 95% recall needs all three
  # matches (threshold 0.9), which accepts both non-matches: FPR 1.0. With the last match at 0.2 the
  # threshold is 0.5 and only the non-match at 0.3 is accepted: FPR 0.5.
  assert B.fpr_at_95_recall([0.1, 0.5, 0.3, 0.7, 0.9], [1, 1, 0, 0, 1]) == 1.0
  assert B.fpr_at_95_recall([0.1, 0.5, 0.3, 0.7, 0.2], [1, 1, 0, 0, 1]) == 0.5
  # A descriptor equal to the patch's mean value: matching pairs (same point) have near values here.
  fpr = B.evaluate_fpr95(lambda x: x.reshape(len(x), -1).mean(1, keepdims=True), data, batch_size=2)
  assert 0.0 <= fpr <= 1.0
