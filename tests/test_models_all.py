"""Every registered model × every border mode × antialias builds, runs forward and backward under jit.

Registering a model is enough to get it tested here. Conventions the test relies on (``jaxborders.models.common``):

* ``model.example_input_shape(batch)`` gives a small valid channels-last input;
  ``model.min_input_size()`` the smallest spatial shape (computed by tracing), below which ``__call__`` raises
  ``ValueError`` stating it.
* ``jaxborders.models.intermediates`` returns the sown maps in network order.
* The output is (batch, ``model.num_classes``), or (batch, ``model.dim``) for descriptor nets.
* Models built from a config with a field in ``TINY`` are narrowed (``Module.clone``) so the sweep stays fast on
  CPU: widths shrink, block counts drop to one or two per stage. The structure under test is unchanged.
* A model that does not support an ``antialias`` value raises ``ValueError`` naming ``antialias``: skipped.

The full matrix is marked slow (one XLA compile per combination: minutes); by default six models spread over
the registry run, covering every mode and every antialias value, plus the cheap checks (bad options and
too-small inputs) for every model.
"""

from __future__ import annotations

import dataclasses
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxborders.models import get_model, intermediate_shapes, intermediates, list_models
from jaxborders.models.vgg import CONFIGS
from jaxborders.ops.padding import MODES

ANTIALIAS = (None, "blur:triangle:3", "aps")
# Field name -> narrowed value; a field is only narrowed when the model has it and its value is larger.
TINY = {
    "width": 8,
    "classifier_width": 16,
    "growth_rate": 4,
    "num_init_features": 8,
    "block_config": (2, 2, 2, 2),
    "stage_sizes": (1, 1, 1, 1),
    "layers": (1, 1, 1, 1),
}
BATCH = 2


def _narrow(model):
  fields = {f.name for f in dataclasses.fields(model)}
  updates = {}
  for name, tiny in TINY.items():
    if name not in fields:
      continue
    value = getattr(model, name)
    if isinstance(tiny, tuple):
      if isinstance(value, (tuple, list)) and len(value) == len(tiny) and sum(value) > sum(tiny):
        updates[name] = tiny
    elif isinstance(value, int) and value > tiny:
      updates[name] = tiny
  return model.clone(**updates) if updates else model


def _build(name: str, conv_mode: str, antialias):
  try:
    model = get_model(name, conv_mode=conv_mode, antialias=antialias)
  except ValueError as e:
    if antialias is not None and "antialias" in str(e):
      pytest.skip(f"{name} does not support antialias={antialias!r}")
    raise
  return _narrow(model)


def _input_shape(model) -> tuple[int, ...]:
  if hasattr(model, "example_input_shape"):
    return tuple(model.example_input_shape(BATCH))
  return (BATCH, 32, 32, 3)


def _output_dim(model) -> int:
  return getattr(model, "num_classes", None) or model.dim


def check_forward_backward(name: str, conv_mode: str, antialias) -> None:
  model = _build(name, conv_mode, antialias)
  shape = _input_shape(model)
  x = jax.random.normal(jax.random.key(0), shape, jnp.float32)
  target = jax.random.normal(jax.random.key(3), (BATCH, _output_dim(model)))

  @jax.jit
  def run(x):  # init, a train-mode gradient and an eval-mode forward in one compiled program
    variables = model.init({"params": jax.random.key(1), "dropout": jax.random.key(2)}, x, train=False)
    params, state = variables["params"], {k: v for k, v in variables.items() if k != "params"}

    def loss_fn(params):
      out, _ = model.apply({"params": params, **state}, x, train=True, rngs={"dropout": jax.random.key(4)},
                           mutable=list(state))
      return jnp.sum(out * target), out

    (loss, out), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    return loss, out, model.apply(variables, x, train=False), grads

  loss, out, eval_out, grads = run(x)
  expected = (BATCH, _output_dim(model))
  assert out.shape == expected and eval_out.shape == expected, (name, out.shape, eval_out.shape, expected)
  assert np.isfinite(float(loss))
  assert np.all(np.isfinite(np.asarray(eval_out)))
  leaves = jax.tree.leaves(grads)
  assert leaves and all(np.all(np.isfinite(np.asarray(g))) for g in leaves), name
  assert any(float(jnp.abs(g).max()) > 0 for g in leaves), f"{name}: all gradients are zero"


def _rotation(count: int = 6) -> list[tuple[str, str, object]]:
  """``count`` models spread over the registry; together they see every mode and every antialias value.

  A model that rejects its antialias value is passed over for the next name that accepts it.
  """
  names = list_models()
  picks = []
  for i in range(count):
    mode, antialias = MODES[i % len(MODES)], ANTIALIAS[i % len(ANTIALIAS)]
    start = (i * len(names)) // count
    for name in names[start:] + names[:start]:
      try:
        get_model(name, conv_mode=mode, antialias=antialias)
      except ValueError:
        continue
      picks.append((name, mode, antialias))
      break
  return picks


@pytest.mark.parametrize("name,conv_mode,antialias", _rotation())
def test_model_forward_backward(name, conv_mode, antialias):
  check_forward_backward(name, conv_mode, antialias)


@pytest.mark.slow
@pytest.mark.parametrize("antialias", ANTIALIAS)
@pytest.mark.parametrize("conv_mode", MODES)
@pytest.mark.parametrize("name", list_models())
def test_model_matrix(name, conv_mode, antialias):
  check_forward_backward(name, conv_mode, antialias)


