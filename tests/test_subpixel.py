"""Sub-pixel shifts: fourier_shift against a naive trigonometric-interpolation sum, and the sub-pixel metrics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxborders as jb


def naive_fourier_shift_1d(x, t):
  """out[i] = sum_j x[j] D(i - t - j), D the periodic interpolation kernel written as a sum of cosines:
  D(u) = (1/n) [1 + 2 sum_{0<k<n/2} cos(2 pi k u / n) + (cos(pi u) if n even)] (the Nyquist term keeps its real
  part: a real signal cannot carry a fractional phase there)."""
  n = len(x)
  out = np.zeros(n)
  for i in range(n):
    for j in range(n):
      u = i - t - j
      d = 1.0 + sum(2 * np.cos(2 * np.pi * k * u / n) for k in range(1, (n + 1) // 2))
      if n % 2 == 0:
        d += np.cos(np.pi * u)
      out[i] += x[j] * d / n
  return out


def naive_fourier_shift(x, shift):
  """Per axis of (N, *spatial, C), one axis after the other."""
  out = np.asarray(x, np.float64)
  for axis, t in enumerate(shift, start=1):
    out = np.apply_along_axis(naive_fourier_shift_1d, axis, out, t)
  return out


def without_nyquist(x):
  """x with the Nyquist bin of every even spatial axis removed (NumPy)."""
  for axis in range(1, x.ndim - 1):
    if x.shape[axis] % 2 == 0:
      spectrum = np.fft.rfft(x, axis=axis)
      spectrum[(slice(None),) * axis + (x.shape[axis] // 2,)] = 0
      x = np.fft.irfft(spectrum, n=x.shape[axis], axis=axis)
  return x


@pytest.mark.parametrize("shape, shift", [((2, 7, 2), (0.3,)), ((1, 6, 5, 2), (-0.5, 1.25)),
                                          ((1, 4, 3, 4, 1), (0.75, -2.5, 0.1))])
def test_fourier_shift_matches_naive_sum_and_integers_are_exact(shape, shift):
  x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
  got = np.asarray(jb.fourier_shift(jnp.asarray(x), shift))
  np.testing.assert_allclose(got, naive_fourier_shift(x, shift), atol=2e-5)
  integer = tuple(int(np.floor(t)) - 3 for t in shift)
  assert np.array_equal(np.asarray(jb.fourier_shift(jnp.asarray(x), integer)),
                        np.asarray(jb.circular_shift(jnp.asarray(x), integer)))  # bit for bit


def test_per_sample_traced_shifts_and_exact_integers_under_jit():
  x = jax.random.normal(jax.random.key(0), (3, 6, 5, 2))
  shifts = jnp.array([[0.5, -1.25], [2.0, -3.0], [0.0, 0.0]])
  got = jax.jit(jb.fourier_shift)(x, shifts)
  for i in range(3):
    np.testing.assert_allclose(got[i:i + 1], jb.fourier_shift(x[i:i + 1], tuple(shifts[i].tolist())), atol=1e-6)
  assert np.array_equal(got[1:2], jb.circular_shift(x[1:2], (2, -3)))
  assert np.array_equal(got[2], x[2])


def test_shifts_compose_except_in_the_even_nyquist_bin():
  rng = np.random.default_rng(1)
  odd = jnp.asarray(rng.standard_normal((2, 7, 5, 1)), jnp.float32)
  even = jnp.asarray(without_nyquist(rng.standard_normal((2, 8, 6, 1))), jnp.float32)
  for x in (odd, even):
    twice = jb.fourier_shift(jb.fourier_shift(x, (0.3, -0.7)), (0.45, 1.2))
    np.testing.assert_allclose(twice, jb.fourier_shift(x, (0.75, 0.5)), atol=2e-5)
  # The caveat: a pure Nyquist signal is only scaled by cos(pi t); two half shifts give 0, not a one-pixel shift.
  nyquist = jnp.asarray(np.cos(np.pi * np.arange(8.0)).reshape(1, 8, 1), jnp.float32)
  np.testing.assert_allclose(jb.fourier_shift(nyquist, 0.25), np.cos(np.pi / 4) * nyquist, atol=1e-6)
  np.testing.assert_allclose(jb.fourier_shift(jb.fourier_shift(nyquist, 0.5), 0.5), 0 * nyquist, atol=1e-6)
  np.testing.assert_allclose(jb.fourier_shift(nyquist, 1.0), -nyquist, atol=0)


# Two fixed random classifiers shared by the metric tests (compiled once each).
_W = jax.random.normal(jax.random.key(1), (3, 3, 3, 8))
_HEAD = jax.random.normal(jax.random.key(2), (8, 10))


def ideal_net(x):
  """Ideal low-pass downsampling twice with a channel mix between, global mean of squares, linear head. Exactly
  invariant to Fourier shifts: the downsampled maps shift by t/4 without Nyquist content, and the mean of
  squares of such a map is its spectrum's energy (Parseval), which a phase does not change."""
  h = jb.ideal_downsample(jb.ideal_downsample(x, 2) @ _W[1, 1] + 0.3, 2)
  return (h * h).mean(axis=(1, 2)) @ _HEAD


