"""Content-adaptive anti-aliasing against a NumPy loop restatement of the authors' layer."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxborders as jb

_NP_PAD = {"reflect": "reflect", "replicate": "edge", "circular": "wrap", "same": "constant"}


def ref_adaptive(x: np.ndarray, logits: np.ndarray, size: int, strides, groups: int, pad_mode: str,
                 normalize: str) -> np.ndarray:
  """Loops over samples, kept positions and channels: softmax the logits, weigh the window, sum."""
  rank = x.ndim - 2
  xp = np.pad(x.astype(np.float64), [(0, 0)] + [(size // 2, size // 2)] * rank + [(0, 0)], mode=_NP_PAD[pad_mode])
  outs = [-(-n // s) for n, s in zip(x.shape[1:-1], strides)]
  taps = size**rank
  y = np.zeros((x.shape[0], *outs, x.shape[-1]))
  per_group = x.shape[-1] // groups
  for b in range(x.shape[0]):
    for pos in itertools.product(*(range(m) for m in outs)):
      z = logits[(b, *pos)].astype(np.float64)
      if normalize == "group":
        z = z.reshape(groups, taps)
        w = np.exp(z - z.max(axis=1, keepdims=True))
        w /= w.sum(axis=1, keepdims=True)
      else:
        w = np.exp(z - z.max())
        w = (w / w.sum()).reshape(groups, taps)
      start = [p * s for p, s in zip(pos, strides)]
      window = xp[(b, *(slice(a, a + size) for a in start))].reshape(taps, x.shape[-1])
      for c in range(x.shape[-1]):
        y[(b, *pos, c)] = window[:, c] @ w[c // per_group]
  return y


_CASES = [  # shape, size, strides, groups, pad_mode, normalize
    ((2, 9, 4), 3, (3,), 2, "reflect", "group"),
    ((1, 7, 5, 4), 3, (2, 2), 2, "circular", "all"),
    ((2, 6, 6, 2), 5, (2, 1), 1, "same", "group"),
    ((1, 4, 3, 4, 2), 3, (2, 2, 2), 2, "replicate", "group"),
]


@pytest.mark.parametrize("shape,size,strides,groups,pad_mode,normalize", _CASES)
def test_matches_numpy_loops(shape, size, strides, groups, pad_mode, normalize):
  rng = np.random.default_rng(len(shape) + size)
  x = rng.standard_normal(shape).astype(np.float32)
  outs = [-(-n // s) for n, s in zip(shape[1:-1], strides)]
  logits = (2 * rng.standard_normal((shape[0], *outs, groups * size ** (len(shape) - 2)))).astype(np.float32)
  got = jb.adaptive_blur_pool(jnp.asarray(x), jnp.asarray(logits), size, strides, groups, pad_mode, normalize)
  np.testing.assert_allclose(np.asarray(got), ref_adaptive(x, logits, size, strides, groups, pad_mode, normalize),
                             rtol=1e-5, atol=1e-5)


def ref_conv_at(x: np.ndarray, kernel: np.ndarray, strides, pad_mode: str) -> np.ndarray:
  """The logit conv evaluated only at the kept positions, by loops."""
  size = kernel.shape[0]
  xp = np.pad(x.astype(np.float64), [(0, 0), (size // 2, size // 2), (size // 2, size // 2), (0, 0)],
              mode=_NP_PAD[pad_mode])
  outs = [-(-n // s) for n, s in zip(x.shape[1:-1], strides)]
  y = np.zeros((x.shape[0], *outs, kernel.shape[-1]))
  for b, i, j in itertools.product(range(x.shape[0]), range(outs[0]), range(outs[1])):
    window = xp[b, i * strides[0]:i * strides[0] + size, j * strides[1]:j * strides[1] + size]
    y[b, i, j] = np.einsum("uvc,uvco->o", window, kernel)
  return y


def test_layer_is_conv_batchnorm_softmax_filter():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 7, 6, 4))
  layer = jb.nn.AdaptiveBlurPool(size=3, groups=2)
  variables = layer.init(jax.random.PRNGKey(1), x)
  kernel = np.asarray(variables["params"]["kernel"])
  assert kernel.shape == (3, 3, 4, 18)
  y, index = jax.jit(lambda v, x: layer.apply(v, x))(variables, x)
  # inference BatchNorm with fresh statistics: (z - 0) / sqrt(1 + eps)
  logits = ref_conv_at(np.asarray(x), kernel, (2, 2), "reflect") / np.sqrt(1 + 1e-5)
  assert index is None
  np.testing.assert_allclose(np.asarray(y), ref_adaptive(np.asarray(x), logits, 3, (2, 2), 2, "reflect", "group"),
                             rtol=1e-4, atol=1e-5)
  # training updates the batch statistics and every parameter gets a gradient
  def loss(params):
    out, updates = layer.apply({**variables, "params": params}, x, True, mutable=["batch_stats"])
    return (out[0] ** 2).sum(), updates
  grads, updates = jax.jit(jax.grad(loss, has_aux=True))(variables["params"])
  assert all(float(jnp.abs(g).sum()) > 0 for g in jax.tree.leaves(grads))
  assert float(jnp.abs(updates["batch_stats"]["BatchNorm_0"]["mean"]).sum()) > 0
  # circular windows and conv from a circular conv_mode; bfloat16 runs
  circ = jb.nn.AdaptiveBlurPool(conv_mode="circular", groups=4)
  assert circ.border == "circular" and jb.nn.AdaptiveBlurPool(conv_mode=("circular", "same")).border == "reflect"
  y16, _ = circ.apply(circ.init(jax.random.PRNGKey(2), x), x.astype(jnp.bfloat16))
  assert y16.dtype == jnp.bfloat16 and y16.shape == (2, 4, 3, 4)


def test_kernels_are_low_pass_and_stride_one_circular_is_shift_equivariant():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 6, 8, 4))
  k = jax.random.normal(jax.random.PRNGKey(1), (3, 3, 4, 18))

  def pool(x, normalize="group"):
    logits = jb.conv(x, k, "circular")
    return jb.adaptive_blur_pool(x, logits, 3, 1, 2, "circular", normalize)

  pool = jax.jit(pool, static_argnames="normalize")
  ones = jnp.ones_like(x)
  np.testing.assert_allclose(pool(ones), ones, rtol=1e-6)  # every predicted kernel sums to one
  assert float(pool(ones, "all").max()) < 1  # the authors' joint softmax: each group's taps sum to less
  shifted = jax.vmap(lambda s: pool(jb.circular_shift(x, s)))(jnp.array([(1, 0), (0, 3), (5, 7)]))
  want = jax.vmap(lambda s: jb.circular_shift(pool(x), s))(jnp.array([(1, 0), (0, 3), (5, 7)]))
  np.testing.assert_allclose(shifted, want, rtol=1e-5, atol=1e-5)


def test_bad_input():
  x = jnp.zeros((1, 6, 6, 4))
  logits = jnp.zeros((1, 3, 3, 18))
  with pytest.raises(ValueError, match="size=4 is not supported; accepted sizes: odd ints"):
    jb.adaptive_blur_pool(x, logits, 4)
  with pytest.raises(ValueError, match="groups=3 must divide the 4 input channels"):
    jb.adaptive_blur_pool(x, logits, 3, groups=3)
  with pytest.raises(ValueError, match="pad_mode='full' is not supported; accepted values: 'reflect'"):
    jb.adaptive_blur_pool(x, logits, pad_mode="full")
  with pytest.raises(ValueError, match="normalize='none' is not supported; accepted values: 'group', 'all'"):
    jb.adaptive_blur_pool(x, logits, normalize="none")
  with pytest.raises(ValueError, match="logits must have shape \\(1, 3, 3, 18\\)"):
    jb.adaptive_blur_pool(x, logits[..., :9])
  with pytest.raises(ValueError, match="size=2 is not supported"):
    jb.nn.AdaptiveBlurPool(size=2)
  with pytest.raises(ValueError, match="groups=3 must divide the 4 input channels"):
    layer = jb.nn.AdaptiveBlurPool(groups=3)
    layer.init(jax.random.PRNGKey(0), x)
  assert jb.nn.methods.parse_adaptive_options(["5", "4"]) == {"size": 5, "groups": 4}
  with pytest.raises(ValueError, match="size must be an int, got 'x'"):
    jb.nn.methods.parse_adaptive_options(["x"])
  with pytest.raises(ValueError, match="accepted forms: 'adaptive', 'adaptive:<size>', 'adaptive:<size>:<groups>'"):
    jb.nn.methods.parse_adaptive_options(["3", "2", "1"])
