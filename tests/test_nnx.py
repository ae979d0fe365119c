"""jaxborders.nnx: NNX layers equal flax's nnx.Conv and our linen layers; an NNX CNN switched in place equals the
same CNN written with jaxborders.nnx layers and keeps its parameters; NNX training lowers the loss; the zoo is
usable through the bridge with the documented state layout."""

from __future__ import annotations

from functools import partial

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx, traverse_util

import jaxborders as jb
import jaxborders.nnx as jbx
from jaxborders import nn as jnn
from jaxborders.models import get_model


def _x(seed, shape):
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def test_conv_equals_nnx_conv_and_linen_layers():
  cases = [((2, 9, 8, 4), (4, 6, (3, 3)), dict(strides=2, padding="SAME")),
           ((9, 8, 4), (4, 6, (3, 2)), dict(padding=[(1, 2), (0, 1)], kernel_dilation=2)),
           ((2, 3, 9, 4), (4, 4, (3,)), dict(padding="CAUSAL", feature_group_count=2))]
  xs = [_x(0, shape) for shape, _, _ in cases]
  # One real init: the same draws as nnx.Conv. The others are built abstractly and share random NumPy params
  # (compiling flax's random initialisers costs seconds each).
  _, args, kwargs = cases[0]
  a, b = jbx.Conv(*args, **kwargs, rngs=nnx.Rngs(0)), nnx.Conv(*args, **kwargs, rngs=nnx.Rngs(0))
  np.testing.assert_array_equal(np.asarray(a.kernel[...]), np.asarray(b.kernel[...]))
  ours, theirs = nnx.List([a]), nnx.List([b])
  for _, args, kwargs in cases[1:]:
    ours.append(nnx.eval_shape(lambda: jbx.Conv(*args, **kwargs, rngs=nnx.Rngs(0))))  # noqa: B023
    theirs.append(nnx.eval_shape(lambda: nnx.Conv(*args, **kwargs, rngs=nnx.Rngs(0))))  # noqa: B023
  for i, (a, b) in enumerate(zip(ours, theirs)):
    b.kernel = nnx.Param(_x(10 + i, b.kernel.shape))
    b.bias = nnx.Param(_x(20 + i, b.bias.shape))  # a nonzero bias, so that a dropped bias would show
    a.kernel, a.bias = b.kernel, b.bias
  # mode wins over padding, and equals the linen layer and the op given the same weights.
  x = _x(2, (2, 8, 8, 3))
  conv = nnx.eval_shape(lambda: jbx.Conv(3, 5, (3, 3), strides=2, mode="circular", padding="VALID", rngs=nnx.Rngs(1)))
  conv.kernel, conv.bias = nnx.Param(_x(3, (3, 3, 3, 5))), nnx.Param(_x(4, (5,)))
  linen = jnn.Conv(5, (3, 3), strides=2, mode="circular")

  @nnx.jit  # one compilation for every case
  def run_all(ours, theirs, conv, xs, x):
    variables = {"params": {"kernel": conv.kernel[...], "bias": conv.bias[...]}}
    return ([(a(x), b(x)) for a, b, x in zip(ours, theirs, xs)],
            (conv(x), linen.apply(variables, x), jb.conv(x, conv.kernel[...], "circular", 2) + conv.bias[...]))

  pairs, (y, y_linen, y_op) = run_all(ours, theirs, conv, xs, x)
  for (a, b), (_, _, kwargs) in zip(pairs, cases):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5, err_msg=str(kwargs))
  np.testing.assert_allclose(np.asarray(y), np.asarray(y_linen), rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(np.asarray(y), np.asarray(y_op), rtol=1e-5, atol=1e-5)


def test_pool_layers_equal_linen_layers():
  x = _x(3, (2, 8, 8, 3))
  pairs = [(jbx.BlurPool(size=4, kind="triangle"), jnn.BlurPool(size=4, kind="triangle")),
           (jbx.MaxBlurPool(pad_mode="zero"), jnn.MaxBlurPool(pad_mode="zero"))]
  for ours, linen in pairs:
    np.testing.assert_array_equal(np.asarray(ours(x)), np.asarray(linen.apply({}, x)))
  y, index = jbx.APSPool(blur_size=3)(x)
  y_ref, index_ref = jnn.APSPool(blur_size=3).apply({}, x)
  np.testing.assert_array_equal(np.asarray(y), np.asarray(y_ref))
  np.testing.assert_array_equal(np.asarray(index), np.asarray(index_ref))
  np.testing.assert_array_equal(np.asarray(jbx.APSPool()(x, index)[1]), np.asarray(index))


class CNN(nnx.Module):
  """A third-party-style NNX CNN: flax 'SAME' convs, one strided, a residual add, a linear head. ``pool`` is used
  only by the version written directly with jaxborders layers (stride-1 conv, then the pool)."""

  def __init__(self, rngs, conv=nnx.Conv, pool=None):
    self.conv1 = conv(3, 4, (3, 3), rngs=rngs)
    self.conv2 = conv(4, 8, (3, 3), strides=1 if pool else 2, rngs=rngs)
    self.pool = pool
    self.blocks = nnx.List([conv(8, 8, (3, 3), rngs=rngs)])
    self.head = nnx.Linear(8, 3, rngs=rngs)

  def __call__(self, x):
    x = nnx.relu(self.conv1(x))
    x = self.conv2(x)
    if self.pool is not None:  # where the switch puts the downsampling: right after the conv
      x = self.pool(x)
      x = x[0] if isinstance(x, tuple) else x
    x = nnx.relu(x)
    x = x + nnx.relu(self.blocks[0](x))
    return self.head(x.mean(axis=(1, 2)))


def _cnn(seed: int = 0, **kwargs) -> CNN:
  """A CNN with random parameters, built abstractly and filled from NumPy: no initialiser is compiled (compiling
  flax's random initialisers costs seconds each); the same seed gives every variant the same parameters."""
  model = nnx.eval_shape(lambda: CNN(nnx.Rngs(0), **kwargs))
  rng = np.random.default_rng(seed)
  params = nnx.state(model, nnx.Param)
  nnx.update(model, jax.tree.map(lambda a: jnp.asarray(0.3 * rng.standard_normal(a.shape), a.dtype), params))
  return model


# ('same', 'aps') is not among them: APS may pick the very phase flax's stride-2 'SAME' samples, and then the
# switched model legitimately equals the original.
_VARIANTS = [("circular", "blur:triangle:3", jbx.BlurPool(3, 2, "triangle")), ("reflect", "aps", jbx.APSPool()),
             ("circular", None, None)]


def test_switched_nnx_cnn_equals_cnn_written_with_jaxborders_layers():
  x = _x(4, (2, 8, 8, 3))
  switched, direct = [_cnn()], [_cnn()]  # first: the original, unswitched
  for mode, aa, pool in _VARIANTS:
    model = _cnn()
    kernel = model.conv2.kernel
    assert jbx.set_border_mode(model, mode, antialias=aa) == ["blocks/0", "conv1", "conv2"]
    assert model.conv2.kernel is kernel and isinstance(model.blocks[0], jbx.Conv)  # the same Param objects
    switched.append(model)
    direct.append(_cnn(conv=partial(jbx.Conv, mode=mode), pool=pool))
  # `same` at stride 1 (and at stride 2 on odd sizes, where flax's 'SAME' pads (1, 1) too) is the original.
  same = _cnn()
  jbx.set_border_mode(same, "same")
  x_odd = _x(5, (2, 9, 9, 3))

  @nnx.jit
  def run_all(switched, direct, same, x, x_odd):
    return [m(x) for m in switched], [d(x) for d in direct], same(x_odd), direct[0](x_odd)

  outs, refs, same_out, original_odd = run_all(nnx.List(switched), nnx.List(direct), same, x, x_odd)
  plain = outs[0]
  for a, b, variant in zip(outs[1:], refs[1:], _VARIANTS):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5, err_msg=str(variant[:2]))
    assert not np.allclose(np.asarray(a), np.asarray(plain), atol=1e-4)
  np.testing.assert_allclose(np.asarray(same_out), np.asarray(original_odd), rtol=1e-5, atol=1e-5)


