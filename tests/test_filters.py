"""BlurPool against an independent NumPy implementation of docs/antialiasing.md, and against PyTorch.

The reference taps are docs/antialiasing.md's table typed in again; padding, the outer-product filter and the subsampling
are written here with ``np.pad`` and explicit loops. Many settings share one jitted function so that the
whole sweep costs a few compilations.
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jaxborders as jb

# docs/antialiasing.md (BlurPool paper Table 1), un-normalised.
SPEC_TAPS = {
    ("binomial", 1): [1], ("binomial", 2): [1, 1], ("binomial", 3): [1, 2, 1], ("binomial", 4): [1, 3, 3, 1],
    ("binomial", 5): [1, 4, 6, 4, 1], ("binomial", 6): [1, 5, 10, 10, 5, 1],
    ("binomial", 7): [1, 6, 15, 20, 15, 6, 1],
    ("triangle", 3): [1, 2, 1], ("triangle", 5): [1, 2, 3, 2, 1], ("triangle", 7): [1, 2, 3, 4, 3, 2, 1],
    ("window", 3): [1, 1.57, 1], ("window", 6): [-1, 1.67, 5, 5, 1.67, -1],
    ("window", 7): [-1, 0, 3, 4.71, 3, 0, -1],
    ("least_squares", 3): [1, 1.63, 1], ("least_squares", 7): [-1, 0, 3.80, 6.13, 3.80, 0, -1],
    **{("rectangle", n): [1] * n for n in range(1, 8)},
}
_NP_PAD = {"reflect": "reflect", "replicate": "edge", "zero": "constant", "full": "constant", "circular": "wrap"}


def ref_blur_pool(x: np.ndarray, size: int, stride, pad_mode: str, pad_off: int = 0,
                  kind: str = "binomial") -> np.ndarray:
  rank = x.ndim - 2
  strides = (stride,) * rank if isinstance(stride, int) else tuple(stride)
  taps = np.asarray(SPEC_TAPS[(kind, size)], np.float64)
  taps = taps / taps.sum()
  if pad_mode == "full":
    lo = hi = size - 1 + pad_off
  else:
    lo, hi = (size - 1) // 2 + pad_off, math.ceil((size - 1) / 2) + pad_off
  xp = np.pad(x.astype(np.float64), [(0, 0), *[(lo, hi)] * rank, (0, 0)], mode=_NP_PAD[pad_mode])
  dense = [n - size + 1 for n in xp.shape[1:-1]]
  out = np.zeros((x.shape[0], *dense, x.shape[-1]))
  for t in itertools.product(range(size), repeat=rank):
    weight = np.prod([taps[i] for i in t])  # the 2D/3D filter is the outer product of the 1D taps
    out += weight * xp[(slice(None), *(slice(i, i + m) for i, m in zip(t, dense)), slice(None))]
  return out[(slice(None), *(slice(None, None, s) for s in strides), slice(None))]


def ref_max_pool_dense(x: np.ndarray, pool: int = 2) -> np.ndarray:
  rank = x.ndim - 2
  dense = [n - pool + 1 for n in x.shape[1:-1]]
  out = np.full((x.shape[0], *dense, x.shape[-1]), -np.inf)
  for t in itertools.product(range(pool), repeat=rank):
    out = np.maximum(out, x[(slice(None), *(slice(i, i + m) for i, m in zip(t, dense)), slice(None))])
  return out


_SHAPES = {1: (2, 13, 3), 2: (2, 9, 10, 3), 3: (1, 7, 8, 9, 2)}
_STRIDES = {1: (1, 2, 3), 2: (1, 2, (1, 2)), 3: (1, 2, (1, 2, 2))}


def _blur_cases(rank: int, exhaustive: bool):
  """(size, pad_mode, pad_off, stride) settings. The fast subset covers every size x pad mode x pad_off across
  1D and 2D (pad_off alternating in opposite phase) and a rotation in 3D, with strides rotating; the slow sweep
  takes everything."""
  full = list(itertools.product(range(1, 8), jb.BLUR_PAD_MODES, (0, 1), _STRIDES[rank]))
  if exhaustive:
    return full
  strides = _STRIDES[rank]
  pairs = list(itertools.product(range(1, 8), jb.BLUR_PAD_MODES))
  if rank in (1, 2):
    return [(f, m, (i + rank) % 2, strides[i % 3]) for i, (f, m) in enumerate(pairs)]
  return [(f, m, (i // 3) % 2, strides[1 + (i // 3) % 2]) for i, (f, m) in enumerate(pairs) if i % 3 == 0]


def _check_blur_cases(rank: int, cases) -> None:
  x = np.random.default_rng(rank).standard_normal(_SHAPES[rank]).astype(np.float32)

  @jax.jit  # one compilation for all settings
  def run_all(x):
    return [jb.blur_pool(x, size=f, stride=s, pad_mode=m, pad_off=o) for f, m, o, s in cases]

  for out, (f, m, o, s) in zip(run_all(x), cases):
    expected = ref_blur_pool(x, f, s, m, o)
    msg = f"size={f} pad_mode={m} pad_off={o} stride={s}"
    assert out.shape == expected.shape, msg
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-5, atol=1e-5, err_msg=msg)


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_blur_pool_matches_numpy(rank):
  _check_blur_cases(rank, _blur_cases(rank, exhaustive=False))


@pytest.mark.slow
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_blur_pool_matches_numpy_exhaustive(rank):
  """Every size 1-7 x pad mode x pad_off 0/1 x three strides (~45 s of compilation)."""
  _check_blur_cases(rank, _blur_cases(rank, exhaustive=True))


def test_blur_pool_filter_kinds_match_numpy():
  x = np.random.default_rng(7).standard_normal((2, 11, 12, 3)).astype(np.float32)
  cases = [(kn, ("reflect", "zero")[i % 2]) for i, kn in enumerate(sorted(SPEC_TAPS))]

  @jax.jit
  def run_all(x):
    return [jb.blur_pool(x, size=n, kind=k, pad_mode=m) for (k, n), m in cases]

  for out, ((k, n), m) in zip(run_all(x), cases):
    np.testing.assert_allclose(np.asarray(out), ref_blur_pool(x, n, 2, m, kind=k), rtol=1e-5, atol=1e-5,
                               err_msg=f"kind={k} size={n} pad_mode={m}")


def test_blur_pool_size1_is_subsampling():
  x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 9, 8, 3)), jnp.float32)
  np.testing.assert_array_equal(np.asarray(jb.blur_pool(x, size=1, stride=2)), np.asarray(x)[:, ::2, ::2])


def test_filter_taps_match_spec():
  for (kind, size), taps in SPEC_TAPS.items():
    got = jb.filter_taps(kind, size)
    assert got.shape == (size,)
    np.testing.assert_allclose(got.sum(), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got * sum(taps), taps, rtol=1e-12, atol=1e-12, err_msg=f"{kind}-{size}")
  # The whole bank the library offers sums to 1 and is symmetric (linear phase).
  for kind, sizes in jb.FILTER_SIZES.items():
    for size in sizes:
      got = jb.filter_taps(kind, size)
      np.testing.assert_allclose(got.sum(), 1.0, atol=1e-12)
      np.testing.assert_allclose(got, got[::-1], atol=1e-12)


def test_max_blur_pool_matches_numpy():
  x = np.random.default_rng(3).standard_normal((2, 10, 9, 3)).astype(np.float32)
  cases = list(itertools.product((1, 3, 4, 5), ("reflect", "zero", "full"), (1, 2)))

  @jax.jit
  def run_all(x):
    return [jb.max_blur_pool(x, pool_size=2, size=f, stride=s, pad_mode=m) for f, m, s in cases]

  for out, (f, m, s) in zip(run_all(x), cases):
    expected = ref_blur_pool(ref_max_pool_dense(x, 2), f, s, m)
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-5, atol=1e-5, err_msg=f"size={f} {m} s={s}")


def test_blur_pool_matches_torch():
  """The usual PyTorch BlurPool: reflect pad + depthwise conv2d with the outer-product filter, stride 2."""
  x = np.random.default_rng(5).standard_normal((2, 12, 11, 4)).astype(np.float32)
  x_t = torch.from_numpy(x).permute(0, 3, 1, 2)
  for size in (2, 3, 4, 5, 7):
    taps = torch.tensor(SPEC_TAPS[("binomial", size)], dtype=torch.float32)
    filt = taps[:, None] * taps[None, :]
    filt = (filt / filt.sum())[None, None].repeat(4, 1, 1, 1)
    lo, hi = (size - 1) // 2, math.ceil((size - 1) / 2)
    padded = torch.nn.functional.pad(x_t, [lo, hi, lo, hi], mode="reflect")
    expected = torch.nn.functional.conv2d(padded, filt, stride=2, groups=4).permute(0, 2, 3, 1).numpy()
    got = np.asarray(jb.blur_pool(jnp.asarray(x), size=size))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5, err_msg=f"size={size}")


def test_blur_pool_bfloat16():
  x = np.random.default_rng(6).standard_normal((2, 10, 10, 3)).astype(np.float32)
  for pad_mode in ("reflect", "zero"):
    out = jb.blur_pool(jnp.asarray(x, jnp.bfloat16), size=3, pad_mode=pad_mode)
    assert out.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(out, np.float32), ref_blur_pool(x, 3, 2, pad_mode), atol=3e-2, rtol=3e-2)
  out = jb.max_blur_pool(jnp.asarray(x, jnp.bfloat16))
  assert out.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(out, np.float32), ref_blur_pool(ref_max_pool_dense(x), 3, 2, "reflect"),
                             atol=3e-2, rtol=3e-2)


# --------------------------------------------------------------------------------------------------------------
# Bad input


def test_blur_pool_bad_input(monkeypatch):
  from jaxborders.ops import filters

  def traced(*args, **kwargs):
    raise AssertionError("validation must happen before the jitted kernel is traced")

  x = jnp.zeros((1, 8, 8, 2))
  with pytest.raises(ValueError, match="kind=.*'rectangle'.*'triangle'.*'binomial'.*'window'.*'least_squares'"):
    jb.filter_taps("gaussian", 3)
  with pytest.raises(ValueError, match="size=4 .*kind='window'.*3, 6, 7"):
    jb.filter_taps("window", 4)
  monkeypatch.setattr(filters, "_blur_pool", traced)
  bad = [
      (dict(kind="gaussian"), "kind=.*accepted"),
      (dict(pad_mode="mirror"), "pad_mode=.*'reflect'.*'replicate'.*'zero'.*'circular'.*'full'"),
      (dict(stride=0), "stride"),
      (dict(stride=(2, 2, 2)), "stride"),
      (dict(size=8), "size"),
      (dict(pad_off=-1), "pad_off"),
  ]
  for kwargs, match in bad:
    with pytest.raises(ValueError, match=match):
      jb.blur_pool(x, **kwargs)
    with pytest.raises(ValueError, match=match):  # also from inside a jitted wrapper
      jax.jit(lambda x: jb.blur_pool(x, **kwargs))(x)
  with pytest.raises(ValueError, match="x must be"):
    jb.blur_pool(jnp.zeros((8, 8)))
  with pytest.raises(ValueError, match="x must be"):
    jb.blur_pool(jnp.zeros((1, 2, 3, 4, 5, 6)))
  with pytest.raises(ValueError, match="reflect"):
    jb.blur_pool(jnp.zeros((1, 2, 8, 1)), size=5)  # reflect pad 2 on a size-2 dim
  with pytest.raises(ValueError, match="x must be"):
    jb.max_blur_pool(jnp.zeros((8, 8)))
