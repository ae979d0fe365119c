"""Learnable polyphase sampling against NumPy restatements, and its exact shift invariance / equivariance."""

from __future__ import annotations

import itertools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxborders as jb


def ref_components(x: np.ndarray, strides) -> list[np.ndarray]:
  """The polyphase components in the official APS order: the first axis's offset varies fastest."""
  phases = [p[::-1] for p in itertools.product(*(range(s) for s in strides[::-1]))]
  return [x[(slice(None), *(slice(p, None, s) for p, s in zip(phase, strides)), slice(None))] for phase in phases]


def ref_circular_conv(x: np.ndarray, w: np.ndarray) -> np.ndarray:
  """Cross-correlation with wrap-around, centred window: sum_t w[t] x[i + t - k//2]."""
  rank = x.ndim - 2
  out = 0.0
  for offset in itertools.product(*(range(k) for k in w.shape[:rank])):
    shifted = np.roll(x, [-(o - k // 2) for o, k in zip(offset, w.shape)], axis=tuple(range(1, rank + 1)))
    out = out + shifted @ w[offset]
  return out


def ref_logits(x, scorer, strides):
  rows = []
  for comp in ref_components(x.astype(np.float64), strides):
    h = np.maximum(ref_circular_conv(comp, np.asarray(scorer.w1, np.float64)) + np.asarray(scorer.b1), 0)
    h = ref_circular_conv(h, np.asarray(scorer.w2, np.float64)) + np.asarray(scorer.b2)
    rows.append(h.reshape(x.shape[0], -1).mean(axis=1))
  return np.stack(rows, axis=1)


def random_scorer(key, rank, c, h, k=3):
  k1, k2, k3, k4 = jax.random.split(key, 4)
  return jb.LpsScorer(jax.random.normal(k1, (k,) * rank + (c, h)) / 3, jax.random.normal(k2, (h,)) / 3,
                      jax.random.normal(k3, (k,) * rank + (h, h)) / 3, jax.random.normal(k4, (h,)) / 3)


_CASES = [(1, (3, 12, 2), 3), (2, (2, 4, 6, 2), (2, 3)),
          pytest.param(3, (2, 4, 4, 2, 1), (2, 2, 1), marks=pytest.mark.slow)]  # 3D: compile-heavy, LPU covers 3D


@pytest.mark.parametrize("rank,shape,stride", _CASES)
def test_logits_and_selection_match_numpy(rank, shape, stride):
  strides = (stride,) * rank if isinstance(stride, int) else stride
  x = np.random.default_rng(rank).standard_normal(shape).astype(np.float32)
  scorer = random_scorer(jax.random.PRNGKey(rank), rank, shape[-1], 3)
  logits = jb.lps_logits(jnp.asarray(x), scorer, strides)
  np.testing.assert_allclose(np.asarray(logits), ref_logits(x, scorer, strides), rtol=1e-5, atol=1e-5)
  comps = ref_components(x, strides)
  y, index = jb.lps_pool(jnp.asarray(x), logits, strides)
  want = np.argmax(np.asarray(logits), axis=1)
  np.testing.assert_array_equal(np.asarray(index), want)
  np.testing.assert_array_equal(np.asarray(y), np.stack([comps[want[b]][b] for b in range(shape[0])]))
  # soft selections: the convex combination of the components with NumPy's softmax weights
  key = jax.random.PRNGKey(7)
  noise = np.asarray(jax.random.gumbel(key, logits.shape, jnp.float32), np.float64)
  for selection, tau, g in (("softmax", 0.5, 0.0), ("gumbel", 2.0, noise)):
    z = (np.asarray(logits, np.float64) + g) / tau
    w = np.exp(z - z.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    y, weights = jb.lps_pool(jnp.asarray(x), logits, strides, selection, key, tau)
    np.testing.assert_allclose(np.asarray(weights), w, rtol=1e-5, atol=1e-6)
    ref = sum(comps[p] * w[:, p].reshape(-1, *([1] * (x.ndim - 1))) for p in range(len(comps)))
    np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-5, atol=1e-5)


def test_ties_index_reuse_and_straight_through():
  x = jnp.arange(2 * 4 * 4 * 1.0).reshape(2, 4, 4, 1)
  logits = jnp.array([[1.0, 5.0, 5.0, 0.0], [2.0, 2.0, 2.0, 2.0]])  # ties: the lowest index wins
  y, index = jb.lps_pool(x, logits)
  assert index.tolist() == [1, 0]
  np.testing.assert_array_equal(y[0], x[0, 1::2, 0::2])  # component 1: row offset 1 (the row offset runs fastest)
  np.testing.assert_array_equal(y[1], x[1, 0::2, 0::2])
  y2, index2 = jb.lps_pool(x, None, index=index)  # a shortcut reuses the choice without logits
  np.testing.assert_array_equal(y2, y)
  # straight-through: forward is the one-hot choice, gradient is the softmax's
  def loss(lg, hard):
    return jb.lps_pool(x, lg, selection="softmax", hard=hard)[0].sum()
  lg = jnp.array([[0.1, 0.9, 0.3, 0.2], [0.0, 0.0, 1.0, 0.0]])
  np.testing.assert_array_equal(jb.lps_pool(x, lg, selection="softmax", hard=True)[0],
                                jb.lps_pool(x, lg)[0])
  np.testing.assert_allclose(jax.grad(loss)(lg, True), jax.grad(loss)(lg, False), rtol=1e-6)
  assert float(jnp.abs(jax.grad(loss)(lg, True)).sum()) > 0


def ref_unpool(y, weights, strides):
  rank = y.ndim - 2
  out = np.zeros((y.shape[0], *(n * s for n, s in zip(y.shape[1:-1], strides)), y.shape[-1]), y.dtype)
  for p, phase in enumerate(q[::-1] for q in itertools.product(*(range(s) for s in strides[::-1]))):
    sl = (slice(None), *(slice(o, None, s) for o, s in zip(phase, strides)), slice(None))
    out[sl] += y * weights[:, p].reshape(-1, *([1] * (rank + 1)))
  return out


@pytest.mark.parametrize("rank,stride", [(1, (3,)), (2, (2, 3)), (3, (2, 1, 2))])
def test_unpool_matches_numpy(rank, stride):
  rng = np.random.default_rng(0)
  y = rng.standard_normal((3, *([3] * rank), 2)).astype(np.float32)
  p = int(np.prod(stride))
  index = np.array([0, p - 1, p // 2], np.int32)
  np.testing.assert_array_equal(np.asarray(jb.lps_unpool(jnp.asarray(y), index, stride)),
                                ref_unpool(y, np.eye(p, dtype=np.float32)[index], stride))
  weights = rng.dirichlet(np.ones(p), size=3).astype(np.float32)
  np.testing.assert_allclose(np.asarray(jb.lps_unpool(jnp.asarray(y), weights, stride)),
                             ref_unpool(y, weights, stride), rtol=1e-6)


class CircularLpsNet(nn.Module):
  """conv -> relu -> blur + LPS -> conv -> relu -> LPS -> global mean, all circular: exactly shift invariant."""

  @nn.compact
  def __call__(self, x, train=False):
    x = nn.relu(jb.nn.Conv(4, 3, mode="circular")(x))
    x, _ = jb.nn.LPSPool(hidden=3, blur_size=3)(x, train)
    x = nn.relu(jb.nn.Conv(4, 3, mode="circular")(x))
    x, _ = jb.nn.LPSPool(hidden=3)(x, train)
    return x.mean(axis=(1, 2))


def test_circular_stack_is_exactly_shift_invariant_for_any_weights():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 3))
  shifts = np.array([(0, 0), (1, 0), (0, 1), (1, 1), (2, 3), (3, 2), (5, 7), (7, 6)])  # every phase of both LPS
  net = CircularLpsNet()
  shifted_outputs = jax.jit(jax.vmap(lambda p, s: net.apply(p, jb.circular_shift(x, s)), in_axes=(None, 0)))
  for seed in (1, 2):
    out = shifted_outputs(net.init(jax.random.PRNGKey(seed), x), shifts)
    np.testing.assert_allclose(out, np.broadcast_to(out[0], out.shape), rtol=1e-5, atol=1e-6)
  # the test can fail: a nonlinear global feature of plain stride-2 subsampling changes with the shift
  plain = jax.vmap(lambda s: (jb.circular_shift(x, s)[:, ::2, ::2] ** 3).mean(axis=(1, 2)))(shifts)
  assert float(jnp.abs(plain - plain[0]).max()) > 1e-2


def test_lpu_after_lpd_is_shift_equivariant():
  x = jax.random.normal(jax.random.PRNGKey(3), (2, 6, 8, 2))
  scorer = random_scorer(jax.random.PRNGKey(4), 2, 2, 3)

  def down_up(x):
    y, index = jb.lps_pool(x, jb.lps_logits(x, scorer))
    return jb.lps_unpool(y, index)

  shifts = np.array([(0, 0), (1, 0), (0, 1), (1, 1), (4, 5), (5, 2)])
  got = jax.jit(jax.vmap(lambda s: down_up(jb.circular_shift(x, s))))(shifts)
  want = jax.vmap(lambda s: jb.circular_shift(down_up(x), s))(shifts)
  np.testing.assert_array_equal(got, want)


def test_layer_train_mode_shortcut_grad_vmap_bf16():
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 6, 6, 3))
  layer = jb.nn.LPSPool(hidden=4)
  params = layer.init(jax.random.PRNGKey(1), x)
  with pytest.raises(ValueError, match="rngs"):
    layer.apply(params, x, True)
  y, weights = layer.apply(params, x, True, rngs={"dropout": jax.random.PRNGKey(2)})
  assert y.shape == (2, 3, 3, 3) and weights.shape == (2, 4)
  np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6)
  y_short, _ = layer.apply(params, x, True, weights)  # shortcut: same weights, no new sample
  np.testing.assert_allclose(y_short, y, rtol=1e-6)
  # gradients reach the scorer in training, and x in every mode
  def loss(p, x):
    return (layer.apply(p, x, True, rngs={"dropout": jax.random.PRNGKey(2)})[0] ** 2).sum()
  g_params, g_x = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, x)
  assert all(float(jnp.abs(g).sum()) > 0 for g in jax.tree.leaves(g_params))
  assert float(jnp.abs(g_x).sum()) > 0
  # vmap over an extra batch axis equals separate calls; bfloat16 runs and picks the float32 choice
  ys, idx = jax.vmap(lambda xi: layer.apply(params, xi))(jnp.stack([x, x[::-1]]))
  np.testing.assert_array_equal(ys[1], ys[0][::-1])
  np.testing.assert_array_equal(ys[0], layer.apply(params, x)[0])
  y16, i16 = layer.apply(params, x.astype(jnp.bfloat16))
  assert y16.dtype == jnp.bfloat16
  np.testing.assert_array_equal(i16, idx[0])


