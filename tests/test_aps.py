"""Adaptive polyphase sampling against a NumPy reference, and exact circular-shift invariance of APS stacks."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxborders as jb

_ORD = {"l2": 2, "l1": 1, "linf": np.inf}


def ref_aps(x: np.ndarray, stride, norm: str, index=None):
  """Per sample, the polyphase component x[:, i::s, j::s] of largest norm (first maximum on ties); phases
  enumerated with the first offset fastest, as the official APS code lists (0,0), (1,0), (0,1), (1,1)."""
  rank = x.ndim - 2
  strides = (stride,) * rank if isinstance(stride, int) else tuple(stride)
  phases = [phase[::-1] for phase in itertools.product(*(range(s) for s in strides[::-1]))]
  comps = [x[(slice(None), *(slice(p, None, s) for p, s in zip(phase, strides)), slice(None))] for phase in phases]
  if index is None:
    index = np.array([int(np.argmax([np.linalg.norm(c[b].astype(np.float64).ravel(), _ORD[norm]) for c in comps]))
                      for b in range(x.shape[0])])
  y = np.stack([comps[index[b]][b] for b in range(x.shape[0])])
  return y, np.asarray(index)


_SHAPES = {1: (5, 12, 3), 2: (5, 8, 6, 3), 3: (4, 4, 6, 8, 2)}
_STRIDES = {1: (2, 3), 2: (2, (1, 2), (2, 3)), 3: (2, (1, 2, 2))}


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_aps_pool_matches_numpy(rank):
  rng = np.random.default_rng(rank)
  x = rng.standard_normal(_SHAPES[rank]).astype(np.float32)
  x[1] *= np.linspace(0.1, 3.0, x[1].size).reshape(x[1].shape)  # uneven energy: a clear winner
  cases = []
  for stride, norm in itertools.product(dict.fromkeys(_STRIDES[rank]), jb.APS_NORMS):
    phases = int(np.prod((stride,) * rank if isinstance(stride, int) else stride))
    cases.append((stride, norm, None))
    cases.append((stride, norm, rng.integers(0, phases, size=x.shape[0]).astype(np.int32)))

  @jax.jit
  def run_all(x, indices):
    return [jb.aps_pool(x, s, n, index=i) for (s, n, _), i in zip(cases, indices)]

  outs = run_all(x, [c[2] for c in cases])
  for (y, index), (stride, norm, given) in zip(outs, cases):
    y_ref, index_ref = ref_aps(x, stride, norm, given)
    msg = f"stride={stride} norm={norm} index={'given' if given is not None else 'chosen'}"
    assert index.dtype == jnp.int32 and index.shape == (x.shape[0],), msg
    np.testing.assert_array_equal(np.asarray(index), index_ref, err_msg=msg)
    np.testing.assert_array_equal(np.asarray(y), y_ref, err_msg=msg)


def test_norms_choose_differently():
  # One component holds a single large value, another many medium ones: linf, l2 and l1 disagree.
  x = np.zeros((1, 4, 4, 1), np.float32)
  x[0, 0::2, 1::2] = 1.0          # component 2 (phase (0, 1)): four ones -> l1 4, l2 2, linf 1
  x[0, 1, 0] = 1.8                # component 1 (phase (1, 0)): one 1.8 -> l1 1.8, l2 1.8, linf 1.8
  x[0, 1::2, 1::2] = 0.9          # component 3: four 0.9 -> l1 3.6, l2 1.8, linf 0.9
  x[0, 0, 0], x[0, 2, 2] = 1.5, 1.5  # component 0: l1 3, l2 2.12, linf 1.5
  expected = {"l1": 2, "l2": 0, "linf": 1}
  for norm, idx in expected.items():
    _, index = jb.aps_pool(jnp.asarray(x), norm=norm)
    assert int(index[0]) == idx, norm
    assert int(ref_aps(x, 2, norm)[1][0]) == idx, norm


def test_index_order_is_the_official_one_first_offset_fastest():
  # 2D stride 2: the official list (0,0), (1,0), (0,1), (1,1): index = row phase + 2 * column phase.
  for (i, j) in itertools.product(range(2), range(2)):
    x = jnp.zeros((1, 6, 4, 1)).at[0, 2 + i, j, 0].set(1.0)
    y, index = jb.aps_pool(x)
    assert int(index[0]) == i + 2 * j
    assert float(y[0, 1, 0, 0]) == 1.0
  # 3D, stride (1, 2, 2): the depth phase is fixed at 0, so index = row phase + 2 * column phase.
  x = jnp.zeros((1, 2, 4, 4, 1)).at[0, 1, 3, 2, 0].set(1.0)
  assert int(jb.aps_pool(x, (1, 2, 2))[1][0]) == 1
  # 3D, stride 2: depth fastest, then rows, then columns.
  for phase in itertools.product(range(2), repeat=3):
    x = jnp.zeros((1, 4, 4, 4, 1)).at[(0, *phase, 0)].set(1.0)
    assert int(jb.aps_pool(x, 2)[1][0]) == phase[0] + 2 * phase[1] + 4 * phase[2], phase
  # stride 3 in 1D: phase 2 is index 2.
  assert int(jb.aps_pool(jnp.zeros((1, 9, 1)).at[0, 5, 0].set(1.0), 3)[1][0]) == 2
  # stride (2, 3): index = row phase + 2 * column phase.
  x = jnp.zeros((1, 4, 6, 1)).at[0, 1, 2, 0].set(1.0)
  assert int(jb.aps_pool(x, (2, 3))[1][0]) == 1 + 2 * 2
  comps = jb.polyphase_components(jnp.arange(16.).reshape(1, 4, 4, 1))
  np.testing.assert_array_equal(np.asarray(comps[0, 1, ..., 0]), np.arange(16.).reshape(4, 4)[1::2, 0::2])
  np.testing.assert_array_equal(np.asarray(comps[0, 2, ..., 0]), np.arange(16.).reshape(4, 4)[0::2, 1::2])


def test_exact_ties_keep_the_first_component_in_official_order():
  # Components (1,0) and (0,1) tie exactly (same values, other positions); (0,0) and (1,1) are zero: the official
  # order lists (1,0) first, so it wins (a row-major order would pick (0,1)).
  x = np.zeros((1, 4, 4, 1), np.float32)
  x[0, 1, 0], x[0, 0, 1] = 2.0, 2.0
  for norm in jb.APS_NORMS:
    y, index = jb.aps_pool(jnp.asarray(x), norm=norm)
    assert int(index[0]) == 1, norm
    np.testing.assert_array_equal(np.asarray(y[0, ..., 0]), x[0, 1::2, 0::2, 0])
  # All four tie: the first, (0,0).
  assert int(jb.aps_pool(jnp.ones((2, 4, 4, 3)))[1][0]) == 0


def test_index_reuse_aligns_branches():
  x = jnp.asarray(np.random.default_rng(0).standard_normal((3, 8, 8, 4)), jnp.float32)
  y, index = jb.aps_pool(x)
  other = x * 2 + 1  # a "shortcut" branch with different content reuses the main branch's choice
  y2, index2 = jb.aps_pool(other, index=index)
  np.testing.assert_array_equal(np.asarray(index2), np.asarray(index))
  np.testing.assert_allclose(np.asarray(y2), np.asarray(y) * 2 + 1, rtol=1e-6)


# --------------------------------------------------------------------------------------------------------------
# Exact circular-shift invariance


def _network(downsample, blur: bool):
  rng = np.random.default_rng(11)
  chans = (3, 8, 8, 8)
  ws = [jnp.asarray(rng.standard_normal((3, 3, a, b)).astype(np.float32) / 3) for a, b in zip(chans, chans[1:])]

  @jax.jit
  def f(x):
    for w in ws:  # 16 -> 8 -> 4 -> 2
      x = jax.nn.relu(jb.conv(x, w, "circular"))
      if blur:
        x = jb.blur_pool(x, size=3, stride=1, pad_mode="circular")
      x = downsample(x)
    return x.mean(axis=(1, 2))  # global average pool

  return f


def _all_shifts(x: np.ndarray) -> np.ndarray:
  h, w = x.shape[1:3]
  return np.concatenate([np.roll(x, (i, j), axis=(1, 2)) for i in range(h) for j in range(w)])


@pytest.mark.parametrize("blur", [False, True])
def test_aps_stack_is_exactly_circular_shift_invariant(blur):
  x = np.random.default_rng(12).standard_normal((1, 16, 16, 3)).astype(np.float32)
  xs = _all_shifts(x)  # all 256 circular shifts in one batch
  out = np.asarray(_network(lambda x: jb.aps_pool(x)[0], blur)(xs))
  scale = np.abs(out[0]).max()
  assert scale > 1e-2
  np.testing.assert_allclose(out, np.broadcast_to(out[0], out.shape), rtol=0, atol=1e-5 * scale)


def test_plain_subsampling_stack_is_not_invariant():
  x = np.random.default_rng(12).standard_normal((1, 16, 16, 3)).astype(np.float32)
  out = np.asarray(_network(lambda x: x[:, ::2, ::2], False)(_all_shifts(x)))
  error = np.abs(out - out[0]).max() / np.abs(out[0]).max()
  assert error > 0.05, error


# --------------------------------------------------------------------------------------------------------------
# Bad input


def test_aps_pool_bad_input(monkeypatch):
  from jaxborders.ops import aps

  def traced(*args, **kwargs):
    raise AssertionError("validation must happen before the jitted kernel is traced")

  monkeypatch.setattr(aps, "_aps_pool", traced)
  x = jnp.zeros((2, 8, 8, 3))
  bad = [
      (jnp.zeros((2, 7, 8, 3)), {}, "divisible by the stride.*size 7"),
      (jnp.zeros((2, 8, 9, 3)), {}, "divisible by the stride.*size 9"),
      (x, dict(stride=3), "divisible by the stride"),
      (x, dict(norm="l3"), "norm=.*'l2', 'l1', 'linf'"),
      (x, dict(stride=0), "stride"),
      (x, dict(stride=(2, 2, 2)), "stride"),
      (x, dict(index=jnp.zeros((3,), jnp.int32)), r"index must be .*shape \(2,\)"),
      (x, dict(index=jnp.zeros((2, 1), jnp.int32)), "index must be"),
      (x, dict(index=jnp.zeros((2,), jnp.float32)), "index must be .*int"),
      (jnp.zeros((8, 8)), {}, "x must be"),
  ]
  for arr, kwargs, match in bad:
    with pytest.raises(ValueError, match=match):
      jb.aps_pool(arr, **kwargs)
    with pytest.raises(ValueError, match=match):  # also from inside a jitted wrapper
      jax.jit(lambda a: jb.aps_pool(a, **kwargs))(arr)
