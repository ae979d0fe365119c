"""2D ResNets: torchvision parameter counts, F-Conv map sizes, validation, APS placement and shift invariance,
every conv_mode × antialias combination forward + backward."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxborders.models import get_model, intermediate_shapes, intermediates, list_models

MODES = ("same", "full", "circular", "valid", "reflect", "replicate")
ANTIALIAS = (None, "blur:binomial:4", "aps")


def variable_shapes(model, shape):
  return jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x), jax.ShapeDtypeStruct(shape, jnp.float32))


def random_variables(model, shape, seed=0):
  """Random weights and BatchNorm statistics without running ``init`` (which compiles op by op on CPU)."""
  rng = np.random.default_rng(seed)

  def fill(path, s):
    name = path[-1].key
    if name == "var":
      v = rng.uniform(0.5, 1.5, s.shape)
    elif name == "scale":
      v = rng.uniform(0.75, 1.25, s.shape)
    elif name in ("mean", "bias"):
      v = rng.normal(0, 0.1, s.shape)
    else:
      v = rng.normal(0, math.sqrt(2.0 / math.prod(s.shape[:-1])), s.shape)
    return jnp.asarray(v, jnp.float32)

  return jax.tree_util.tree_map_with_path(fill, variable_shapes(model, shape))


def n_params(variables):
  return sum(x.size for x in jax.tree_util.tree_leaves(variables["params"]))


def test_registered_names():
  assert {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152"} <= set(list_models("resnet*"))


@pytest.mark.parametrize("name,count", [("resnet18", 11_689_512), ("resnet34", 21_797_672), ("resnet50", 25_557_032),
                                        ("resnet101", 44_549_160), ("resnet152", 60_192_808)])
def test_parameter_counts_equal_torchvision(name, count):
  for mode in ("same", "full"):  # border handling adds no parameters
    assert n_params(variable_shapes(get_model(name, conv_mode=mode), (1, 64, 64, 3))) == count


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_feature_map_sizes_at_224(name):
  # F-Conv (CWB): stem 115 -> pool 57 -> ... -> 21×21; S-Conv (torchvision) 56 -> 7×7.
  expected = {"same": {"stem": 56, "stage4": 7}, "full": {"stem": 57, "stage4": 21}}
  stages = (2, 2, 2, 2) if name == "resnet18" else (3, 4, 6, 3)
  order = ["stem"] + [n for s, blocks in enumerate(stages, 1)
                      for n in [f"layer{s}.{b}" for b in range(blocks)] + [f"stage{s}"]] + ["pre_logits"]
  for mode, sizes in expected.items():
    shapes = intermediate_shapes(get_model(name, conv_mode=mode), (1, 224, 224, 3))
    assert list(shapes) == order  # network order
    for key, n in sizes.items():
      assert shapes[key][1:3] == (n, n), (mode, key, shapes[key])
    assert shapes["pre_logits"] == (1, 512 if name == "resnet18" else 2048)


def test_bad_arguments_list_valid_values():
  with pytest.raises(ValueError, match="model='resnet19' is not registered; accepted names: .*resnet18"):
    get_model("resnet19")
  with pytest.raises(ValueError, match="conv_mode='zero' is not supported; accepted values: 'valid', 'same'"):
    get_model("resnet18", conv_mode="zero")
  for spec in ("blur:gauss:3", "lpf", "blur:binomial:9", "aps:l3", 3, "aps:l2:3:1"):
    with pytest.raises(ValueError, match="antialias=.* accepted forms: None, 'blur'.*'aps:<norm>:<blur_size>'"):
      get_model("resnet50", antialias=spec)
  with pytest.raises(ValueError, match="temporal_mode='full' only applies to 3D"):
    get_model("resnet18").clone(temporal_mode="full")
  with pytest.raises(ValueError, match="num_classes must be an int >= 1"):
    get_model("resnet18", num_classes=0)
  with pytest.raises(ValueError, match="pool_only='yes' is not supported; accepted values: None, True, False"):
    get_model("resnet18", pool_only="yes")


@pytest.mark.parametrize("mode,antialias,minimum", [("valid", None, 435), ("same", "blur:triangle:3", 19),
                                                    ("reflect", None, 33), ("full", None, 1)])
def test_too_small_input_states_the_minimum(mode, antialias, minimum):
  model = get_model("resnet18", conv_mode=mode, antialias=antialias)
  assert model.min_input_size() == (minimum, minimum)
  variable_shapes(model, (1, minimum, minimum + 3, 3))  # the minimum itself runs
  if minimum > 1:
    with pytest.raises(ValueError, match=rf"smaller than the minimum \({minimum}, {minimum}\)"):
      variable_shapes(model, (1, minimum + 5, minimum - 1, 3))
  with pytest.raises(ValueError, match="channels-last"):
    variable_shapes(model, (minimum, minimum, 3))


def _loss_fn(model):
  def loss(params, batch_stats, x):
    logits, updates = model.apply({"params": params, "batch_stats": batch_stats}, x, train=True,
                                  mutable=["batch_stats"])
    return jnp.mean(logits ** 2), updates
  return loss


def _grid_models(name, modes=MODES, antialias=ANTIALIAS, **kwargs):
  return [(m, a, get_model(name, conv_mode=m, antialias=a, num_classes=3, **kwargs)) for m in modes for a in antialias]


@pytest.mark.parametrize("name, stage_sizes", [pytest.param("resnet18", (1, 1, 1, 1), id="resnet18"),
                                               pytest.param("resnet50", None, id="resnet50", marks=pytest.mark.slow)])
def test_every_combination_traces_forward_backward_and_sizes_agree(name, stage_sizes):
  # Tracing (no compile): every mode × antialias builds, differentiates and updates BN stats at a small input.
  # The quick run traces one block per stage (every block kind: stage 1 starts with an identity block, the
  # others with a strided projection), half the tracing; the slow run traces the full ResNet-50.
  for mode, antialias, model in _grid_models(name):
    model = model.clone(stage_sizes=stage_sizes) if stage_sizes else model
    shape = (1, *(max(36, m) for m in model.min_input_size()), 3) if mode == "valid" else (1, 36, 36, 3)
    v = variable_shapes(model, shape)
    grads, updates = jax.eval_shape(jax.grad(_loss_fn(model), has_aux=True), v["params"], v["batch_stats"],
                                    jax.ShapeDtypeStruct(shape, jnp.float32))
    assert jax.tree_util.tree_structure(grads) == jax.tree_util.tree_structure(v["params"])
    assert jax.tree_util.tree_structure(updates["batch_stats"]) == jax.tree_util.tree_structure(v["batch_stats"])


def _run_grid(models, size=None):
  """Forward + backward under one jit for several models (one compile), finite results."""
  batch = []
  for _, _, model in models:
    shape = model.example_input_shape(2) if size is None else (2, max(size, model.min_input_size()[0]),) * 1 + (
        max(size, model.min_input_size()[1]), 3)
    batch.append((model, random_variables(model, shape), jnp.ones(shape) * jnp.linspace(-1, 1, shape[2])[:, None]))

  @jax.jit
  def step(all_vars, xs):
    return [jax.grad(_loss_fn(m), has_aux=True)(v["params"], v["batch_stats"], x)
            for (m, _, _), v, x in zip(batch, all_vars, xs)]

  out = step([b[1] for b in batch], [b[2] for b in batch])
  for (mode, antialias, _), (grads, _) in zip(models, out):
    leaves = jax.tree_util.tree_leaves(grads)
    assert all(bool(jnp.isfinite(g).all()) for g in leaves), (mode, antialias)
    assert any(float(jnp.abs(g).max()) > 0 for g in leaves), (mode, antialias)


def test_representative_combinations_run_under_jit():
  # One compile for two models (CPU compiles dominate); `same` forward is covered by the torch comparison, the
  # whole grid by the slow test below.
  # One block per stage: the same block types and downsampling paths, half the compile time.
  models = [(m, a, model.clone(stage_sizes=(1, 1, 1, 1))) for m, a, model in _grid_models("resnet18")
            if (m, a) in {("full", "blur:binomial:4"), ("circular", "aps")}]
  _run_grid(models, size=36)


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_every_combination_runs_under_jit(mode):
  _run_grid(_grid_models("resnet18", modes=(mode,)), size=36)


def test_bfloat16_compute_float32_params():
  model = get_model("resnet50", conv_mode="full", antialias="blur:triangle:3", dtype=jnp.bfloat16)
  x = jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32)
  v = variable_shapes(model, x.shape)
  assert {a.dtype for a in jax.tree_util.tree_leaves(v)} == {jnp.dtype(jnp.float32)}
  logits, feats = jax.eval_shape(lambda v, x: (model.apply(v, x), intermediates(model, v, x)), v, x)
  assert logits.dtype == jnp.float32 and feats["stage4"].dtype == jnp.bfloat16


def test_docstring_examples():
  import doctest

  from jaxborders.models import resnet

  result = doctest.testmod(resnet)
  assert result.failed == 0
