"""Border-distance sweep (F-Conv paper Exp 1): quadrant_net's border arithmetic, exact F-Conv invariance, frozen
features, a small sweep through the trainer with its report, and (slow) the science check."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxborders.data import quadrant
from jaxborders.models import get_model


def _pair(border: int, patch: int = 8, canvas: int = 40, seed: int = 0) -> np.ndarray:
  """One random patch at both corners, 32 px (the net's total stride) apart: (2, S, S, 1)."""
  p = np.random.default_rng(seed).uniform(0.0, 1.0, (1, patch, patch, 1)).astype(np.float32)
  return quadrant.compose(np.repeat(p, 2, 0), np.array([0, 1]), canvas, border)


@pytest.mark.parametrize("border", [0, 16])
def test_full_conv_net_cannot_tell_the_corners_apart(border):
  # No BatchNorm: every layer maps zero to zero, full padding loses nothing and the corners are one total stride
  # (32 px) apart, so the network's output is exactly invariant to the corner swap, for any weights.
  x = _pair(border)
  for seed in range(2):
    net = get_model("quadrant_net", conv_mode="full", norm="none", width=4, stage_sizes=(1, 1, 1, 1))
    variables = jax.jit(net.init)(jax.random.PRNGKey(seed), x)
    logits = np.asarray(jax.jit(net.apply)(variables, x))
    np.testing.assert_allclose(logits[0], logits[1], rtol=1e-5, atol=1e-5)


def test_same_conv_net_sees_the_corners():
  x = _pair(0)
  net = get_model("quadrant_net", conv_mode="same", norm="none", width=4, stage_sizes=(1, 1, 1, 1))
  logits = np.asarray(jax.jit(net.apply)(jax.jit(net.init)(jax.random.PRNGKey(0), x), x))
  assert np.abs(logits[0] - logits[1]).max() > 1e-4


def test_batchnorm_breaks_full_conv_invariance():
  # Training-mode BatchNorm maps the black background to a non-zero constant; the next zero padding then outlines
  # the map, which is why configs/border_sweep.py uses norm='none'.
  x = _pair(0)
  net = get_model("quadrant_net", conv_mode="full", norm="batch", width=4, stage_sizes=(1, 1, 1, 1))
  variables = jax.jit(net.init)(jax.random.PRNGKey(0), x)
  apply = jax.jit(lambda v, b: net.apply(v, b, train=True, mutable=["batch_stats"])[0])
  feats = []
  for i in range(2):  # batch statistics of a batch holding only one of the two images
    batch = jnp.concatenate([x[i:i + 1], jnp.zeros_like(x[:1])])
    feats.append(np.asarray(apply(variables, batch)[0]))
  assert np.abs(feats[0] - feats[1]).max() > 1e-5


@pytest.mark.parametrize("mode", ["same", "full", "valid", "circular"])
def test_every_mode_runs_and_min_size(mode):
  net = get_model("quadrant_net", conv_mode=mode, width=2, stage_sizes=(1, 1))
  shape = net.example_input_shape()
  variables = jax.jit(net.init)(jax.random.PRNGKey(0), jnp.zeros(shape))
  assert jax.jit(net.apply)(variables, jnp.zeros(shape)).shape == (2, 2)
  minimum = net.min_input_size()  # example_input_shape is the minimum made even (APS halves it exactly)
  if minimum[0] > 1:
    small = (2, minimum[0] - 1, minimum[1] - 1, 3)
    with pytest.raises(ValueError, match="minimum"):
      net.apply(variables, jnp.zeros(small))


def test_frozen_features_train_only_the_head():
  x = _pair(8)
  y = jnp.array([0, 1])
  net = get_model("quadrant_net", conv_mode="same", width=4, stage_sizes=(1, 1, 1, 1), frozen_features=True)
  variables = jax.jit(net.init)(jax.random.PRNGKey(0), x)

  def loss(params):
    logits, _ = net.apply({"params": params, "batch_stats": variables["batch_stats"]}, x, train=True,
                          mutable=["batch_stats"])
    return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(2), y])

  grads = jax.jit(jax.grad(loss))(variables["params"])
  for path, g in jax.tree_util.tree_leaves_with_path(grads):
    name = jax.tree_util.keystr(path)
    if "fc" in name:
      assert np.abs(g).max() > 0, name
    else:
      assert not np.asarray(g).any(), name


def test_bad_arguments():
  with pytest.raises(ValueError, match="norm="):
    get_model("quadrant_net", norm="layer")
  with pytest.raises(ValueError, match="pool="):
    get_model("quadrant_net", pool="sum")
  with pytest.raises(ValueError, match="antialias="):
    get_model("quadrant_net", antialias="blur")


def _config(**overrides):
  from configs import border_sweep as cfg

  config = cfg.get_config()
  for key, value in overrides.items():
    node = config
    *parents, leaf = key.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = value
  return config


def test_small_sweep_writes_report(tmp_path):
  from train import trainer

  # A tiny net (stem + one block) on 8-px patches in a 16-px canvas keeps the 4 compiles short.
  config = _config(**{"num_epochs": 1, "batch_size": 4, "data.num_train": 4, "data.num_val": 2, "data.num_test": 2,
                      "data.patch_size": 8, "data.canvas_size": 16, "model.width": 2, "model.stage_sizes": (1,),
                      "eval.every_n_epochs": 1, "checkpoint.every_n_epochs": 1, "log.every_n_epochs": 1,
                      "sweep.data.border": (0, 4), "sweep.model.frozen_features": (True,),
                      "parallel_runs": 1})  # in-process: worker start-up would dominate these tiny runs
  workdir = str(tmp_path / "bs")
  summary = trainer.train_and_evaluate(config, workdir)
  assert summary["num_runs"] == 4
  for name in ("border_sweep.md", "border_sweep.png", "summary.md"):
    assert os.path.getsize(os.path.join(workdir, name)) > 0
  text = open(os.path.join(workdir, "border_sweep.md")).read()
  assert "b=4 (24 px)" in text and "random frozen features" in text


def test_paper_config_is_valid():
  from configs import border_sweep_paper as cfg
  from train import config as config_lib

  config = cfg.get_config()
  config_lib.validate(config)
  assert tuple(config.sweep.data.border) == quadrant.PAPER.borders


@pytest.mark.slow
def test_science_same_locates_far_from_border_full_at_chance(tmp_path):
  # The default CPU protocol at b=64 (a 184-px image; the border is larger than the patch's distance between the
  # corners), from scratch: two runs, ~1 min on 2 cores.
  from train import trainer

  config = _config(**{"sweep.data.border": (64,), "sweep.model.frozen_features": (False,)})
  summary = trainer.train_and_evaluate(config, str(tmp_path / "bs"))
  acc = {r["overrides"]["model.conv_mode"]: r["metrics"]["test/accuracy"] for r in summary["runs"]}
  assert acc["same"] >= 0.75, acc
  assert acc["full"] == 0.5, acc
