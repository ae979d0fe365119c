"""Flax layers: equal to their pure ops, drop-in compatible with flax.linen.Conv, and usable under jit, grad,
vmap, in float32 and bfloat16."""

from __future__ import annotations

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxborders as jb
from jaxborders import nn as jnn


def _x(seed: int, shape, dtype=jnp.float32) -> jax.Array:
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), dtype)


def _params(layer, x, seed: int = 0):
  """Random parameters with the structure `layer.init` would give. `eval_shape` traces init without compiling
  it (compiling flax's random initialisers costs seconds), and random values make every comparison sharper."""
  shapes = jax.eval_shape(layer.init, jax.random.key(0), x)
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda s: jnp.asarray(rng.standard_normal(s.shape), s.dtype), shapes)


_CONV_CASES = [
    # (input shape, layer kwargs)
    ((2, 9, 8, 4), dict(features=6, kernel_size=(3, 3), mode="full")),
    ((2, 9, 8, 4), dict(features=6, kernel_size=(3, 2), mode="same", strides=2)),
    ((2, 9, 8, 4), dict(features=8, kernel_size=(3, 3), mode="circular", feature_group_count=4)),
    ((2, 9, 8, 4), dict(features=6, kernel_size=(3, 3), mode="reflect", kernel_dilation=2, use_bias=False)),
    ((2, 11, 4), dict(features=3, kernel_size=(5,), mode="replicate", strides=(2,))),
    ((1, 5, 6, 7, 2), dict(features=3, kernel_size=(3, 3, 3), mode="valid", strides=(1, 2, 2))),
    # Per-axis modes; 'partial' with a bias: the bias is added after the rescaling (as NVIDIA's partialconv).
    ((2, 9, 8, 4), dict(features=6, kernel_size=(3, 3), mode=("partial", "circular"))),
    ((1, 5, 6, 7, 2), dict(features=3, kernel_size=(3, 3, 3), mode=("same", "full", "full"), strides=(1, 2, 2))),
]


def test_conv_layer_equals_conv_op():
  xs = [_x(0, shape) for shape, _ in _CONV_CASES]
  layers = [jnn.Conv(**kwargs) for _, kwargs in _CONV_CASES]
  params = [_params(layer, x, i) for i, (layer, x) in enumerate(zip(layers, xs))]

  @jax.jit  # every case and its reference in one compilation
  def run_all(xs, params):
    results = []
    for x, p, layer, (_, kwargs) in zip(xs, params, layers, _CONV_CASES):
      expected = jb.conv(x, p["params"]["kernel"], kwargs["mode"], kwargs.get("strides", 1),
                         kwargs.get("kernel_dilation", 1), kwargs.get("feature_group_count", 1))
      results.append((layer.apply(p, x), expected + p["params"].get("bias", 0.0)))
    return results

  for (y, expected), (_, kwargs) in zip(run_all(xs, params), _CONV_CASES):
    assert y.shape == expected.shape, kwargs
    np.testing.assert_allclose(np.asarray(y), np.asarray(expected), rtol=1e-5, atol=1e-5, err_msg=str(kwargs))


def test_conv_layer_params_match_flax():
  for shape, kwargs in _CONV_CASES:
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    flax_kwargs = {k: v for k, v in kwargs.items() if k != "mode"}
    ours = jax.eval_shape(jnn.Conv(**kwargs).init, jax.random.key(0), x)
    theirs = jax.eval_shape(fnn.Conv(**flax_kwargs, padding="SAME").init, jax.random.key(0), x)
    assert ours == theirs, kwargs
    assert set(ours["params"]) == ({"kernel", "bias"} if kwargs.get("use_bias", True) else {"kernel"})
  # One real init: the same initialisers and parameter order, so flax's values carry over exactly.
  x = _x(1, (1, 6, 6, 2))
  ours, theirs = jax.jit(lambda key, x: (jnn.Conv(3, (3, 3), mode="full").init(key, x),
                                         fnn.Conv(3, (3, 3)).init(key, x)))(jax.random.key(3), x)
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), ours, theirs)


_SAME_CASES = [((2, 9, 8, 4), (3, 3), 1), ((2, 10, 10, 4), (5, 3), 2), ((2, 12, 4), (7,), 1),
               ((1, 4, 5, 6, 2), (3, 3, 3), 1)]


