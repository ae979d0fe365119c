"""The border core: per-axis modes, the visible conv implementation choice, forward-mode derivatives.

References are written here or in ``test_padding`` (``ref_conv``: np.pad per axis and a loop over taps). The
``device`` tests compare ``impl='xla'`` (what accelerators run) with ``impl='im2col'`` and NumPy, in values and in
reverse- and forward-mode derivatives; on CPU they run here, on an accelerator ``pytest -m device`` runs them.
"""

from __future__ import annotations

import itertools
import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_padding import _primitives, ref_conv, ref_pads

import jaxborders as jb

_SPATIAL = {1: (9,), 2: (7, 6), 3: (5, 6, 4)}
_KERNELS = {1: (3,), 2: (3, 2), 3: (2, 3, 2)}
_MIXED = {1: [("partial",), ("reflect",)], 2: [("same", "full"), ("circular", "valid"), ("partial", "reflect"),
                                                ("replicate", "partial")],
          3: [("same", "full", "full"), ("circular", "partial", "valid"), ("reflect", "replicate", "same")]}


def _impl_cases(rank: int):
  """Every mode alone and the mixed tuples, with strides and dilations rotating (unequal per dim)."""
  modes = [(m,) * rank for m in jb.MODES] + _MIXED[rank]
  cases = []
  for i, mode in enumerate(modes):
    strides = tuple(1 + (i + a) % 2 for a in range(rank))
    dilation = tuple(1 + (i // 2 + a) % 2 for a in range(rank))
    cases.append((mode, strides, dilation))
  return cases


def _conv_all(impl, cases, x, ws):
  return [jb.conv(x, w, mode, strides=s, dilation=d, impl=impl) for w, (mode, s, d) in zip(ws, cases)]


@pytest.mark.device
@pytest.mark.parametrize("rank", [1, 2, pytest.param(3, marks=pytest.mark.slow)])
def test_impls_agree_with_numpy_values_and_both_derivative_modes(rank):
  rng = np.random.default_rng(10 + rank)
  cases = _impl_cases(rank)
  f32 = lambda *shape: jnp.asarray(rng.standard_normal(shape), jnp.float32)
  x, dx = f32(2, *_SPATIAL[rank], 3), f32(2, *_SPATIAL[rank], 3)
  ws = [f32(*_KERNELS[rank], 3, 4) for _ in cases]
  dws = [f32(*_KERNELS[rank], 3, 4) for _ in cases]
  results = {}
  for impl in ("xla", "im2col", "auto"):
    run = lambda x, ws, impl=impl: _conv_all(impl, cases, x, ws)

    @jax.jit
    def derivatives(x, ws, dx, dws, run=run):
      ys, dys = jax.jvp(run, (x, ws), (dx, dws))
      _, vjp = jax.vjp(run, x, ws)
      gx, gws = vjp(dys)  # the tangents as cotangents: any fixed array works for the identity below
      return ys, dys, gx, gws

    results[impl] = derivatives(x, ws, dx, dws)
  xn, dxn = np.asarray(x), np.asarray(dx)
  for i, ((mode, s, d), w, dw) in enumerate(zip(cases, ws, dws)):
    msg = f"mode={mode} strides={s} dilation={d}"
    y_ref = ref_conv(xn, np.asarray(w), mode, s, d)
    # The conv is bilinear: its JVP is conv(dx, w) + conv(x, dw).
    dy_ref = ref_conv(dxn, np.asarray(w), mode, s, d) + ref_conv(xn, np.asarray(dw), mode, s, d)
    for impl, (ys, dys, gx, gws) in results.items():
      np.testing.assert_allclose(np.asarray(ys[i]), y_ref, rtol=1e-4, atol=1e-4, err_msg=f"{impl} value {msg}")
      np.testing.assert_allclose(np.asarray(dys[i]), dy_ref, rtol=1e-4, atol=1e-4, err_msg=f"{impl} jvp {msg}")
    # Reverse mode: the same gradients from every impl (all cases share x, so gx sums over cases).
    for impl in ("im2col", "auto"):
      np.testing.assert_allclose(np.asarray(results[impl][3][i]), np.asarray(results["xla"][3][i]), rtol=1e-4,
                                 atol=1e-3, err_msg=f"{impl} kernel gradient {msg}")
  for impl in ("im2col", "auto"):
    np.testing.assert_allclose(np.asarray(results[impl][2]), np.asarray(results["xla"][2]), rtol=1e-4, atol=1e-3)
  # ... and the gradients are the transpose of the NumPy JVP: <g, (dx, dw)> = <dy, J (dx, dw)> with g = J^T dy.
  _, dys, gx, gws = results["xla"]
  lhs = float(np.vdot(np.asarray(gx, np.float64), dxn)) + sum(
      float(np.vdot(np.asarray(g, np.float64), np.asarray(dw))) for g, dw in zip(gws, dws))
  rhs = sum(float(np.vdot(np.asarray(dy, np.float64), np.asarray(dy, np.float64))) for dy in dys)
  assert abs(lhs - rhs) <= 1e-4 * abs(rhs), (lhs, rhs)


@pytest.mark.device
def test_grouped_conv_impls_agree():
  rng = np.random.default_rng(3)
  x = rng.standard_normal((2, 7, 6, 4)).astype(np.float32)
  for groups, mode in ((2, ("partial", "circular")), (4, "full")):
    w = rng.standard_normal((3, 3, 4 // groups, 8)).astype(np.float32)
    expected = ref_conv(x, w, mode, (2, 1), (1, 2), groups)
    for impl in ("xla", "im2col"):
      got = jb.conv(x, w, mode, strides=(2, 1), dilation=(1, 2), feature_group_count=groups, impl=impl)
      np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-4, atol=1e-4, err_msg=f"{impl} {groups} {mode}")


# --------------------------------------------------------------------------------------------------------------
# Per-axis modes and the partial mode


def test_per_axis_conv_matches_numpy_rank2_and_3():
  rng = np.random.default_rng(0)
  for rank in (2, 3):
    x = rng.standard_normal((1, *_SPATIAL[rank], 2)).astype(np.float32)
    for mode, s, d in _impl_cases(rank)[len(jb.MODES):]:
      w = rng.standard_normal((*_KERNELS[rank], 2, 3)).astype(np.float32)
      got = jax.jit(lambda x, w: jb.conv(x, w, mode, strides=s, dilation=d))(x, w)
      np.testing.assert_allclose(np.asarray(got), ref_conv(x, w, mode, s, d), rtol=1e-5, atol=1e-5,
                                 err_msg=f"mode={mode} strides={s} dilation={d}")


def test_partial_is_zero_padding_times_the_window_ratio_and_same_inside():
  rng = np.random.default_rng(1)
  x = rng.standard_normal((2, 9, 8, 3)).astype(np.float32)
  w = rng.standard_normal((3, 5, 3, 2)).astype(np.float32)
  partial, same = (np.asarray(jb.conv(x, w, m)) for m in ("partial", "same"))
  # Window ratio by brute force: count the real pixels under each window of a zero-padded mask of ones.
  mask = np.pad(np.ones((9, 8)), [ref_pads("same", 3, 1), ref_pads("same", 5, 1)])
  real = np.array([[mask[i:i + 3, j:j + 5].sum() for j in range(8)] for i in range(9)])
  np.testing.assert_allclose(partial, same * (15 / real)[None, :, :, None], rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(partial[:, 1:-1, 2:-2], same[:, 1:-1, 2:-2])  # interior: every tap is real
  assert np.abs(partial[:, 0] - same[:, 0]).max() > 0.1  # the border is rescaled
  # A constant image stays constant under an all-ones kernel: the point of partial padding.
  ones = np.asarray(jb.conv(np.ones((1, 6, 5, 1)), np.ones((3, 3, 1, 1)), "partial", strides=(2, 1), dilation=2))
  np.testing.assert_allclose(ones, 9.0, rtol=1e-6)
  np.testing.assert_array_equal(jb.location_count(7, 3, "partial"), jb.location_count(7, 3, "same"))


def test_location_counts_per_axis_brute_force():
  """Count, for every (output, tap) pair of a rank-2 stride-1 conv, which input pixel it reads."""
  for modes, ks, d in ((("same", "full"), (3, 2), (1, 2)), (("circular", "valid"), (3, 3), (2, 1)),
                       (("reflect", "partial"), (2, 3), (1, 1)), (("replicate", "replicate"), (4, 1), (1, 1))):
    shape = (6, 5)
    pads = [ref_pads(m, k, dd) for m, k, dd in zip(modes, ks, d)]
    # Source pixel of every padded position: -1 for a zero, else the (flat) pixel a wrap/mirror/edge copy holds.
    source = np.arange(30).reshape(shape)
    for axis, (m, p) in enumerate(zip(modes, pads)):
      widths = [(0, 0), (0, 0)]
      widths[axis] = p
      if m in ("circular", "reflect", "replicate"):
        source = np.pad(source, widths, mode={"circular": "wrap", "reflect": "reflect", "replicate": "edge"}[m])
      else:
        source = np.pad(source, widths, constant_values=-1)
    counts = np.zeros(30, np.int64)
    out = [n - dd * (k - 1) for n, k, dd in zip(source.shape, ks, d)]
    for o in itertools.product(*map(range, out)):
      for t in itertools.product(*map(range, ks)):
        src = source[o[0] + t[0] * d[0], o[1] + t[1] * d[1]]
        if src >= 0:
          counts[src] += 1
    np.testing.assert_array_equal(jb.location_counts(shape, ks, modes, d), counts.reshape(shape), err_msg=str(modes))


def _ref_max_pool(x, window, stride, pads, modes):
  fills = {"circular": "wrap", "reflect": "reflect", "replicate": "edge"}
  for axis, (m, p) in enumerate(zip(modes, pads), start=1):
    widths = [(0, 0)] * x.ndim
    widths[axis] = p
    x = np.pad(x, widths, mode=fills[m]) if m in fills else np.pad(x, widths, constant_values=-np.inf)
  out = [(n - k) // s + 1 for n, k, s in zip(x.shape[1:-1], window, stride)]
  y = np.full((x.shape[0], *out, x.shape[-1]), -np.inf)
  for t in itertools.product(*map(range, window)):
    y = np.maximum(y, x[(slice(None), *(slice(a, a + (o - 1) * s + 1, s) for a, o, s in zip(t, out, stride)))])
  return y


def test_max_pool_border_modes_match_numpy():
  x = np.random.default_rng(2).standard_normal((2, 7, 6, 2)).astype(np.float32)
  cases = [((3, 3), (2, 2), None, ("same", "same")),  # PyTorch's ResNet stem pool: padding 1, -inf
           ((2, 2), (1, 1), None, ("circular", "circular")),  # the APS stem: circular pad (0, 1), 2x2 stride 1
           ((3, 2), (1, 2), None, ("full", "reflect")), ((3, 3), (2, 1), (1, 1), ("circular", "valid")),
           ((2, 3), (1, 1), None, ("valid", "replicate"))]
  for window, stride, padding, modes in cases:
    pads = ([(p, p) for p in padding] if padding else [ref_pads(m, k, 1) for m, k in zip(modes, window)])
    got = jb.max_pool(x, window, stride, padding, mode=modes)
    np.testing.assert_array_equal(np.asarray(got), _ref_max_pool(x, window, stride, pads, modes), err_msg=str(modes))
  # The default (valid, no padding) is the old behaviour; an explicit padding with a zero mode pads -inf.
  np.testing.assert_array_equal(np.asarray(jb.max_pool(x, 2)), _ref_max_pool(x, (2, 2), (1, 1), [(0, 0)] * 2,
                                                                               ("valid", "valid")))
  # A circular max pool commutes with circular shifts (with stride 1).
  for shift in ((1, 0), (3, 5)):
    y = jb.max_pool(np.roll(x, shift, axis=(1, 2)), 3, 1, mode="circular")
    np.testing.assert_array_equal(np.asarray(y), np.roll(np.asarray(jb.max_pool(x, 3, 1, mode="circular")), shift,
                                                          axis=(1, 2)))


def test_blur_pool_per_axis_pad_modes_match_numpy():
  from test_filters import ref_blur_pool  # one axis at a time: a 1D reference applied per axis is the separable blur
  x = np.random.default_rng(4).standard_normal((1, 8, 7, 2)).astype(np.float32)

  def along(x, axis, mode, stride):  # the 1D reference on one spatial axis, the other axes as batch
    y = np.moveaxis(x, axis, -2)
    out = ref_blur_pool(y.reshape(-1, *y.shape[-2:]), 3, stride, mode)
    return np.moveaxis(out.reshape(*y.shape[:-2], *out.shape[-2:]), -2, axis)

  for modes, stride in ((("valid", "full"), (2, 1)), (("circular", "reflect"), (2, 2)), (("zero", "valid"), (1, 3))):
    ref = along(along(x, 1, modes[0], stride[0]), 2, modes[1], stride[1])
    got = jb.blur_pool(x, 3, stride, pad_mode=modes)
    np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-5, atol=1e-6, err_msg=str(modes))


# --------------------------------------------------------------------------------------------------------------
# The implementation choice


def test_conv_impl_context_selects_the_path():
  x, w = jnp.ones((1, 6, 6, 2)), jnp.ones((3, 3, 2, 2))
  prims = lambda mode="same", **kw: _primitives(jax.make_jaxpr(lambda x: jb.conv(x, w, mode, **kw))(x).jaxpr)
  assert jb.get_conv_impl() == "auto"
  with jb.conv_impl("xla"):
    assert jb.get_conv_impl() == "xla"
    assert "conv_general_dilated" in prims("circular") and "dot_general" not in prims("circular")
    with jb.conv_impl("im2col"):
      assert "dot_general" in prims() and "conv_general_dilated" not in prims()
    assert jb.get_conv_impl() == "xla"
    assert "dot_general" in prims(impl="im2col")  # an explicit impl wins over the context
  assert jb.get_conv_impl() == "auto"
  seen = []
  with jb.conv_impl("im2col"):  # context variables do not leak into other threads
    thread = threading.Thread(target=lambda: seen.append(jb.get_conv_impl()))
    thread.start()
    thread.join()
  assert seen == ["auto"]
  # The auto rule: accelerators and grouped convs -> xla; CPU -> im2col for explicit padding and 1x1 kernels.
  assert jb.auto_conv_path((3, 3), ("same", "same"), backend="gpu") == "xla"
  assert jb.auto_conv_path((3, 3), ("circular", "same"), backend="tpu") == "xla"
  assert jb.auto_conv_path((3, 3), ("circular", "same"), feature_group_count=2, backend="cpu") == "xla"
  assert jb.auto_conv_path((3, 3), ("same", "reflect"), backend="cpu") == "im2col"
  assert jb.auto_conv_path((1, 1), ("full", "full"), backend="cpu") == "im2col"
  assert jb.auto_conv_path((3, 3), ("full", "partial"), backend="cpu") == "im2col_grad"


def test_array_likes_are_accepted():
  np.testing.assert_array_equal(np.asarray(jb.conv([[[1.0], [2.0]]], [[[3.0]]])), [[[3.0], [6.0]]])
  np.testing.assert_array_equal(np.asarray(jb.pad([[[1.0], [2.0]]], "circular", 3))[0, :, 0], [2.0, 1.0, 2.0, 1.0])
  assert jb.blur_pool([[[1.0], [1.0], [1.0], [1.0]]], 3).tolist() == [[[1.0], [1.0]]]
  assert jb.max_pool(np.array([[[1.0], [3.0]]]), 2).tolist() == [[[3.0]]]
  assert int(jb.aps_pool([[[0.0], [2.0]]])[1][0]) == 1


def test_bad_modes_and_impls_fail_before_tracing(monkeypatch):
  def traced(*args, **kwargs):
    raise AssertionError("validation must happen before anything is traced")

  monkeypatch.setattr(jax.lax, "conv_general_dilated", traced)
  monkeypatch.setattr(jax.lax, "reduce_window", traced)
  x, w = jnp.zeros((1, 8, 8, 2)), jnp.zeros((3, 3, 2, 2))
  listed = "'valid', 'same', 'circular', 'reflect', 'replicate', 'full', 'partial'"
  with pytest.raises(ValueError, match=rf"mode=\('same', 'full', 'full'\) has 3 entries but there are 2 spatial dims"):
    jb.conv(x, w, ("same", "full", "full"))
  with pytest.raises(ValueError, match=f"mode='wrap'.*{listed}"):
    jb.conv(x, w, ("same", "wrap"))
  with pytest.raises(ValueError, match=r"impl='cudnn' is not supported; accepted values: 'auto', 'xla', 'im2col'"):
    jb.conv(x, w, impl="cudnn")
  with pytest.raises(ValueError, match="impl='fast'.*'auto', 'xla', 'im2col'"):
    with jb.conv_impl("fast"):
      pass
  with pytest.raises(ValueError, match=f"mode=.*has 1 entries but there are 2.*{listed}"):
    jb.pad(x, ("same",), 3)
  with pytest.raises(ValueError, match="mode=.*3 entries but there are 2"):
    jb.padding_for(("same", "full", "valid"), (3, 3))
  blur_listed = "'reflect', 'replicate', 'zero', 'circular', 'full', 'valid'"
  with pytest.raises(ValueError, match=f"pad_mode=.*3 entries.*{blur_listed}"):
    jb.blur_pool(x, pad_mode=("zero", "zero", "zero"))
  with pytest.raises(ValueError, match="pad_mode='same'.*'valid'"):
    jb.blur_pool(x, pad_mode=("zero", "same"))
  with pytest.raises(ValueError, match="pad_off=1 pads.*'valid'"):
    jb.blur_pool(x, pad_mode=("zero", "valid"), pad_off=1)
  with pytest.raises(ValueError, match=f"mode=.*has 1 entries.*{listed}"):
    jb.max_pool(x, 2, mode=("circular",))
  with pytest.raises(ValueError, match="mode='wrap'"):
    jb.max_pool(x, 2, mode="wrap")
  with pytest.raises(ValueError, match="mode=.*3 entries"):
    jb.location_counts((4, 4), 3, ("same",) * 3)
  with pytest.raises(ValueError, match="mode="):
    jb.nn.Conv(4, (3, 3), mode=("same", "zeros"))


# --------------------------------------------------------------------------------------------------------------
# Forward mode and Hessians through every op


def _depthwise_blur(channels: int, size: int = 3) -> np.ndarray:
  taps = jb.filter_taps("binomial", size)
  return np.tile(np.outer(taps, taps)[:, :, None, None], (1, 1, 1, channels)).astype(np.float64)


def test_blur_pool_forward_mode_is_the_depthwise_conv():
  """blur_pool (custom JVP, hand-written adjoint) against the same filter as a depthwise jb.conv (plain autodiff):
  JVP, jacfwd, jacrev and the Hessian of a scalar function agree."""
  with jax.enable_x64(True):
    x = jnp.asarray(np.random.default_rng(5).standard_normal((1, 6, 5, 2)))
    w = jnp.asarray(_depthwise_blur(2))
    blur = lambda x: jb.blur_pool(x, 3, 2, pad_mode="circular")
    conv = lambda x: jb.conv(x, w, "circular", strides=2, feature_group_count=2, impl="xla")
    np.testing.assert_allclose(np.asarray(blur(x)), np.asarray(conv(x)), rtol=1e-12, atol=1e-12)
    dx = jnp.cos(x)
    np.testing.assert_allclose(np.asarray(jax.jvp(blur, (x,), (dx,))[1]), np.asarray(conv(dx)), rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_allclose(np.asarray(jax.jit(jax.jacfwd(blur))(x)), np.asarray(jax.jit(jax.jacrev(conv))(x)),
                               atol=1e-12)
    scalar = lambda op: (lambda x: jnp.sum(jnp.sin(op(x)) * jnp.arange(op(x).size).reshape(op(x).shape)))
    hessians = jax.jit(lambda x: (jax.hessian(scalar(blur))(x), jax.hessian(scalar(conv))(x)))
    np.testing.assert_allclose(*map(np.asarray, hessians(x)), rtol=1e-10, atol=1e-10)
    # vmap folds a mapped axis into the batch, for the op, its gradient and its tangent.
    xs = jnp.stack([x, 2 * x, jnp.sin(x)])
    square = lambda op: (lambda x: jnp.sum(op(x) ** 2))
    for f, g in ((blur, conv), (jax.grad(square(blur)), jax.grad(square(conv))),
                 (lambda x: jax.jvp(blur, (x,), (jnp.cos(x),))[1], lambda x: conv(jnp.cos(x)))):
      both = jax.jit(lambda xs, f=f, g=g: (jax.vmap(f)(xs), jax.vmap(g)(xs)))
      np.testing.assert_allclose(*map(np.asarray, both(xs)), rtol=1e-12, atol=1e-12)


def test_hessians_through_every_op_equal_reverse_over_reverse():
  with jax.enable_x64(True):
    rng = np.random.default_rng(6)
    x = jnp.asarray(rng.standard_normal((1, 4, 4, 1)))
    w = jnp.asarray(rng.standard_normal((3, 3, 1, 2)))
    modes = (("full", "partial"), ("circular", "same"), ("reflect", "valid"))
    ops = {f"conv-{impl}-{mode}": (lambda x, impl=impl, mode=mode: jb.conv(x, w, mode, strides=(1, 2), impl=impl))
           for impl, mode in zip(jb.IMPLS, modes)}
    ops["blur_pool"] = lambda x: jb.blur_pool(x, 3, 2, pad_mode=("reflect", "zero"))
    ops["max_blur_pool"] = lambda x: jb.max_blur_pool(x, pad_mode="circular")
    ops["aps_pool"] = lambda x: jb.aps_pool(x)[0]
    for name, op in ops.items():
      f = lambda x, op=op: jnp.sum(jnp.tanh(op(x)) ** 2)
      both = jax.jit(lambda x, f=f: (jax.hessian(f)(x), jax.jacrev(jax.jacrev(f))(x)))
      np.testing.assert_allclose(*map(np.asarray, both(x)), rtol=1e-9, atol=1e-9, err_msg=name)
    # And against finite differences of the gradient, for the hand-written blur adjoint.
    f = lambda x: jnp.sum(jnp.tanh(ops["blur_pool"](x)) ** 2)
    v = jnp.asarray(rng.standard_normal(x.shape))
    eps = 1e-5
    fd = (jax.grad(f)(x + eps * v) - jax.grad(f)(x - eps * v)) / (2 * eps)
    hv = jnp.tensordot(jax.hessian(f)(x), v, axes=4)
    np.testing.assert_allclose(np.asarray(hv), np.asarray(fd), rtol=1e-6, atol=1e-7)
