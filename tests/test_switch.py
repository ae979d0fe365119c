"""border_mode: one `with` switches a third-party linen ResNet (written here in the manner of flax's
examples/imagenet/models.py) to circular / reflect / BlurPool / APS; each switched model equals the same network
written directly with jaxborders layers, loads the original checkpoint, and `same` reproduces the original."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxborders import nn as jnn

ModuleDef = Any


class ResNetBlock(fnn.Module):
  """flax examples/imagenet ResNetBlock (BatchNorm, projection shortcut when shapes differ)."""

  filters: int
  conv: ModuleDef
  norm: ModuleDef
  act: Callable
  strides: tuple[int, int] = (1, 1)

  @fnn.compact
  def __call__(self, x):
    residual = x
    y = self.conv(self.filters, (3, 3), self.strides)(x)
    y = self.act(self.norm()(y))
    y = self.conv(self.filters, (3, 3))(y)
    y = self.norm()(y)
    if residual.shape != y.shape:
      residual = self.conv(self.filters, (1, 1), self.strides, name="conv_proj")(residual)
      residual = self.norm(name="norm_proj")(residual)
    return self.act(residual + y)


class ResNet(fnn.Module):
  """flax examples/imagenet ResNet, shrunk: strided stem with explicit pads (7x7 there; 3x3 here, which compiles
  several times faster on CPU), max pool, stages, dense head."""

  stage_sizes: Sequence[int] = (1, 1)
  stem: int = 3
  num_filters: int = 4
  num_classes: int = 3
  conv: ModuleDef = fnn.Conv

  @fnn.compact
  def __call__(self, x, train: bool = False):
    conv = partial(self.conv, use_bias=False)
    norm = partial(fnn.BatchNorm, use_running_average=not train, momentum=0.9, epsilon=1e-5)
    x = conv(self.num_filters, (self.stem,) * 2, (2, 2), padding=[(self.stem // 2,) * 2] * 2, name="conv_init")(x)
    x = fnn.relu(norm(name="bn_init")(x))
    x = fnn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
    for i, block_size in enumerate(self.stage_sizes):
      for j in range(block_size):
        strides = (2, 2) if i > 0 and j == 0 else (1, 1)
        x = ResNetBlock(self.num_filters * 2**i, strides=strides, conv=conv, norm=norm, act=fnn.relu)(x)
    x = jnp.mean(x, axis=(1, 2))
    return fnn.Dense(self.num_classes)(x)


def antialiased_conv(antialias: str, mode: str):
  """A conv factory written with jaxborders layers: stride-1 `jnn.Conv` then BlurPool / APSPool (same param paths
  as the original, since the layer is named `Conv` and the pools have no parameters)."""

  def make(features, kernel_size, strides=(1, 1), **kwargs):
    conv = jnn.Conv(features, kernel_size, 1, mode=mode, **kwargs)
    if tuple(strides) == (1, 1):
      return conv
    if antialias.startswith("blur"):
      pool = jnn.BlurPool(size=3, stride=strides, kind="triangle")
      return lambda x: pool(conv(x))
    pool = jnn.APSPool(stride=strides)
    return lambda x: pool(conv(x))[0]

  return make


def _variables(model, x):
  """A random "checkpoint" with the structure `model.init` gives. `eval_shape` traces init without compiling it
  (compiling flax's random initialisers costs seconds); random BatchNorm statistics make nothing an identity."""
  shapes = jax.eval_shape(model.init, jax.random.key(0), x)
  rng = np.random.default_rng(0)
  stats = jax.tree.map(lambda a: jnp.asarray(rng.uniform(0.5, 1.5, a.shape), a.dtype), shapes["batch_stats"])
  params = jax.tree.map(lambda a: jnp.asarray(0.3 * rng.standard_normal(a.shape), a.dtype), shapes["params"])
  return {"params": params, "batch_stats": stats}


_VARIANTS = [("circular", "blur"), ("reflect", None), ("same", "aps")]


def test_switched_resnet_equals_resnet_written_with_jaxborders_layers():
  x = jnp.asarray(np.random.default_rng(1).standard_normal((2, 24, 24, 3)), jnp.float32)
  original = ResNet()
  variables = _variables(original, x)  # the "original checkpoint"
  direct = [ResNet(conv=partial(jnn.Conv, mode=m) if aa is None else antialiased_conv(aa, m)) for m, aa in _VARIANTS]

  @jax.jit
  def run_all(variables, x):
    out = []
    for (mode, aa), model in zip(_VARIANTS, direct):
      with jnn.border_mode(mode, antialias="blur:triangle:3" if aa == "blur" else aa) as record:
        switched = original.apply(variables, x)
      out.append((switched, model.apply(variables, x), len(record.paths)))
    return out, original.apply(variables, x)

  results, plain = run_all(variables, x)
  for (switched, expected, count), variant in zip(results, _VARIANTS):
    assert count == 6, variant  # stem, 2 + 2 block convs, 1 projection
    assert switched.shape == (2, 3)
    np.testing.assert_allclose(np.asarray(switched), np.asarray(expected), rtol=1e-4, atol=1e-4, err_msg=str(variant))
    assert not np.allclose(np.asarray(switched), np.asarray(plain), atol=1e-3), variant  # it did switch


def test_same_reproduces_the_original():
  # Odd sizes at the strided convs: there flax's 'SAME' pads (1, 1) like our `same`, so every layer matches
  # (at stride 1 they always match; at stride 2 on even sizes flax pads (0, 1)).
  x = jnp.asarray(np.random.default_rng(2).standard_normal((2, 25, 25, 3)), jnp.float32)
  model = ResNet()
  variables = _variables(model, x)

  @jax.jit
  def both(variables, x):
    with jnn.border_mode("same"):
      switched = model.apply(variables, x)
    return switched, model.apply(variables, x)

  switched, original = both(variables, x)
  np.testing.assert_allclose(np.asarray(switched), np.asarray(original), rtol=1e-5, atol=1e-5)


def test_full_on_a_residual_model_names_the_module():
  x = jnp.zeros((1, 24, 24, 3))
  model = ResNet()
  variables = _variables(model, x)
  for run in (lambda: model.init(jax.random.key(0), x), lambda: model.apply(variables, x)):
    with pytest.raises(jnn.BorderModeShapeError,
                       match=r"border_mode\('full'\).*module 'ResNetBlock_0' \(ResNetBlock\).*Last switched conv.*"
                             r"conv_mode='full'"):
      with jnn.border_mode("full"):
        jax.eval_shape(run)


def test_nothing_to_switch_and_bad_arguments():
  mlp = fnn.Dense(3)
  x = jnp.ones((1, 4))
  variables = mlp.init(jax.random.key(0), x)
  with pytest.raises(jnn.NothingToSwitchError, match="no flax.linen.Conv ran inside"):
    with jnn.border_mode("circular"):
      mlp.apply(variables, x)
  with pytest.raises(ValueError, match="mode='wrap' is not supported.*'circular'"):
    with jnn.border_mode("wrap"):
      pass
  with pytest.raises(ValueError, match="antialias='gauss' is not supported"):
    with jnn.border_mode("same", antialias="gauss"):
      pass
  with pytest.raises(ValueError, match="switches nothing"):
    with jnn.border_mode(None):
      pass