def test_conv_layer_same_equals_flax_same():
  """For odd kernels and stride 1 PyTorch-style `same` and lax 'SAME' pad identically."""
  xs = [_x(2, shape) for shape, _, _ in _SAME_CASES]

  ours = [jnn.Conv(features=4, kernel_size=ks, mode="same", feature_group_count=g) for _, ks, g in _SAME_CASES]
  theirs = [fnn.Conv(features=4, kernel_size=ks, padding="SAME", feature_group_count=g) for _, ks, g in _SAME_CASES]
  params = [_params(layer, x, i) for i, (layer, x) in enumerate(zip(theirs, xs))]

  @jax.jit
  def run_all(xs, params):
    return [(a.apply(p, x), b.apply(p, x)) for a, b, p, x in zip(ours, theirs, params, xs)]

  for (y, expected), (_, ks, _) in zip(run_all(xs, params), _SAME_CASES):
    np.testing.assert_allclose(np.asarray(y), np.asarray(expected), rtol=1e-5, atol=1e-5, err_msg=str(ks))


def test_pool_layers_equal_functions():
  x = _x(3, (2, 10, 8, 3))
  cases = [
      (jnn.BlurPool(), jb.blur_pool(x)),
      (jnn.BlurPool(size=5, stride=(1, 2), kind="triangle", pad_mode="zero", pad_off=1),
       jb.blur_pool(x, 5, (1, 2), "triangle", "zero", 1)),
      (jnn.BlurPool(size=4, pad_mode="full"), jb.blur_pool(x, 4, pad_mode="full")),
      (jnn.MaxBlurPool(), jb.max_blur_pool(x)),
      (jnn.MaxBlurPool(pool_size=3, size=4, stride=1, pad_mode="replicate"),
       jb.max_blur_pool(x, 3, 4, 1, pad_mode="replicate")),
      (jnn.BlurPool(pad_mode=("valid", "circular")), jb.blur_pool(x, pad_mode=("valid", "circular"))),
      (jnn.MaxBlurPool(pad_mode=("zero", "full")), jb.max_blur_pool(x, pad_mode=("zero", "full"))),
  ]
  for layer, expected in cases:
    params = layer.init(jax.random.key(0), x)  # no parameters: nothing random is compiled
    assert jax.tree.leaves(params) == []  # fixed filters: nothing to learn
    np.testing.assert_array_equal(np.asarray(layer.apply(params, x)), np.asarray(expected), err_msg=repr(layer))


