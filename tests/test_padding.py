"""Border modes against references written here: brute-force location counts, a NumPy conv, PyTorch.

Every reference in this file is independent of ``jaxborders``: padding amounts come from docs/borders.md directly,
padding is ``np.pad``, and the convolution is an explicit loop over taps. JAX compiles once per shape and
static argument, so many settings are compared inside one jitted function.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jaxborders as jb

_NP_MODE = {"same": "constant", "full": "constant", "circular": "wrap", "reflect": "reflect",
            "replicate": "edge"}


def ref_pads(mode: str, k: int, d: int) -> tuple[int, int]:
  """docs/borders.md's padding table, written out again."""
  ke = d * (k - 1) + 1
  if mode == "valid":
    return (0, 0)
  if mode == "full":
    return (ke - 1, ke - 1)
  return ((ke - 1) // 2, ke - 1 - (ke - 1) // 2)


# --------------------------------------------------------------------------------------------------------------
# location_count


def _source_pixel(i: int, n: int, lo: int, mode: str) -> int | None:
  """Which input pixel (0-based) padded position ``i`` holds; None for a padding zero."""
  j = i - lo
  if 0 <= j < n:
    return j
  if mode in ("valid", "same", "full"):
    return None
  if mode == "circular":
    return j % n
  if mode == "replicate":
    return min(max(j, 0), n - 1)
  # reflect (edge not repeated); one reflection suffices because padding < n
  return -j if j < 0 else 2 * (n - 1) - j


def brute_force_count(n: int, k: int, mode: str, d: int) -> np.ndarray | None:
  """Loops over every output position and every tap; None where the mode cannot handle this input."""
  lo, hi = ref_pads(mode, k, d)
  ke = d * (k - 1) + 1
  if (n + lo + hi < ke or (mode == "reflect" and max(lo, hi) > n - 1)
      or (mode == "circular" and max(lo, hi) > n)):
    return None
  counts = np.zeros(n, dtype=np.int64)
  for out in range(n + lo + hi - ke + 1):
    for tap in range(k):
      src = _source_pixel(out + tap * d, n, lo, mode)
      if src is not None:
        counts[src] += 1
  return counts


def _check_counts(ns, ks, ds) -> int:
  checked = 0
  for mode, n, k, d in itertools.product(jb.MODES, ns, ks, ds):
    expected = brute_force_count(n, k, mode, d)
    if expected is None:
      with pytest.raises(ValueError, match="size"):
        jb.location_count(n, k, mode, dilation=d)
      continue
    got = jb.location_count(n, k, mode, dilation=d)
    np.testing.assert_array_equal(got, expected, err_msg=f"mode={mode} n={n} k={k} d={d}")
    checked += 1
  return checked


def test_location_count_brute_force():
  # Every mode, n 1-40, every kernel 1-9, dilation 1-2 (cheap: location_count is NumPy).
  assert _check_counts(range(1, 41), range(1, 10), (1, 2)) > 4000


def test_location_count_closed_forms():
  """F-Conv paper Eq. 5-10 for odd k = 2r+1 (1-based position a)."""
  for r in range(0, 5):
    k = 2 * r + 1
    for n in range(4 * r + 1, 41):
      a = np.arange(1, n + 1)
      c_full = np.full(n, 2 * r + 1)
      c_same = np.where(a <= r, a + r, np.where(a >= n - r + 1, n - a + r + 1, 2 * r + 1))
      c_valid = np.where(a <= 2 * r, a, np.where(a >= n - 2 * r, n - a + 1, 2 * r + 1))
      np.testing.assert_array_equal(jb.location_count(n, k, "full"), c_full)
      np.testing.assert_array_equal(jb.location_count(n, k, "same"), c_same)
      np.testing.assert_array_equal(jb.location_count(n, k, "valid"), c_valid)
      np.testing.assert_array_equal(jb.location_count(n, k, "circular"), c_full)
      # Every tap of every output lands on some pixel in the non-zero modes: the counts add up to n * k.
      for mode in ("circular", "reflect", "replicate"):
        if mode == "reflect" and r > n - 1:
          continue
        assert jb.location_count(n, k, mode).sum() == n * k


# --------------------------------------------------------------------------------------------------------------
# conv against a NumPy reference


def ref_conv(x: np.ndarray, w: np.ndarray, mode: str, strides, dilation, groups: int) -> np.ndarray:
  """Cross-correlation by explicit padding (np.pad) and a loop over taps, in float64."""
  rank = w.ndim - 2
  ks = w.shape[:rank]
  pads = [ref_pads(mode, k, d) for k, d in zip(ks, dilation)]
  x = x.astype(np.float64)
  w = w.astype(np.float64)
  if mode != "valid":
    x = np.pad(x, [(0, 0), *pads, (0, 0)], mode=_NP_MODE[mode])
  ke = [d * (k - 1) + 1 for k, d in zip(ks, dilation)]
  out_sizes = [(n - e) // s + 1 for n, e, s in zip(x.shape[1:-1], ke, strides)]
  cin_g, cout = w.shape[-2], w.shape[-1]
  cout_g = cout // groups
  out = np.zeros((x.shape[0], *out_sizes, cout))
  for taps in itertools.product(*(range(k) for k in ks)):
    window = tuple(slice(t * d, t * d + (o - 1) * s + 1, s) for t, d, o, s in zip(taps, dilation, out_sizes, strides))
    patch = x[(slice(None), *window, slice(None))]
    for g in range(groups):
      out[..., g * cout_g:(g + 1) * cout_g] += np.einsum(
          "...i,io->...o", patch[..., g * cin_g:(g + 1) * cin_g], w[taps][:, g * cout_g:(g + 1) * cout_g])
  return out


_SPATIAL = {1: (11,), 2: (9, 8), 3: (6, 7, 5)}
_KERNELS = {1: [(3,), (4,), (1,), (5,)], 2: [(3, 3), (2, 3), (3, 1), (4, 4)], 3: [(3, 2, 3), (1, 3, 2), (2, 2, 2)]}
_CIN, _COUT = 4, 8
_GROUPS = (1, 2, _CIN)  # plain, grouped, depthwise (channel multiplier 2)


def _conv_cases(rank: int):
  """Every mode x stride 1-3 x dilation 1-2 x groups (plain, grouped, depthwise), kernels rotating."""
  cases = []
  for i, mode in enumerate(jb.MODES):
    for j, (s, d, g) in enumerate(itertools.product((1, 2, 3), (1, 2), _GROUPS)):
      ks = _KERNELS[rank][(i + j) % len(_KERNELS[rank])]
      strides = tuple(s if a % 2 == 0 else max(1, s - 1) for a in range(rank))  # unequal strides per dim too
      cases.append((mode, ks, strides, (d,) * rank, g))
  return cases


def _run_conv_cases(rank: int, cases) -> None:
  rng = np.random.default_rng(rank)
  x = rng.standard_normal((2, *_SPATIAL[rank], _CIN)).astype(np.float32)
  ws = [rng.standard_normal((*ks, _CIN // g, _COUT)).astype(np.float32) for _, ks, _, _, g in cases]

  @jax.jit
  def run_all(x, ws):
    return [jb.conv(x, w, mode, strides=s, dilation=d, feature_group_count=g)
            for w, (mode, _, s, d, g) in zip(ws, cases)]

  outs = run_all(x, ws)
  for out, w, (mode, ks, s, d, g) in zip(outs, ws, cases):
    expected = ref_conv(x, w, mode, s, d, g)
    shape = tuple((n + sum(ref_pads(mode, k, dd)) - (dd * (k - 1) + 1)) // ss + 1
                  for n, k, dd, ss in zip(_SPATIAL[rank], ks, d, s))
    msg = f"mode={mode} kernel={ks} strides={s} dilation={d} groups={g}"
    assert out.shape == (2, *shape, _COUT), msg
    assert expected.shape == out.shape, msg
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-5, atol=1e-5, err_msg=msg)


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_conv_matches_numpy(rank):
  # All 108 settings of a rank in one jitted function: one compilation instead of 108.
  _run_conv_cases(rank, _conv_cases(rank))


def test_output_size_table():
  # docs/borders.md by hand: n = 8, k = 3.
  assert [jb.output_size(8, 3, m) for m in jb.MODES] == [6, 8, 8, 8, 8, 10]
  assert [jb.output_size(8, 3, m, stride=2) for m in jb.MODES] == [3, 4, 4, 4, 4, 5]
  assert [jb.output_size(8, 3, m, stride=3, dilation=2) for m in jb.MODES] == [2, 3, 3, 3, 3, 4]
  assert jb.padding_for("same", 4) == ((1, 2),)
  assert jb.padding_for("full", (3, 5), dilation=(1, 2)) == ((2, 2), (8, 8))
  assert jb.padding_for("valid", (3, 3)) == ((0, 0), (0, 0))


def test_pad_matches_numpy():
  x = np.random.default_rng(0).standard_normal((2, 7, 6, 3)).astype(np.float32)
  for mode in jb.MODES:
    for ks, d in (((3, 4), (1, 1)), ((2, 3), (2, 1))):
      pads = [ref_pads(mode, k, dd) for k, dd in zip(ks, d)]
      expected = x if mode == "valid" else np.pad(x, [(0, 0), *pads, (0, 0)], mode=_NP_MODE[mode])
      np.testing.assert_array_equal(np.asarray(jb.pad(jnp.asarray(x), mode, ks, d)), expected)


# --------------------------------------------------------------------------------------------------------------
# `same` is PyTorch's symmetric padding, not lax 'SAME'


def test_same_matches_torch_and_not_lax_same():
  rng = np.random.default_rng(1)
  x = rng.standard_normal((2, 10, 12, 3)).astype(np.float32)  # even sizes: lax 'SAME' pads (0, 1) at stride 2
  x_t = torch.from_numpy(x).permute(0, 3, 1, 2)
  for k in (1, 3, 5):
    w = rng.standard_normal((k, k, 3, 4)).astype(np.float32)
    w_t = torch.from_numpy(w).permute(3, 2, 0, 1)
    dense = np.asarray(jb.conv(x, w, "same"))
    for s in (1, 2):
      got = np.asarray(jb.conv(x, w, "same", strides=s))
      expected = torch.nn.functional.conv2d(x_t, w_t, stride=s, padding=(k - 1) // 2).permute(0, 2, 3, 1).numpy()
      np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5, err_msg=f"k={k} s={s}")
      # Stride s samples the stride-1 output at 0, s, 2s, ...
      np.testing.assert_allclose(got, dense[:, ::s, ::s], rtol=1e-5, atol=1e-5)
      if s == 2 and k > 1:
        lax_same = np.asarray(jax.lax.conv_general_dilated(x, w, (s, s), "SAME",
                                                           dimension_numbers=("NHWC", "HWIO", "NHWC")))
        assert lax_same.shape == got.shape
        assert np.abs(lax_same - got).max() > 0.1, "lax 'SAME' samples odd positions at stride 2"


def _primitives(jaxpr) -> set[str]:
  """Primitive names in a jaxpr, including nested ones (pjit, custom_vjp, ...)."""
  names = set()
  for eqn in jaxpr.eqns:
    names.add(eqn.primitive.name)
    for param in eqn.params.values():
      for p in param if isinstance(param, (list, tuple)) else (param,):
        if hasattr(p, "eqns"):
          names |= _primitives(p)
        elif hasattr(getattr(p, "jaxpr", None), "eqns"):
          names |= _primitives(p.jaxpr)
  return names


def test_zero_modes_emit_no_pad_op():
  x = jnp.ones((1, 8, 8, 2))
  w = jnp.ones((3, 3, 2, 2))
  # The detector works: explicit zero padding does show a `pad` primitive.
  assert "pad" in _primitives(jax.make_jaxpr(lambda x: jb.pad(x, "same", 3))(x).jaxpr)
  for mode in jb.ZERO_MODES:
    prims = _primitives(jax.make_jaxpr(lambda x, w: jb.conv(x, w, mode, strides=2))(x, w).jaxpr)
    assert "conv_general_dilated" in prims, mode
    assert "pad" not in prims, f"{mode}: {sorted(prims)}"


# --------------------------------------------------------------------------------------------------------------
# Exact shift properties


def _stack(mode: str, ws):
  def f(x):
    for w in ws:
      x = jax.nn.relu(jb.conv(x, w, mode))  # relu(0) = 0 keeps the zero canvas zero
    return x
  return jax.jit(f)


def _kernels(seed: int, k: int = 3):
  rng = np.random.default_rng(seed)
  chans = (2, 4, 4, 3)
  return [jnp.asarray(rng.standard_normal((k, k, a, b)).astype(np.float32) / k) for a, b in zip(chans, chans[1:])]


def _canvas_equivariance_error(mode: str, shift=(3, 5)) -> float:
  rng = np.random.default_rng(2)
  content = rng.standard_normal((8, 8, 2)).astype(np.float32)
  canvas = np.zeros((2, 16, 16, 2), np.float32)
  canvas[0, :8, :8] = content  # touching the canvas border: only full conv keeps everything
  canvas[1, shift[0]:shift[0] + 8, shift[1]:shift[1] + 8] = content
  out = np.asarray(_stack(mode, _kernels(3))(canvas))
  shifted = np.roll(out[0], shift, axis=(0, 1))
  return float(np.abs(out[1] - shifted).max() / np.abs(out[1]).max())


def test_full_stack_is_shift_equivariant_in_zero_canvas():
  assert _canvas_equivariance_error("full") < 1e-5


@pytest.mark.parametrize("mode", ["same", "valid"])
def test_same_and_valid_are_not_shift_equivariant(mode):
  assert _canvas_equivariance_error(mode) > 0.05


def test_circular_stack_commutes_with_roll():
  x = np.random.default_rng(4).standard_normal((1, 12, 10, 2)).astype(np.float32)
  shifts = [(0, 0), (1, 0), (0, 3), (5, 7), (11, 9), (-4, 2)]
  xs = np.concatenate([np.roll(x, s, axis=(1, 2)) for s in shifts])
  for mode, equivariant in (("circular", True), ("same", False)):
    out = np.asarray(_stack(mode, _kernels(5))(xs))
    errors = [np.abs(out[i] - np.roll(out[0], s, axis=(0, 1))).max() / np.abs(out[0]).max()
              for i, s in enumerate(shifts)]
    if equivariant:
      assert max(errors) < 1e-5, errors
    else:
      assert min(errors[1:]) > 0.05, errors


# --------------------------------------------------------------------------------------------------------------
# Bad input


def test_conv_bad_input(monkeypatch):
  def traced(*args, **kwargs):
    raise AssertionError("validation must happen before the convolution is traced")

  # Every check runs in plain Python before lax is reached: a traced conv would raise AssertionError instead.
  monkeypatch.setattr(jax.lax, "conv_general_dilated", traced)
  x, w = jnp.zeros((1, 8, 8, 4)), jnp.zeros((3, 3, 4, 2))
  accepted = "'valid', 'same', 'circular', 'reflect', 'replicate', 'full'"
  bad = [
      (x, w, dict(mode="zeros"), f"mode='zeros'.*{accepted}"),
      (x, w, dict(mode="SAME"), "mode='SAME'"),
      (x, w, dict(strides=0), "strides must be >= 1"),
      (x, w, dict(strides=(1, 2, 1)), "strides must have one entry per spatial dimension"),
      (x, w, dict(dilation=0), "dilation must be >= 1"),
      (x, w, dict(dilation=(1, -1)), "dilation must be >= 1"),
      (jnp.zeros((1, 2, 8, 4)), w, dict(mode="valid"), "spatial dim 0 of x has size 2.*effective kernel size 3"),
      (jnp.zeros((1, 8, 4, 4)), w, dict(mode="valid", dilation=2), "spatial dim 1 of x has size 4.*kernel size 5"),
      (jnp.zeros((1, 1, 8, 4)), w, dict(mode="reflect"), "reflect.*spatial dim 0 of x"),
      (jnp.zeros((8, 8, 4)), w, {}, r"x must have shape \(N, H, W, C\)"),
      (x, jnp.zeros((3, 4, 2)), {}, r"x must have shape \(N, L, C\)"),
      (x, jnp.zeros((3, 3)), {}, "w must be"),
      (x, jnp.zeros((3, 3, 3, 2)), {}, "w has 3 input channels"),
      (x, jnp.zeros((3, 3, 2, 3)), dict(feature_group_count=2), "feature_group_count=2 must divide"),
      (x, w, dict(feature_group_count=0), "feature_group_count must be an int >= 1"),
  ]
  for xx, ww, kwargs, match in bad:
    with pytest.raises(ValueError, match=match):
      jb.conv(xx, ww, **kwargs)
    with pytest.raises(ValueError, match=match):  # also from inside a jitted wrapper
      jax.jit(lambda a, b: jb.conv(a, b, **kwargs))(xx, ww)

  with pytest.raises(ValueError, match=f"mode='wrap'.*{accepted}"):
    jb.pad(x, "wrap", 3)
  with pytest.raises(ValueError, match="mode="):
    jb.padding_for("zero", 3)
  with pytest.raises(ValueError, match="mode="):
    jb.location_count(8, 3, "periodic")
  with pytest.raises(ValueError, match="kernel_size must be >= 1"):
    jb.padding_for("same", 0)
  with pytest.raises(ValueError, match="dilation must be >= 1"):
    jb.pad(x, "same", 3, dilation=0)
  with pytest.raises(ValueError, match="x must be channels-last"):
    jb.pad(jnp.zeros((8,)), "same", 3)
  with pytest.raises(ValueError, match="n must be an int >= 1"):
    jb.location_count(0, 3, "same")
