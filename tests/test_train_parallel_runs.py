"""Microbatches (the same update as one pass) and parallel runs (worker processes, the same runs as in-process)."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxborders.models import get_model
from train import config as config_lib
from train import parallel
from train import synthetic
from train import trainer


def _state(model, tx, image_shape):
  params = model.init(jax.random.key(0), jnp.zeros((1, *image_shape)))["params"]
  return trainer.TrainState(step=jnp.zeros((), jnp.int32), params=params, batch_stats={}, opt_state=tx.init(params),
                            lr_scale=jnp.ones((), jnp.float32), rng=jax.random.key_data(jax.random.key(1)))


@pytest.mark.parametrize("mode", ["same", "full", "circular"])
def test_microbatches_give_the_same_update(mode):
  model = get_model("redgreen_net", conv_mode=mode)
  tx = optax.adadelta(1.0, rho=0.9, eps=1e-6)
  rng = np.random.default_rng(0)
  batch = {"image": jnp.asarray(rng.random((24, 20, 20, 3), np.float32)),
           "label": jnp.asarray(rng.integers(0, 2, 24), jnp.int32)}
  outs = {}
  for micro in (0, 6, 8, 24):
    step = jax.jit(lambda s, b, micro=micro: trainer.train_step(s, b, model=model, tx=tx, microbatch_size=micro))
    state, metrics = _state(model, tx, (20, 20, 3)), None
    for _ in range(2):
      state, metrics = step(state, batch)
    outs[micro] = (state.params, metrics)
  ref_params, ref_metrics = outs[0]
  for micro in (6, 8, 24):
    params, metrics = outs[micro]
    np.testing.assert_allclose(metrics["loss"], ref_metrics["loss"], rtol=1e-5)
    assert float(metrics["accuracy"]) == float(ref_metrics["accuracy"])
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(ref_params)):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=f"microbatch_size={micro}")


def _tiny(**kw):
  c = synthetic.tiny_config()
  c.num_steps = 4
  c.data.shuffle = True
  c.optimizer.name = "sgd"
  c.optimizer.learning_rate = 0.05
  for k, v in kw.items():
    setattr(c, k, v)
  return c


def test_microbatch_errors(tmp_path):
  c = _tiny(microbatch_size=5)
  with pytest.raises(ValueError, match=r"microbatch_size must be 0 \(off\) or an int that divides batch_size=16, got 5"):
    config_lib.validate(c)
  c = _tiny(microbatch_size=8)
  c.model.name = "resnet18"
  c.model.num_classes = 2
  c.model.conv_mode = "same"
  with pytest.raises(trainer.ConfigError, match="microbatch_size=8: model 'resnet18' has BatchNorm"):
    trainer.train_and_evaluate(c, str(tmp_path))
  with pytest.raises(ValueError, match=r"parallel_runs must be an int >= 0"):
    config_lib.validate(_tiny(parallel_runs=-1))


def test_num_workers():
  assert parallel.num_workers(2, 1) == 1  # a single remaining run still trains in a single-threaded worker
  assert parallel.num_workers(2, 0) == 0  # nothing left to train
  assert parallel.num_workers(1, 8) == 0  # parallel_runs=1: in this process
  cores = len(parallel.available_cores())
  assert parallel.num_workers(0, 8) == min(8, cores)
  assert parallel.num_workers(64, 3) == min(3, cores)


def _sweep(tmp_path, name, parallel_runs, **kw):
  c = _tiny(parallel_runs=parallel_runs, seeds=(0, 1), **kw)
  c.sweep.model = {"conv_mode": ("same", "full")}
  return trainer.train_and_evaluate(c, str(tmp_path / name))


@pytest.mark.skipif(len(parallel.available_cores()) < 2, reason="needs 2 cores")
def test_parallel_runs_match_in_process_runs(tmp_path, capfd):
  seq = _sweep(tmp_path, "seq", 1)
  par = _sweep(tmp_path, "par", 2)
  assert "4 runs, 2 at a time" in capfd.readouterr().out
  assert [r["overrides"] for r in par["runs"]] == [r["overrides"] for r in seq["runs"]]
  for a, b in zip(seq["runs"], par["runs"]):
    assert a["seed"] == b["seed"] and a["steps"] == b["steps"] == 4
    for k, v in a["metrics"].items():
      np.testing.assert_allclose(b["metrics"][k], v, rtol=1e-4, atol=1e-6, err_msg=k)
    pa, pb = (trainer.load_params(r["workdir"]) for r in (a, b))
    for x, y in zip(jax.tree.leaves(pa), jax.tree.leaves(pb)):
      np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6)
  assert os.path.exists(tmp_path / "par" / "conv_mode=full" / "seed_1" / "checkpoints")
  # Rerun: every run is finished, so nothing is spawned and the same results come back.
  again = _sweep(tmp_path, "par", 2)
  assert "at a time" not in capfd.readouterr().out
  assert [r["params_fingerprint"] for r in again["runs"]] == [r["params_fingerprint"] for r in par["runs"]]


@pytest.mark.skipif(len(parallel.available_cores()) < 2, reason="needs 2 cores")
def test_parallel_run_error_reaches_the_parent(tmp_path):
  c = _tiny(parallel_runs=2, seeds=(0, 1))
  c.num_steps = 8
  c.debug.nan_at_step = 5
  with pytest.raises(trainer.NonFiniteLossError, match=r"at step 5 \(epoch 2\)"):
    trainer.train_and_evaluate(c, str(tmp_path))