def test_nnx_training_step_lowers_the_loss():
  model = _cnn()
  jbx.set_border_mode(model, "circular", antialias="blur")
  optimizer = nnx.Optimizer(model, optax.sgd(0.05), wrt=nnx.Param)
  x, y = _x(6, (4, 8, 8, 3)), jnp.array([0, 1, 2, 0])

  def loss_fn(model):
    return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()

  @nnx.jit
  def step(model, optimizer):
    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss

  first = step(model, optimizer)
  assert float(loss_fn(model)) < float(first)


def test_zoo_through_the_bridge_has_the_documented_layout():
  model = get_model("patch_toy_net", num_classes=3)
  x = _x(7, (2, 12, 12, 3))
  bridged = jbx.from_linen(model, x, rngs=nnx.Rngs(0))
  params = nnx.state(bridged, nnx.Param)
  flat = {tuple(str(k) for k in path): v for path, v in traverse_util.flatten_dict(params.to_pure_dict()).items()}
  variables = {"params": traverse_util.unflatten_dict(flat)}  # linen params/<path> == nnx Param at <path>
  np.testing.assert_allclose(np.asarray(bridged(x)), np.asarray(model.apply(variables, x)), rtol=1e-6, atol=1e-6)
  with pytest.raises(jnn.NothingToSwitchError):  # zoo models choose their mode with conv_mode, not the switch
    with jnn.border_mode("full"):
      bridged(x)


def test_set_border_mode_errors():
  with pytest.raises(jnn.NothingToSwitchError, match="has no nnx.Conv"):
    jbx.set_border_mode(nnx.eval_shape(lambda: nnx.Sequential(nnx.Linear(2, 2, rngs=nnx.Rngs(0)))), "circular")
  model = _cnn()
  with pytest.raises(ValueError, match="mode='wrap' is not supported"):
    jbx.set_border_mode(model, "wrap")
  with pytest.raises(ValueError, match="antialias='gauss' is not supported"):
    jbx.set_border_mode(model, "same", antialias="gauss")
  assert type(model.conv1) is nnx.Conv  # a refused switch changed nothing
  with pytest.warns(UserWarning, match="changes feature-map sizes"):
    jbx.set_border_mode(model, "full")
  with pytest.raises(TypeError, match="incompatible shapes"):  # JAX's own error at the residual add
    nnx.eval_shape(lambda m, x: m(x), model, jnp.zeros((1, 8, 8, 3)))
  with pytest.raises(ValueError, match="input_dilation=2 is not supported"):
    nnx.eval_shape(lambda: jbx.Conv(2, 2, (3, 3), input_dilation=2, rngs=nnx.Rngs(0)))