def test_odd_sizes_are_padded_by_the_layer_and_rejected_by_the_op():
  x = jax.random.normal(jax.random.PRNGKey(0), (1, 7, 5, 2))
  layer = jb.nn.LPSPool()
  y, _ = layer.apply(layer.init(jax.random.PRNGKey(1), x), x)
  assert y.shape == (1, 4, 3, 2)
  with pytest.raises(ValueError, match="lps_pool needs spatial sizes divisible by the stride.*multiples of 2"):
    jb.lps_pool(x, jnp.zeros((1, 4)))


def test_bad_input():
  x = jnp.zeros((2, 4, 4, 1))
  with pytest.raises(ValueError, match="selection='max' is not supported; accepted values: 'argmax', 'gumbel'"):
    jb.lps_pool(x, jnp.zeros((2, 4)), selection="max")
  with pytest.raises(ValueError, match="logits must have shape \\(2, 4\\)"):
    jb.lps_pool(x, jnp.zeros((2, 3)))
  with pytest.raises(ValueError, match="index must be an int array of shape \\(2,\\)"):
    jb.lps_pool(x, index=jnp.zeros((2, 3)))
  with pytest.raises(ValueError, match="stride must be >= 1"):
    jb.lps_pool(x, jnp.zeros((2, 1)), stride=0)
  with pytest.raises(ValueError, match="key"):
    jb.lps_pool(x, jnp.zeros((2, 4)), selection="gumbel")
  with pytest.raises(ValueError, match="selection='argmax' is not supported; accepted values: 'gumbel', 'softmax'"):
    jb.nn.LPSPool(selection="argmax")
  with pytest.raises(ValueError, match="accepted forms: 'lps', 'lps:<blur_size>'"):
    jb.nn.methods.parse_lps_options(["3", "l2"])
  with pytest.raises(ValueError, match="size=9 is not available"):
    jb.nn.methods.parse_lps_options(["9"])
  assert jb.nn.methods.parse_lps_options([]) == {}