# The later methods (jaxborders.nn.methods), registered in the same antialias factory as BlurPool and APS.
LATER_METHODS = ("lps", "adaptive:3:2", "afc", "flc")


@pytest.mark.parametrize("antialias", ["lps", "adaptive:3:2", pytest.param("afc", marks=pytest.mark.slow),
                                       pytest.param("flc", marks=pytest.mark.slow)])  # afc/flc: same factory path
def test_later_methods_train_a_step(antialias):
  """Each later method as the zoo's ResNet-18 downsampling: builds, trains a step, finite non-zero gradients."""
  check_forward_backward("resnet18", "circular", antialias)


@pytest.mark.slow
@pytest.mark.parametrize("antialias", LATER_METHODS)
@pytest.mark.parametrize("conv_mode", ("same", "circular", "full"))
@pytest.mark.parametrize("name", list_models())
def test_later_methods_matrix(name, conv_mode, antialias):
  check_forward_backward(name, conv_mode, antialias)


def _blocks(prefix_stages):
  return [n for s, blocks in enumerate(prefix_stages, 1) for n in [f"layer{s}.{b}" for b in range(blocks)]
          + [f"stage{s}"]]


def _expected_order(model) -> list[str]:
  """The network order of each family's intermediates, restated from its configuration."""
  kind = type(model).__name__
  if kind in ("ResNet", "ResNet3D", "QuadrantNet"):
    return ["stem", *_blocks(model.stage_sizes), "pre_logits"]
  if kind == "BagNet":
    return ["stem", *_blocks(model.layers), "pre_logits"]
  if kind == "VGG":
    names, i, stage = [], 0, 1
    for v in CONFIGS[model.depth]:
      if v == "M":
        names.append(f"stage{stage}")
        i, stage = i + 1, stage + 1
      else:
        step = 3 if model.batch_norm else 2
        names.append(f"features_{i + step - 1}")
        i += step
    return names + ["pre_logits"]
  if kind == "DenseNet":
    n = len(model.block_config)
    return ["stem"] + [x for b in range(1, n + 1) for x in [f"block{b}"] + ([f"transition{b}_pool"] if b < n else [])
                       ] + ["pre_logits"]
  if kind == "HardNet":
    return [f"conv{i}" for i in range(1, 8)] + ["pre_logits"]
  if kind == "RedGreenNet":
    return [f"relu{i}" for i in range(1, 5)] + ["pre_logits"]
  if kind == "PatchToyNet":
    return ["response", "pre_logits"]
  raise AssertionError(f"no expected order for {kind}: add it here when registering a family")


@pytest.mark.parametrize("name", list_models())
def test_intermediates_are_named_in_network_order(name):
  model = _build(name, "same", None)
  shape = _input_shape(model)
  shapes = intermediate_shapes(model, shape)
  assert list(shapes) == _expected_order(model)
  assert all(s[0] == shape[0] for s in shapes.values())
  assert len(shapes["pre_logits"]) == 2 and all(len(s) == len(shape) for k, s in shapes.items() if k != "pre_logits")


def test_intermediates_keep_their_order_through_jit():
  model = get_model("vgg11", width=8, classifier_width=16)  # features_12 would sort before features_4
  x = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32)
  variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
  maps = jax.eval_shape(lambda v, x: intermediates(model, v, x), variables, x)  # through a traced function
  names = list(maps)
  assert names == _expected_order(model) and names.index("features_4") < names.index("features_12")
  assert list(jax.eval_shape(lambda: dict(maps))) != names  # a plain dict would come back key-sorted


# One model per family by default; the others (same code, more tracing) in the slow run.
_MIN_SIZE_QUICK = {"resnet18", "resnet50", "resnet3d_18", "vgg11_bn", "densenet121", "hardnet", "bagnet9",
                   "redgreen_net", "patch_toy_net", "quadrant_net"}


@pytest.mark.parametrize("name", [n if n in _MIN_SIZE_QUICK else pytest.param(n, marks=pytest.mark.slow)
                                  for n in list_models()])
def test_too_small_input_names_the_minimum(name):
  model = _build(name, "valid", None)  # unpadded convs: the largest minimum
  minimum = tuple(model.min_input_size())
  jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), jnp.zeros((1, *minimum, shape_c(model))))
  if min(minimum) <= 1:
    pytest.skip(f"{name} accepts any input size")
  for axis in range(len(minimum)):  # one pixel less along any axis fails, with a message stating the minimum
    smaller = [m - (a == axis) for a, m in enumerate(minimum)]
    with pytest.raises(ValueError, match=rf"smaller than the minimum {re.escape(str(minimum))}"):
      jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False),
                     jnp.zeros((1, *smaller, shape_c(model))))


def shape_c(model) -> int:
  return model.input_channels


@pytest.mark.parametrize("name", list_models())
def test_bad_options_list_the_valid_ones(name):
  with pytest.raises(ValueError, match="conv_mode.*'full'"):
    get_model(name, conv_mode="zeros")
  with pytest.raises(ValueError, match="antialias"):
    get_model(name, antialias="blurry")


def test_bad_antialias_spec_lists_every_accepted_form():
  for spec in ("blurry", "blur:gauss:3", "aps:l3", "aps:l2:3:1", "maxblur:1", 7):
    with pytest.raises(ValueError, match=r"antialias=.*accepted forms: None, 'blur', 'blur:<kind>:<size>', "
                                         r"'maxblur', 'maxblur:<kind>:<size>', 'aps', 'aps:<norm>', "
                                         r"'aps:<norm>:<blur_size>'"):
      get_model("resnet18", antialias=spec)
