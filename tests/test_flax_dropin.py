"""jaxborders.nn.Conv is a drop-in for flax.linen.Conv: every argument combination drawn here gives flax's
parameters (names, shapes, init values) and flax's outputs; the pooling layers accept the same input ranks."""

from __future__ import annotations

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxborders as jb
from jaxborders import nn as jnn


def _draw_cases(seed: int, count: int):
  """Random flax.linen.Conv argument combinations with a fitting input shape."""
  rng = np.random.default_rng(seed)
  paddings = ["SAME", "SAME_LOWER", "VALID", "CIRCULAR", "REFLECT", 1, "pairs", "ints", "CAUSAL"]
  cases = []
  for i in range(count):
    padding = paddings[i % len(paddings)]
    rank = 1 if padding == "CAUSAL" else int(rng.integers(1, 3))
    ks = tuple(int(k) for k in rng.integers(1, 4, rank))
    kwargs = dict(features=int(rng.integers(1, 4)), kernel_size=ks,
                  strides=tuple(int(s) for s in rng.integers(1, 3, rank)) if rng.random() < 0.7 else 2,
                  kernel_dilation=int(rng.integers(1, 3)), use_bias=bool(rng.random() < 0.7))
    if padding == "pairs":
      padding = [(int(a), int(b)) for a, b in rng.integers(0, 3, (rank, 2))]
    elif padding == "ints":
      padding = [int(p) for p in rng.integers(0, 3, rank)]
    kwargs["padding"] = padding
    groups = int(rng.choice([1, 2]))
    kwargs["feature_group_count"] = groups
    kwargs["features"] *= groups
    batch = [(), (2,), (2, 3)][i % 3]  # unbatched, one batch dim, two batch dims
    spatial = tuple(int(n) for n in rng.integers(5, 9, rank))
    cases.append(((*batch, *spatial, 2 * groups), kwargs))
  return cases


_CASES = _draw_cases(0, 18)


def _random_variables(layer, x, seed):
  """Random values with the structure `layer.init` gives (`eval_shape`: flax's initialisers are not compiled)."""
  shapes = jax.eval_shape(layer.init, jax.random.key(0), x)
  rng = np.random.default_rng(seed)
  return shapes, jax.tree.map(lambda s: jnp.asarray(rng.standard_normal(s.shape), s.dtype), shapes)


def test_conv_equals_flax_conv_for_drawn_arguments():
  """Same parameter tree (names, shapes, dtypes) and same outputs; init values are compared in test_layers."""
  xs = [jnp.asarray(np.random.default_rng(i).standard_normal(shape), jnp.float32) for i, (shape, _) in
        enumerate(_CASES)]
  ours = [jnn.Conv(**kwargs) for _, kwargs in _CASES]
  theirs = [fnn.Conv(**kwargs) for _, kwargs in _CASES]
  variables = []
  for i, (a, b, x, (_, kwargs)) in enumerate(zip(ours, theirs, xs, _CASES)):
    shapes, values = _random_variables(b, x, i)
    assert jax.eval_shape(a.init, jax.random.key(0), x) == shapes, kwargs
    variables.append(values)

  @jax.jit  # all cases in one compilation
  def run_all(variables, xs):
    return [(a.apply(v, x), b.apply(v, x)) for a, b, v, x in zip(ours, theirs, variables, xs)]

  for (ya, yb), (shape, kwargs) in zip(run_all(variables, xs), _CASES):
    assert ya.shape == yb.shape, (shape, kwargs)
    np.testing.assert_allclose(np.asarray(ya), np.asarray(yb), rtol=1e-5, atol=1e-5, err_msg=f"{shape} {kwargs}")