def test_lps_resnet18_is_invariant_to_every_circular_shift():
  """The authors' placement (stem conv at stride 1, LPS after it and after the dense pool, the shortcut reusing
  the main branch's choice) with circular borders: inference logits equal for circular shifts of a 16×16 input
  that cover every phase of its four stride-2 steps; a shift that fills with zeros instead of wrapping changes
  them (the check can fail)."""
  from jaxborders.models import get_model
  n = 16
  x = np.random.default_rng(3).standard_normal((1, n, n, 3)).astype(np.float32)
  zero_filled = np.pad(x[:, :-3, :-5], ((0, 0), (3, 0), (5, 0), (0, 0)))
  shifts = [(0, 0), (1, 0), (0, 1), (1, 1), (2, 3), (3, 6), (5, 12), (7, 7), (8, 1), (11, 14), (15, 9)]
  xs = jnp.asarray(np.concatenate([np.roll(x, s, axis=(1, 2)) for s in shifts] + [zero_filled]))
  model = get_model("resnet18", conv_mode="circular", antialias="lps", num_classes=4, width=8)
  variables = model.init(jax.random.key(0), xs[:1])
  logits = np.asarray(jax.jit(model.apply)(variables, xs))
  scale = np.abs(logits[0]).max()
  assert np.abs(logits[:-1] - logits[:1]).max() / scale < 1e-5  # every circular shift: float rounding only
  assert np.abs(logits[-1] - logits[0]).max() / scale > 1e-2
