"""Every registered model × every border mode × antialias builds, runs forward and backward under jit.

Registering a model is enough to get it tested here. Conventions the test relies on (``jaxborders.models.common``):

* ``model.example_input_shape(batch)`` gives a small valid channels-last input (default: (batch, 32, 32, 3));
  ``model.min_input_size()`` the smallest spatial shape, below which ``__call__`` raises ``ValueError``.
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

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxborders.models import get_model, list_models
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


@pytest.mark.parametrize("name", list_models())
def test_too_small_input_names_the_minimum(name):
  model = _build(name, "valid", None)  # unpadded convs: the largest minimum
  if not hasattr(model, "min_input_size"):
    pytest.skip(f"{name} declares no min_input_size")
  minimum = tuple(model.min_input_size())
  if min(minimum) <= 1:
    pytest.skip(f"{name} accepts any input size")
  shape = list(_input_shape(model))
  shape[1:-1] = [m - 1 for m in minimum]
  with pytest.raises(ValueError, match="minimum"):
    jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), jnp.zeros(shape))


@pytest.mark.parametrize("name", list_models())
def test_bad_options_list_the_valid_ones(name):
  with pytest.raises(ValueError, match="conv_mode.*'full'"):
    get_model(name, conv_mode="zeros")
  with pytest.raises(ValueError, match="antialias"):
    get_model(name, antialias="blurry")
