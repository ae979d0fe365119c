"""FLC pooling against a NumPy restatement of the authors' module and a direct DFT, and which shift properties it has
(exact for shifts by multiples of the stride; not for odd or sub-pixel shifts)."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxborders as jb


def ref_flc_authors(x: np.ndarray) -> np.ndarray:
  """The authors' FLC_Pooling.forward (2D, stride 2) in NumPy, channels-last in and out."""
  xc = np.moveaxis(x, -1, 1)
  h, w = xc.shape[2:]
  low = np.fft.fftshift(np.fft.fft2(xc))[:, :, int(h / 4):int(h / 4 * 3), int(w / 4):int(w / 4 * 3)]
  return np.moveaxis(np.abs(np.fft.ifft2(np.fft.ifftshift(low))), 1, -1)


def ref_flc_dft(x: np.ndarray, strides, output: str) -> np.ndarray:
  """Direct DFT sums: y[j] = (1/M) sum over the block bins k of X[k] exp(2 pi i k.j / m), the block
  k = -floor(m/2) .. ceil(m/2) - 1 per axis."""
  spatial = x.shape[1:-1]
  outs = [n // s for n, s in zip(spatial, strides)]
  spectrum = np.fft.fftn(x.astype(np.float64), axes=tuple(range(1, x.ndim - 1)))
  y = np.zeros((x.shape[0], *outs, x.shape[-1]), np.complex128)
  blocks = [range(-(m // 2), (m + 1) // 2) for m in outs]
  grids = np.meshgrid(*[np.arange(m) for m in outs], indexing="ij")
  for ks in itertools.product(*blocks):
    coeff = spectrum[(slice(None), *(k % n for k, n in zip(ks, spatial)), slice(None))]
    phase = np.exp(2j * np.pi * sum(k * g / m for k, g, m in zip(ks, grids, outs)))
    y += coeff[:, *([None] * len(outs)), :] * phase[None, ..., None]
  y /= np.prod(outs)
  return np.abs(y) if output == "abs" else np.real(y)


def test_matches_the_authors_module():
  x = np.random.default_rng(0).standard_normal((2, 8, 12, 3)).astype(np.float32)
  np.testing.assert_allclose(np.asarray(jb.flc_pool(jnp.asarray(x))), ref_flc_authors(x), atol=1e-5)


@pytest.mark.parametrize("shape,strides,output", [((2, 12, 2), (3,), "abs"), ((2, 6, 8, 2), (2, 2), "real"),
                                                  ((1, 4, 6, 2, 2), (2, 3, 1), "abs")])
def test_matches_direct_dft(shape, strides, output):
  x = np.random.default_rng(len(shape)).standard_normal(shape).astype(np.float32)
  np.testing.assert_allclose(np.asarray(jb.flc_pool(jnp.asarray(x), strides, output)),
                             ref_flc_dft(x, strides, output), atol=1e-4)


def test_shift_properties():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 3))
  pool = jax.jit(jb.flc_pool)
  y = pool(x)
  # shifts by multiples of the stride: the output shifts exactly
  for shift in ((2, 0), (4, 6), (6, 2)):
    np.testing.assert_allclose(pool(jb.circular_shift(x, shift)), jb.circular_shift(y, (shift[0] // 2, shift[1] // 2)),
                               atol=1e-5)
  # odd shifts: the energy is kept (only phases change) but the global average of |y| is not
  y1 = pool(jb.circular_shift(x, (1, 0)))
  np.testing.assert_allclose((y1**2).sum(axis=(1, 2)), (y**2).sum(axis=(1, 2)), rtol=1e-4)
  assert float(jnp.abs(y1.mean(axis=(1, 2)) - y.mean(axis=(1, 2))).max()) > 1e-2
  # without energy at |k| >= m/2, FLC's real part is stride**rank times the ideal downsampling
  band = jb.ideal_upsample(jb.ideal_downsample(x), 2)
  np.testing.assert_allclose(jb.flc_pool(band, 2, "real"), 4 * jb.ideal_downsample(band), atol=1e-4)


def test_dtypes_jit_grad_vmap_layer():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 4, 6, 2))
  g = jax.jit(jax.grad(lambda v: jb.flc_pool(v, 2, "real").sum()))(x)
  np.testing.assert_allclose(g, np.ones(x.shape), rtol=1e-5)  # the output's sum is the DC bin X[0] = sum(x)
  y16 = jb.flc_pool(x.astype(jnp.bfloat16))
  assert y16.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(y16, np.float32), jb.flc_pool(x), atol=0.1)
  ys = jax.jit(jax.vmap(jb.flc_pool))(jnp.stack([x, -x]))
  np.testing.assert_allclose(ys[0], ys[1], atol=1e-5)  # |.| is even
  y, index = jb.nn.FLCPool(output="real").apply({}, jnp.zeros((1, 7, 5, 2)) + 1.0)
  assert index is None and y.shape == (1, 4, 3, 2)
  np.testing.assert_allclose(y, 4.0, rtol=1e-6)


def test_bad_input():
  with pytest.raises(ValueError, match="flc_pool needs spatial sizes divisible by the stride.*multiples of 2"):
    jb.flc_pool(jnp.zeros((1, 5, 4, 1)))
  with pytest.raises(ValueError, match="output='imag' is not supported; accepted values: 'abs', 'real'"):
    jb.flc_pool(jnp.zeros((1, 4, 4, 1)), output="imag")
  with pytest.raises(ValueError, match="stride must be >= 1"):
    jb.flc_pool(jnp.zeros((1, 4, 4, 1)), stride=-2)
  with pytest.raises(ValueError, match="output='x' is not supported"):
    jb.nn.methods.parse_flc_options(["x"])
  with pytest.raises(ValueError, match="accepted forms: 'flc', 'flc:<output>'"):
    jb.nn.methods.parse_flc_options(["abs", "2"])