def test_same_differs_from_flax_same_where_documented():
  """mode='same' is ours (symmetric pads): at stride 2 on an even input it samples other positions than flax's
  'SAME' -- a test that would fail if padding='SAME' were silently mapped onto our 'same'."""
  x = jnp.asarray(np.random.default_rng(0).standard_normal((1, 8, 8, 1)), jnp.float32)
  w = jnp.asarray(np.random.default_rng(1).standard_normal((3, 3, 1, 1)), jnp.float32)
  v = {"params": {"kernel": w, "bias": jnp.zeros(1)}}
  flax_same = jnn.Conv(1, (3, 3), strides=2, padding="SAME").apply(v, x)
  ours = jnn.Conv(1, (3, 3), strides=2, padding="SAME", mode="same").apply(v, x)  # mode wins
  np.testing.assert_allclose(np.asarray(ours), np.asarray(jb.conv(x, w, "same", 2)), rtol=1e-6, atol=1e-6)
  # lax 'SAME' pads (0, 1) here: output (0, 0) is centred on input (1, 1); ours on input (0, 0).
  padded = np.pad(np.asarray(x[0, :, :, 0]), ((0, 1), (0, 1)))
  np.testing.assert_allclose(float(flax_same[0, 0, 0, 0]), float((padded[:3, :3] * np.asarray(w[:, :, 0, 0])).sum()),
                             rtol=1e-5)
  assert not np.allclose(np.asarray(ours), np.asarray(flax_same))


def test_mask_and_dtype_follow_flax():
  x = jnp.asarray(np.random.default_rng(2).standard_normal((2, 6, 6, 2)), jnp.float32)
  mask = jnp.asarray(np.random.default_rng(3).random((3, 3, 2, 4)) < 0.5, jnp.float32)
  kwargs = dict(features=4, kernel_size=(3, 3), mask=mask, dtype=jnp.bfloat16)
  _, v = _random_variables(fnn.Conv(**kwargs), x, 0)
  ya, yb = jnn.Conv(**kwargs).apply(v, x), fnn.Conv(**kwargs).apply(v, x)
  assert ya.dtype == yb.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(ya, np.float32), np.asarray(yb, np.float32), rtol=2e-2, atol=2e-2)


def test_pool_layers_accept_flax_input_ranks():
  x = jnp.asarray(np.random.default_rng(4).standard_normal((2, 3, 8, 8, 2)), jnp.float32)
  flat = x.reshape(6, 8, 8, 2)
  for layer, ref in [(jnn.BlurPool(spatial_dims=2), jb.blur_pool(flat)),
                     (jnn.MaxBlurPool(stride=(2, 2)), jb.max_blur_pool(flat))]:
    np.testing.assert_array_equal(np.asarray(layer.apply({}, x)), np.asarray(ref).reshape(2, 3, 4, 4, 2))
    np.testing.assert_array_equal(np.asarray(layer.apply({}, x[0, 0])), np.asarray(ref[0]))  # unbatched
  y, index = jnn.APSPool(spatial_dims=2).apply({}, x)
  y_ref, index_ref = jb.aps_pool(flat)
  np.testing.assert_array_equal(np.asarray(y), np.asarray(y_ref).reshape(2, 3, 4, 4, 2))
  np.testing.assert_array_equal(np.asarray(index), np.asarray(index_ref).reshape(2, 3))
  y1, index1 = jnn.APSPool(spatial_dims=2).apply({}, x[1, 2], index[1, 2])  # unbatched, reusing an index
  assert index1.shape == ()
  np.testing.assert_array_equal(np.asarray(y1), np.asarray(y_ref[5]))


def test_unsupported_flax_arguments_are_named():
  x = jnp.zeros((1, 6, 6, 2))
  init = lambda layer: jax.eval_shape(layer.init, jax.random.key(0), x)  # noqa: E731
  with pytest.raises(ValueError, match="input_dilation=2 is not supported.*ConvTranspose"):
    init(jnn.Conv(4, (3, 3), input_dilation=2))
  with pytest.raises(ValueError, match="padding='circular' is not supported.*mode="):
    jnn.Conv(4, (3, 3), padding="circular")
  with pytest.raises(ValueError, match="padding='WRAP'.*'SAME', 'SAME_LOWER'"):
    jnn.Conv(4, (3, 3), padding="WRAP")
  with pytest.raises(ValueError, match="conv_general_dilated"):
    jnn.Conv(4, (3, 3), conv_general_dilated=jax.lax.conv_general_dilated)
  with pytest.raises(ValueError, match="CAUSAL.*1D"):
    init(jnn.Conv(4, (3, 3), padding="CAUSAL"))
  with pytest.raises(ValueError, match="mode='zeros'.*None.*'full'"):
    jnn.Conv(4, (3, 3), mode="zeros")
  with pytest.raises(ValueError, match="spatial_dims=4"):
    jnn.BlurPool(spatial_dims=4)
