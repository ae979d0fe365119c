"""Shifts against NumPy slicing / np.roll, static and traced (per-sample) shifts, and bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxborders as jb

RNG = np.random.default_rng(0)
SHAPES = {1: (3, 7, 2), 2: (3, 6, 5, 2), 3: (2, 4, 5, 3, 2)}


def _image(rank):
  return RNG.normal(size=SHAPES[rank]).astype(np.float32)


def _np_canvas_shift(x, shift):
  """Reference: pad with zeros by |shift| on each side, then take the window that moves the content."""
  rank = x.ndim - 2
  out = x
  for d in range(rank):
    n, s = x.shape[d + 1], shift[d]
    width = [(0, 0)] * x.ndim
    width[d + 1] = (n, n)
    padded = np.pad(out, width)
    index = [slice(None)] * x.ndim
    index[d + 1] = slice(n - s, 2 * n - s)
    out = padded[tuple(index)] if abs(s) < n else np.zeros_like(out)
  return out


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_circular_shift_matches_np_roll(rank):
  x = _image(rank)
  axes = tuple(range(1, rank + 1))
  for shift in [0, 1, -2, 9, tuple(range(-1, rank - 1))]:
    expected = np.roll(x, shift if isinstance(shift, tuple) else (shift,) * rank, axis=axes)
    np.testing.assert_array_equal(jb.circular_shift(x, shift), expected)
  # Per-sample traced shifts under jit: each sample rolled by its own shift.
  shifts = RNG.integers(-8, 8, size=(x.shape[0], rank)).astype(np.int32)
  got = jax.jit(jb.circular_shift)(x, shifts)
  for i in range(x.shape[0]):
    np.testing.assert_array_equal(got[i], np.roll(x[i], tuple(shifts[i]), axis=tuple(range(rank))))
  # A (rank,) array applies to every sample.
  np.testing.assert_array_equal(jb.circular_shift(x, jnp.asarray(shifts[0])), np.roll(x, tuple(shifts[0]), axes))


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_crop_shift_matches_slicing(rank):
  x = _image(rank)
  size = tuple(n - 2 for n in x.shape[1:-1])
  offset = tuple(range(rank))[::-1]
  offset = tuple(min(o, 2) for o in offset)
  expected = x[(slice(None), *(slice(o, o + s) for o, s in zip(offset, size)))]
  np.testing.assert_array_equal(jb.crop_shift(x, offset, size), expected)
  offsets = RNG.integers(0, 3, size=(x.shape[0], rank)).astype(np.int32)
  got = jax.jit(jb.crop_shift, static_argnames="size")(x, offsets, size)
  assert got.shape == (x.shape[0], *size, x.shape[-1])
  for i in range(x.shape[0]):
    np.testing.assert_array_equal(got[i], x[i][tuple(slice(o, o + s) for o, s in zip(offsets[i], size))])


def test_traced_shifts_compile_once():
  traces = []

  @jax.jit
  def f(x, offsets):
    traces.append(1)
    return jb.crop_shift(x, offsets, 3), jb.circular_shift(x, offsets), jb.canvas_shift(x, offsets)

  x = _image(2)
  for _ in range(3):
    f(x, RNG.integers(0, 3, size=(3, 2)).astype(np.int32))
  assert len(traces) == 1


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_canvas_shift_matches_numpy(rank):
  x = _image(rank)
  for shift in [(1,) * rank, (-2,) * rank, tuple(range(-1, rank - 1)), (7,) * rank]:
    np.testing.assert_array_equal(jb.canvas_shift(x, shift), _np_canvas_shift(x, shift))
  shifts = RNG.integers(-4, 5, size=(x.shape[0], rank)).astype(np.int32)
  got = jax.jit(jb.canvas_shift)(x, shifts)
  for i in range(x.shape[0]):
    np.testing.assert_array_equal(got[i], _np_canvas_shift(x[i:i + 1], tuple(shifts[i]))[0])


def test_canvas_shift_loses_content_but_embedding_keeps_it():
  x = jnp.arange(1., 5.).reshape(1, 4, 1)
  assert jb.canvas_shift(x, 2)[0, :, 0].tolist() == [0.0, 0.0, 1.0, 2.0]  # 3 and 4 are pushed out
  big = jb.embed_in_canvas(x, 8, 0)
  moved = jb.canvas_shift(big, 3)
  assert moved[0, :, 0].tolist() == [0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 0.0]
  np.testing.assert_array_equal(moved, jb.embed_in_canvas(x, 8, 3))


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_embed_in_canvas_matches_numpy(rank):
  x = _image(rank)
  canvas = tuple(n + 3 for n in x.shape[1:-1])
  offset = tuple(range(rank))
  expected = np.zeros((x.shape[0], *canvas, x.shape[-1]), np.float32)
  expected[(slice(None), *(slice(o, o + n) for o, n in zip(offset, x.shape[1:-1])))] = x
  np.testing.assert_array_equal(jb.embed_in_canvas(x, canvas, offset), expected)
  offsets = RNG.integers(0, 4, size=(x.shape[0], rank)).astype(np.int32)
  got = jax.jit(jb.embed_in_canvas, static_argnames="canvas_size")(x, canvas, offsets)
  for i in range(x.shape[0]):
    np.testing.assert_array_equal(got[i], jb.embed_in_canvas(x[i:i + 1], canvas, tuple(offsets[i].tolist()))[0])


def test_offset_helpers():
  assert jb.diagonal_offsets(64).shape == (65, 2)
  assert jb.diagonal_offsets(3, rank=3)[-1].tolist() == [3, 3, 3]
  grid = jb.shift_grid(2)
  assert grid.shape == (25, 2) and grid.min() == -2 and grid.max() == 2 and len({tuple(g) for g in grid}) == 25
  key = jax.random.key(3)
  pairs = jb.random_offset_pairs(key, 50, 2, -4, 4, passes=2)
  assert pairs.shape == (2, 50, 2, 2) and pairs.dtype == jnp.int32
  assert int(pairs.min()) == -4 and int(pairs.max()) == 3  # [low, high), both ends reached with 400 draws
  np.testing.assert_array_equal(pairs, jb.random_offset_pairs(key, 50, 2, -4, 4, passes=2))  # deterministic
  per_dim = np.asarray(jb.random_offset_pairs(key, 50, 2, (0, 5), (2, 9)))
  assert per_dim[..., 0].min() == 0 and per_dim[..., 0].max() == 1
  assert per_dim[..., 1].min() == 5 and per_dim[..., 1].max() == 8


@pytest.mark.parametrize("call, message", [
    (lambda: jb.circular_shift(np.zeros((4, 4)), 1), r"x must be channels-last and batched"),
    (lambda: jb.circular_shift(np.zeros((1, 4, 4, 1)), (1, 2, 3)), r"shift must have one int per spatial"),
    (lambda: jb.circular_shift(np.zeros((1, 4, 4, 1)), np.zeros(2)), r"shift must be an integer array"),
    (lambda: jb.circular_shift(np.zeros((2, 4, 4, 1)), np.zeros((3, 2), int)), r"shift must have shape \(2,\)"),
    (lambda: jb.crop_shift(np.zeros((1, 4, 4, 1)), 0, 5), r"size=5 is larger than the spatial shape"),
    (lambda: jb.crop_shift(np.zeros((1, 4, 4, 1)), (0, 2), 3), r"offset must lie in \[0, spatial - size\]"),
    (lambda: jb.crop_shift(np.zeros((1, 4, 4, 1)), -1, 3), r"offset must lie in"),
    (lambda: jb.crop_shift(np.zeros((2, 4, 4, 1)), np.array([[0, 0], [0, 2]]), 3), r"offset must lie in"),
    (lambda: jb.crop_shift(np.zeros((1, 4, 4, 1)), 0, 0), r"size must be >= 1"),
    (lambda: jb.embed_in_canvas(np.zeros((1, 4, 4, 1)), 3), r"canvas_size=3 must be >="),
    (lambda: jb.embed_in_canvas(np.zeros((1, 4, 4, 1)), 6, 3), r"offset must lie in"),
    (lambda: jb.diagonal_offsets(4, rank=4), r"rank must be 1, 2 or 3"),
    (lambda: jb.diagonal_offsets(-1), r"max_offset must be >= 0"),
    (lambda: jb.shift_grid(2, rank=0), r"rank must be 1, 2 or 3"),
    (lambda: jb.random_offset_pairs(jax.random.key(0), 4, 2, 3, 3), r"high must be > low"),
    (lambda: jb.random_offset_pairs(jax.random.key(0), 4, 2, 0, (3, 0)), r"high must be > low in every"),
    (lambda: jb.random_offset_pairs(jax.random.key(0), 4, 2, 0, (3, 4, 5)), r"high must have one int per"),
    (lambda: jb.random_offset_pairs(jax.random.key(0), 4, 2, 0, 3, passes=0), r"passes must be >= 1"),
])
def test_bad_input(call, message):
  with pytest.raises(ValueError, match=message):
    call()