def test_aps_layer_equals_function():
  x = _x(4, (3, 8, 6, 2))
  layer = jnn.APSPool()
  y, index = layer.apply({}, x)
  y_ref, index_ref = jb.aps_pool(x)
  np.testing.assert_array_equal(np.asarray(y), np.asarray(y_ref))
  np.testing.assert_array_equal(np.asarray(index), np.asarray(index_ref))
  # With a circular blur first, and the shortcut reusing the main branch's index.
  layer = jnn.APSPool(norm="l1", blur_size=3)
  y, index = layer.apply({}, x)
  y_ref, index_ref = jb.aps_pool(jb.blur_pool(x, 3, 1, pad_mode="circular"), norm="l1")
  np.testing.assert_allclose(np.asarray(y), np.asarray(y_ref), rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(np.asarray(index), np.asarray(index_ref))
  y2, index2 = jnn.APSPool().apply({}, x, index)
  np.testing.assert_array_equal(np.asarray(index2), np.asarray(index))
  np.testing.assert_array_equal(np.asarray(y2), np.asarray(jb.aps_pool(x, index=index)[0]))


def _layers():
  return [
      ("conv_full", jnn.Conv(4, (3, 3), mode="full")),
      ("conv_circular", jnn.Conv(4, (3, 3), mode="circular", strides=2)),
      ("blur", jnn.BlurPool()),
      ("max_blur", jnn.MaxBlurPool()),
      ("aps", jnn.APSPool(blur_size=3)),
  ]


def _apply(layer, params, x):
  out = layer.apply(params, x)
  return out[0] if isinstance(out, tuple) else out


@pytest.mark.parametrize("name,layer", _layers(), ids=[n for n, _ in _layers()])
def test_layers_under_jit_grad_vmap(name, layer):
  x = _x(5, (2, 8, 8, 3))
  params = _params(layer, x)
  eager = _apply(layer, params, x)
  jitted = jax.jit(lambda p, x: _apply(layer, p, x))(params, x)
  np.testing.assert_allclose(np.asarray(jitted), np.asarray(eager), rtol=1e-6, atol=1e-6)

  # grad w.r.t. the input (and the params, where there are any) is finite and not all zero.
  loss = lambda p, x: jnp.sum(_apply(layer, p, x) ** 2)  # noqa: E731
  g_params, g_x = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, x)
  assert g_x.shape == x.shape and np.isfinite(np.asarray(g_x)).all() and np.abs(np.asarray(g_x)).sum() > 0
  for leaf, p in zip(jax.tree.leaves(g_params), jax.tree.leaves(params)):
    assert leaf.shape == p.shape and np.isfinite(np.asarray(leaf)).all()

  # vmap over an extra leading axis equals applying to each slice.
  xs = jnp.stack([x, x[:, ::-1], 2 * x])
  batched = jax.vmap(lambda x: _apply(layer, params, x))(xs)
  for i in range(3):
    np.testing.assert_allclose(np.asarray(batched[i]), np.asarray(_apply(layer, params, xs[i])), rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("name,layer", _layers(), ids=[n for n, _ in _layers()])
def test_layers_bfloat16(name, layer):
  x = _x(6, (2, 8, 8, 3))
  params = _params(layer, x)
  ref = _apply(layer, params, x)
  if isinstance(layer, jnn.Conv):
    low = layer.clone(dtype=jnp.bfloat16)  # computation in bfloat16, float32 params as in flax
    out = _apply(low, params, x)
    params16 = jax.tree.map(lambda p: p.astype(jnp.bfloat16), params)
    out2 = _apply(layer, params16, x.astype(jnp.bfloat16))  # bfloat16 params and inputs
    assert out2.dtype == jnp.bfloat16
  else:
    out = _apply(layer, params, x.astype(jnp.bfloat16))
  assert out.dtype == jnp.bfloat16, name
  scale = np.abs(np.asarray(ref)).max()
  np.testing.assert_allclose(np.asarray(out, np.float32), np.asarray(ref), rtol=0, atol=3e-2 * scale)
  grad = jax.grad(lambda x: jnp.sum(_apply(layer, params, x).astype(jnp.float32)))(x.astype(jnp.bfloat16))
  assert grad.dtype == jnp.bfloat16 and np.isfinite(np.asarray(grad, np.float32)).all()


def test_layer_bad_arguments():
  with pytest.raises(ValueError, match="mode=.*'valid'.*'full'"):
    jnn.Conv(4, mode="zeros")
  with pytest.raises(ValueError, match="kind=.*'binomial'"):
    jnn.BlurPool(kind="gauss")
  with pytest.raises(ValueError, match="pad_mode=.*'reflect'"):
    jnn.MaxBlurPool(pad_mode="mirror")
  with pytest.raises(ValueError, match="norm=.*'l2'"):
    jnn.APSPool(norm="l0")
  init = lambda layer, shape: jax.eval_shape(layer.init, jax.random.key(0), jnp.zeros(shape))  # noqa: E731
  with pytest.raises(ValueError, match="strides"):
    init(jnn.Conv(4, (3, 3), strides=0), (1, 8, 8, 2))
  with pytest.raises(ValueError, match="kernel_dilation"):
    init(jnn.Conv(4, (3, 3), kernel_dilation=(1, 0)), (1, 8, 8, 2))
  with pytest.raises(ValueError, match="feature_group_count"):
    init(jnn.Conv(4, (3, 3), feature_group_count=3), (1, 8, 8, 2))
  with pytest.raises(ValueError, match="inputs must be .*2 spatial dims"):
    init(jnn.Conv(4, (3, 3)), (8, 2))  # (1, 8, 2) is an unbatched image, as in flax; (8, 2) is too small
  with pytest.raises(ValueError, match="smaller than the effective kernel"):
    init(jnn.Conv(4, (5, 5), mode="valid"), (1, 4, 8, 2))
