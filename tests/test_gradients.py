"""Gradients of every op against finite differences (float64, tiny shapes).

Reverse mode is what training uses, so every op is checked in reverse mode; conv, blur_pool (custom JVP with a
hand-written adjoint) and aps_pool are checked in forward mode too (Hessians: tests/test_conv_impl.py).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxborders as jb


@pytest.fixture(autouse=True)
def float64():
  with jax.enable_x64(True):
    yield


def _rand(seed: int, shape) -> jax.Array:
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float64)


def _concat(outputs) -> jax.Array:
  """Several ops checked in one function (one compilation): a wrong gradient in any of them shows up."""
  return jnp.concatenate([o.ravel() for o in outputs])


def test_conv_gradients():
  x, w = _rand(0, (2, 5, 6, 2)), _rand(1, (3, 2, 2, 4))
  assert x.dtype == jnp.float64
  f = jax.jit(lambda x, w: _concat([jb.conv(x, w, m, strides=(2, 1), dilation=(1, 2)) for m in jb.MODES]))
  check_grads(f, (x, w), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)
  # Grouped (depthwise) conv, 1D, every mode, stride 1.
  x1, w1 = _rand(2, (2, 7, 2)), _rand(3, (3, 1, 4))
  g = jax.jit(lambda x, w: _concat([jb.conv(x, w, m, feature_group_count=2) for m in jb.MODES]))
  check_grads(g, (x1, w1), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("mode", ["valid", "same", "circular", "reflect", "replicate", "full", "partial"])
def test_conv_gradient_per_mode(mode):
  """Each mode alone too, so that a failure names the mode (cheap: one tiny 1D conv)."""
  x, w = _rand(8, (1, 6, 1)), _rand(9, (3, 1, 2))
  check_grads(jax.jit(lambda x, w: jb.conv(x, w, mode, strides=2)), (x, w), order=1, modes=("fwd", "rev"),
              atol=1e-6, rtol=1e-6)


def test_blur_pool_gradients():
  x = _rand(4, (2, 7, 6, 2))
  cases = [(m, (3, 4)[i % 2], (2, (1, 2))[i % 2]) for i, m in enumerate(jb.BLUR_PAD_MODES)]
  f = jax.jit(lambda x: _concat([jb.blur_pool(x, size=f, stride=s, pad_mode=m) for m, f, s in cases]))
  assert f(x).dtype == jnp.float64
  check_grads(f, (x,), order=1, modes=("fwd", "rev"), atol=1e-6, rtol=1e-6)
  x3 = _rand(5, (1, 4, 5, 6, 1))  # 3D, video-style stride
  check_grads(jax.jit(lambda x: jb.blur_pool(x, size=3, stride=(1, 2, 2))), (x3,), order=1, modes=("rev",),
              atol=1e-6, rtol=1e-6)


def test_max_blur_pool_gradients():
  x = _rand(6, (2, 7, 6, 2))  # continuous random values: no ties inside a max window
  f = jax.jit(lambda x: _concat([jb.max_blur_pool(x, pad_mode=m) for m in ("reflect", "zero")]))
  check_grads(f, (x,), order=1, modes=("rev",), atol=1e-6, rtol=1e-6, eps=1e-6)


def test_aps_pool_gradients():
  x = _rand(7, (3, 6, 4, 2))
  index = jnp.asarray([0, 3, 2], jnp.int32)
  f = jax.jit(lambda x: jb.aps_pool(x, index=index)[0])
  check_grads(f, (x,), order=1, modes=("fwd", "rev"), atol=1e-6, rtol=1e-6)
  # Without a given index the choice is piecewise constant, so away from ties the gradient is that of the
  # chosen component too.
  g = jax.jit(lambda x: jb.aps_pool(x, norm="l1")[0])
  check_grads(g, (x,), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)
  # Cotangents land only on the chosen component.
  grad = jax.grad(lambda x: f(x).sum())(x)
  mask = np.zeros(x.shape)
  for b, (i, j) in enumerate([(0, 0), (1, 1), (0, 1)]):  # components 0, 3, 2: first offset fastest
    mask[b, i::2, j::2] = 1
  np.testing.assert_array_equal(np.asarray(grad), mask)
