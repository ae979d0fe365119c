"""Alias-free (ideal Fourier) down/upsampling and activations against NumPy restatements of the authors' masks, and
their claim: circular stacks invariant to integer and half-pixel shifts."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxborders as jb


def kept_mask(n: int, m: int) -> np.ndarray:
  """The authors' create_lpf_rect generalised: keep |k| <= m // 2, drop the bins ±m/2 when m is even."""
  k = np.abs(np.fft.fftfreq(n) * n)
  return (k < m / 2) if m % 2 == 0 else (k <= m // 2)


def ref_downsample(x: np.ndarray, strides) -> np.ndarray:
  """Full-rate ideal low-pass (mask in the full FFT), then keep every s-th sample, as the authors do."""
  axes = tuple(range(1, x.ndim - 1))
  spectrum = np.fft.fftn(x.astype(np.float64), axes=axes)
  for axis, s in zip(axes, strides):
    if s == 1:  # no downsampling on this axis: identity (no Nyquist bin to drop)
      continue
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    spectrum = spectrum * kept_mask(x.shape[axis], x.shape[axis] // s).reshape(shape)
  y = np.real(np.fft.ifftn(spectrum, axes=axes))
  return y[(slice(None), *(slice(None, None, s) for s in strides), slice(None))]


def ref_upsample(x: np.ndarray, u: int) -> np.ndarray:
  """Zero-stuffing, then the authors' reconstruction rect (Nyquist bins at 1/2) times u per axis."""
  axes = tuple(range(1, x.ndim - 1))
  up = np.zeros((x.shape[0], *(n * u for n in x.shape[1:-1]), x.shape[-1]))
  up[(slice(None), *(slice(None, None, u) for _ in axes), slice(None))] = x
  spectrum = np.fft.fftn(up, axes=axes)
  for axis in axes:
    n, big = x.shape[axis], up.shape[axis]
    k = np.abs(np.fft.fftfreq(big) * big)
    rect = np.where(k < n / 2, 1.0, np.where(k == n / 2, 0.5, 0.0)) * u
    shape = [1] * x.ndim
    shape[axis] = big
    spectrum = spectrum * rect.reshape(shape)
  return np.real(np.fft.ifftn(spectrum, axes=axes))


def without_nyquist(x: jax.Array) -> jax.Array:
  """Removes the Nyquist bin of every even spatial axis (the only content a real signal cannot shift by 1/2)."""
  axes = tuple(range(1, x.ndim - 1))
  spectrum = jnp.fft.fftn(x, axes=axes)
  for axis in axes:
    n = x.shape[axis]
    if n % 2 == 0:
      spectrum = spectrum.at[(slice(None),) * axis + (n // 2,)].set(0)
  return jnp.real(jnp.fft.ifftn(spectrum, axes=axes)).astype(x.dtype)


_CASES = [((2, 12, 3), (3,)), ((2, 12, 3), (2,)), ((2, 8, 6, 2), (2, 2)), ((1, 4, 6, 4, 2), (2, 3, 1))]


@pytest.mark.parametrize("shape,strides", _CASES)
def test_ideal_down_and_upsampling_match_numpy(shape, strides):
  x = np.random.default_rng(len(shape)).standard_normal(shape).astype(np.float32)
  np.testing.assert_allclose(np.asarray(jb.ideal_downsample(jnp.asarray(x), strides)), ref_downsample(x, strides),
                             atol=1e-5)
  up = np.asarray(jb.ideal_upsample(jnp.asarray(x), 2))
  np.testing.assert_allclose(up, ref_upsample(x, 2), atol=1e-5)
  np.testing.assert_allclose(up[(slice(None), *(slice(None, None, 2) for _ in shape[1:-1]))], x, atol=1e-5)


def test_activation_matches_numpy_and_integer_fourier_shift_is_roll():
  x = np.random.default_rng(0).standard_normal((2, 6, 8, 3)).astype(np.float32)
  coeffs = np.array(jb.POLY_INIT_COEFFS)
  z = ref_upsample(x, 2)
  ref = ref_downsample(coeffs[0] + coeffs[1] * z + coeffs[2] * z * z, (2, 2))
  got = jb.alias_free_activation(jnp.asarray(x), lambda v: jb.polynomial_activation(v, coeffs))
  np.testing.assert_allclose(np.asarray(got), ref, atol=1e-5)
  np.testing.assert_allclose(np.asarray(jb.fourier_shift(jnp.asarray(x), (2, -3))),
                             np.roll(x, (2, -3), axis=(1, 2)), atol=1e-5)
  half = jb.fourier_shift(jb.fourier_shift(without_nyquist(jnp.asarray(x)), 0.5), 0.5)
  np.testing.assert_allclose(np.asarray(half), np.roll(np.asarray(without_nyquist(jnp.asarray(x))), 1, axis=(1, 2)),
                             atol=1e-5)


class AliasFreeNet(nn.Module):
  """Circular conv -> alias-free act -> ideal downsample -> circular conv -> alias-free act -> global mean."""

  plain_relu: bool = False

  @nn.compact
  def __call__(self, x):
    act = nn.relu if self.plain_relu else (lambda v: jb.nn.AliasFreeActivation()(v))
    x = act(jb.nn.Conv(4, 3, mode="circular")(x))
    x, _ = jb.nn.IdealDownsample()(x)
    x = act(jb.nn.Conv(4, 3, mode="circular")(x))
    return x.mean(axis=(1, 2))


def test_stack_is_invariant_to_integer_and_half_pixel_shifts():
  x = without_nyquist(jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 3)))
  shifts = [(0.0, 0.0), (0.5, 0.0), (0.0, 0.5), (1.0, 1.0), (1.5, 0.5), (2.5, 3.0), (3.0, 7.0)]
  shifted = jnp.stack([jb.fourier_shift(x, s) for s in shifts])
  for plain in (False, True):
    net = AliasFreeNet(plain)
    params = net.init(jax.random.PRNGKey(1), x)
    out = jax.jit(jax.vmap(lambda v: net.apply(params, v)))(shifted)
    error = float(jnp.abs(out - out[0]).max() / jnp.abs(out[0]).max())
    if plain:  # the test can fail: a pointwise ReLU at the sampling rate aliases
      assert error > 1e-2
    else:
      assert error < 1e-5, error


def test_dtypes_jit_grad_vmap():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 6, 4, 2))
  # the sum of the output is the input's sum / prod(stride): the DC passes with gain 1
  g = jax.jit(jax.grad(lambda v: jb.ideal_downsample(v, (3, 2)).sum()))(x)
  np.testing.assert_allclose(g, np.full(x.shape, 1 / 6), rtol=1e-5)
  y16 = jb.ideal_downsample(x.astype(jnp.bfloat16))
  assert y16.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(y16, np.float32), jb.ideal_downsample(x), atol=5e-2)
  layer = jb.nn.AliasFreeActivation()
  params = layer.init(jax.random.PRNGKey(0), x)
  assert params["params"]["coeffs"].shape == (3, 2)
  grads = jax.jit(jax.grad(lambda p: (layer.apply(p, x) ** 2).sum()))(params)
  assert float(jnp.abs(grads["params"]["coeffs"]).min()) > 0
  ys = jax.jit(jax.vmap(lambda v: jb.alias_free_activation(v, jax.nn.gelu)))(jnp.stack([x, 2 * x]))
  np.testing.assert_allclose(ys[1], jb.alias_free_activation(2 * x, jax.nn.gelu), atol=1e-5)
  odd = jax.random.normal(jax.random.PRNGKey(0), (1, 7, 5, 2))
  assert jb.nn.IdealDownsample().apply({}, odd)[0].shape == (1, 4, 3, 2)  # padded circularly to 8 x 6


def test_bad_input():
  x = jnp.zeros((1, 6, 6, 1))
  with pytest.raises(ValueError, match="ideal_downsample needs spatial sizes divisible by the stride.*multiples of 4"):
    jb.ideal_downsample(x, 4)
  with pytest.raises(ValueError, match="stride must be >= 1"):
    jb.ideal_downsample(x, 0)
  with pytest.raises(ValueError, match="shift must be a float or one float per spatial dimension"):
    jb.fourier_shift(x, (0.5, 0.5, 0.5))
  with pytest.raises(ValueError, match="kind='tanh' is not supported; accepted values: 'poly', 'relu', 'gelu'"):
    jb.nn.AliasFreeActivation(kind="tanh")
  with pytest.raises(ValueError, match="afc takes no options; accepted forms: 'afc'"):
    jb.nn.methods.parse_afc_options(["2"])
  with pytest.raises(ValueError, match="x must be channels-last and batched"):
    jb.ideal_upsample(jnp.zeros((4, 4)))
