"""Numpy transforms of the input pipelines: shapes, determinism, hand-checked crops and normalisation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jaxborders.data import transforms as T


def _image(h: int = 40, w: int = 60, seed: int = 0) -> np.ndarray:
  return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_record_rng_is_a_function_of_seed_epoch_index():
  draw = lambda *a: T.record_rng(*a).integers(0, 2**31, 4).tolist()
  assert draw(0, 1, 2) == draw(0, 1, 2)
  assert len({tuple(draw(*a)) for a in [(0, 1, 2), (1, 1, 2), (0, 2, 2), (0, 1, 3), (1, 0, 2)]}) == 5
  with pytest.raises(ValueError, match="seed, epoch and index must be >= 0"):
    T.record_rng(-1, 0, 0)


@pytest.mark.parametrize("shape", [(40, 60), (60, 40), (5, 200), (224, 224)])
def test_inception_crop_box_follows_torchvision_bounds(shape):
  h, w = shape
  for i in range(200):
    top, left, ch, cw = T.inception_crop_box(h, w, T.record_rng(0, 0, i))
    assert 0 <= top and top + ch <= h and 0 <= left and left + cw <= w and ch > 0 and cw > 0
    # Either a successful draw (area and ratio in range) or the clamped central fallback.
    area, ratio = ch * cw / (h * w), cw / ch
    ok = 0.08 - 0.02 <= area <= 1.0 and 3 / 4 - 0.1 <= ratio <= 4 / 3 + 0.1
    fallback = (top, left) == ((h - ch) // 2, (w - cw) // 2)
    assert ok or fallback


def test_inception_crop_fallback_is_central_clamped():
  class Never:  # a generator whose draws always miss: aspect ratio far outside the image
    def uniform(self, lo, hi):
      return hi

    def integers(self, lo, hi):
      return lo
  # 5x200 image: every 10 attempts miss (h > 5); fallback clamps ratio to 4/3: h=5, w=round(5*4/3)=7.
  assert T.inception_crop_box(5, 200, Never()) == (0, (200 - 7) // 2, 5, 7)


def test_inception_crop_shape_and_determinism():
  image = _image()
  a = T.inception_crop(image, 32, T.record_rng(1, 0, 3))
  b = T.inception_crop(image, 32, T.record_rng(1, 0, 3))
  assert a.shape == (32, 32, 3) and a.dtype == np.uint8
  np.testing.assert_array_equal(a, b)


def test_resize_center_crop_matches_hand_computed_window():
  # A 10x20 ramp resized to shorter side 10 is unchanged; the central 6x6 crop starts at row 2, column 7.
  image = np.arange(10 * 20 * 3, dtype=np.uint8).reshape(10, 20, 3)
  np.testing.assert_array_equal(T.resize_center_crop(image, 10, 6), image[2:8, 7:13])
  assert T.resize_shorter(_image(40, 60), 20).shape == (20, 30, 3)
  assert T.resize_shorter(_image(60, 40), 20).shape == (30, 20, 3)
  with pytest.raises(ValueError, match="crop_size=7 must be <= resize_size=6"):
    T.resize_center_crop(image, 6, 7)


def test_resize_box_identity_and_constant():
  image = _image()
  np.testing.assert_array_equal(T.resize_box(image, (40, 60)), image)
  const = np.full((17, 23, 3), 77, np.uint8)
  np.testing.assert_array_equal(T.resize_box(const, (9, 5), (2, 3, 10, 12)), np.full((9, 5, 3), 77, np.uint8))


def test_pad_random_crop_is_a_shifted_window_of_the_padded_image():
  image = _image(32, 32)
  padded = np.pad(image, ((4, 4), (4, 4), (0, 0)))
  for i in range(20):
    out = T.pad_random_crop(image, 32, 4, T.record_rng(0, 0, i))
    hits = [(t, l) for t in range(9) for l in range(9) if np.array_equal(padded[t:t + 32, l:l + 32], out)]
    assert hits


def test_random_flip_both_outcomes():
  image = _image()
  outs = {T.random_flip(image, T.record_rng(0, 0, i)).tobytes() for i in range(20)}
  assert outs == {image.tobytes(), image[:, ::-1].tobytes()}


def test_normalize_values():
  x = np.array([[[0, 128, 255]]], np.uint8)
  out = T.normalize(x, T.IMAGENET_MEAN, T.IMAGENET_STD)
  expected = (np.array([0, 128, 255]) / 255 - np.array(T.IMAGENET_MEAN)) / np.array(T.IMAGENET_STD)
  assert out.dtype == np.float32
  np.testing.assert_allclose(out[0, 0], expected, rtol=1e-6)


def test_to_rgb():
  assert T.to_rgb(np.zeros((4, 5), np.uint8)).shape == (4, 5, 3)
  assert T.to_rgb(np.zeros((4, 5, 4), np.uint8)).shape == (4, 5, 3)
  with pytest.raises(ValueError, match="C in 1, 3, 4"):
    T.to_rgb(np.zeros((4, 5, 2), np.uint8))


def test_multiscale_corner_box_positions():
  h, w = 120, 160
  seen = set()
  for i in range(300):
    top, left, s, s2 = T.multiscale_corner_box(h, w, T.record_rng(0, 0, i))
    assert s == s2 and s in {int(120 * sc) for sc in T.MULTISCALE_SCALES}
    assert 0 <= top <= h - s and 0 <= left <= w - s
    corner = {(0, 0): "tl", (0, w - s): "tr", (h - s, 0): "bl", (h - s, w - s): "br"}.get((top, left))
    seen.add(corner or ("c" if (top, left) == (h // 2 - s // 2, w // 2 - s // 2) else "?"))
  assert seen == {"c", "tl", "tr", "bl", "br"}
  assert math.isclose(T.MULTISCALE_SCALES[1], 0.84089642, rel_tol=1e-7)


def test_multiscale_corner_crop_same_window_every_frame():
  frame = _image(48, 64)
  clip = np.stack([frame] * 4)
  out = T.multiscale_corner_crop(clip, 16, T.record_rng(0, 0, 5))
  assert out.shape == (4, 16, 16, 3)
  for t in range(1, 4):
    np.testing.assert_array_equal(out[t], out[0])


def test_temporal_crop():
  assert T.temporal_crop(10, 4, None).tolist() == [3, 4, 5, 6]
  assert T.temporal_crop(3, 7, None).tolist() == [0, 1, 2, 0, 1, 2, 0]
  starts = {int(T.temporal_crop(20, 16, T.record_rng(0, 0, i))[0]) for i in range(100)}
  assert starts == set(range(5))