@jax.jit
def strided_net(x):
  """A stride-4 circular conv without anti-aliasing, ReLU, global mean, linear head: aliases."""
  return jax.nn.relu(jb.conv(x, _W, "circular", strides=4)).mean(axis=(1, 2)) @ _HEAD


IMAGES = jax.random.normal(jax.random.key(0), (16, 8, 8, 3))  # white noise: high frequencies, where it matters
SHIFTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def test_subpixel_metrics_are_exact_for_an_ideal_stack_and_below_for_a_strided_conv():
  key = jax.random.key(3)
  labels = jnp.argmax(ideal_net(IMAGES), axis=-1)
  assert float(jb.subpixel_consistency(ideal_net, IMAGES, key, max_shift=0.5, passes=2)) == 100.0
  assert jb.fractional_shift_accuracy(ideal_net, IMAGES, labels, SHIFTS).tolist() == [100.0] * 5
  labels = jnp.argmax(strided_net(IMAGES), axis=-1)
  assert float(jb.subpixel_consistency(strided_net, IMAGES, key, max_shift=0.5, passes=2)) < 100.0
  per_shift = jb.fractional_shift_accuracy(strided_net, IMAGES, labels, SHIFTS)
  assert per_shift[0] == 100.0 and per_shift.min() < 100.0


def test_subpixel_metrics_recomputed_from_their_definition():
  key = jax.random.key(4)
  n = IMAGES.shape[0]
  pairs = jax.random.uniform(key, (2, n, 2, 2), jnp.float32, -0.5, 0.5)  # the documented draw
  same = []
  for p in range(2):
    for i in range(n):  # one image at a time, each shift as its own per-axis float tuple
      a, b = (int(jnp.argmax(strided_net(jb.fourier_shift(IMAGES[i:i + 1], tuple(pairs[p, i, k].tolist())))))
              for k in range(2))
      same.append(a == b)
  expected = 100.0 * np.mean(same)
  assert float(jb.subpixel_consistency(strided_net, IMAGES, key, max_shift=0.5, passes=2)) == expected
  assert float(jb.subpixel_consistency(strided_net, IMAGES, key, max_shift=0.5, passes=2, batch_size=5)) == expected
  labels = jnp.arange(n) % 10
  shifts = np.array([[0.0, 0.5], [0.25, -0.75]])
  expected = [100.0 * float(jnp.mean(jnp.argmax(strided_net(jb.fourier_shift(IMAGES, tuple(s))), -1) == labels))
              for s in shifts]
  np.testing.assert_allclose(jb.fractional_shift_accuracy(strided_net, IMAGES, labels, shifts), expected)


def test_bad_input():
  x = jnp.zeros((2, 6, 6, 1))
  with pytest.raises(ValueError, match="shift must be a float or one float per spatial dimension"):
    jb.fourier_shift(x, (0.5, 0.5, 0.5))
  with pytest.raises(ValueError, match=r"shift must have shape \(2,\) \(all samples\) or \(2, 2\)"):
    jb.fourier_shift(x, jnp.zeros((3, 2)))
  with pytest.raises(ValueError, match="max_shift must be a finite number of pixels > 0"):
    jb.subpixel_consistency(strided_net, x, jax.random.key(0), max_shift=0)
  with pytest.raises(ValueError, match="shifts must be a non-empty sequence of real numbers"):
    jb.fractional_shift_accuracy(strided_net, x, jnp.zeros(2, int), [])
  with pytest.raises(ValueError, match="labels must be an int array"):
    jb.fractional_shift_accuracy(strided_net, x, jnp.zeros(3, int), [0.5])
