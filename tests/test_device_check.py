"""benchmarks/device_check.py: its PyTorch reference pieces against this project's, its dry run (every section's
code path on the CPU, tiny sizes), and the sharded train step it runs on the accelerator (``-k sharded``)."""

import functools
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxborders as jb
from benchmarks import device_check as dc
from train import sharding, trainer


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5])
def test_binomial_taps_are_the_projects_filters(size):
  np.testing.assert_allclose(dc.binomial_taps(size), np.asarray(jb.filter_taps("binomial", size)), rtol=1e-6)


@pytest.mark.parametrize("full", [False, True])
def test_torch_blurpool_matches_blur_pool(full):
  torch = pytest.importorskip("torch")
  blur, _ = dc.torch_modules()
  x = np.random.default_rng(0).standard_normal((2, 9, 10, 3)).astype(np.float32)
  ours = jb.blur_pool(jnp.asarray(x), size=3, stride=2, kind="binomial", pad_mode="full" if full else "reflect")
  theirs = blur(3, 3, 2, full)(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy().transpose(0, 2, 3, 1)
  np.testing.assert_allclose(theirs, np.asarray(ours), rtol=1e-5, atol=1e-6)


def test_bad_arguments_name_the_accepted_values(tmp_path):
  with pytest.raises(ValueError, match="accepted values: env, tests, equivalence, resnet50, ops, train"):
    dc.main(["--dry-run", "--out", str(tmp_path), "--sections", "env,bogus"])
  with pytest.raises(ValueError, match="SECTION=SECONDS"):
    dc.main(["--dry-run", "--out", str(tmp_path), "--budget", "resnet50"])
  with pytest.raises(ValueError, match="accepted values: same, full, same\\+blur, full\\+blur"):
    dc.torch_resnet50("aps", 10)


def test_spent_budget_skips_and_records(tmp_path):
  rows = dc.run_entries("jax", dc.DRY, [dict(variant="same", dtype="float32", batch=2)], dc.Budget(0), tmp_path,
                        dc.child_env("cpu"))
  assert rows == [dict(variant="same", dtype="float32", batch=2, error="skipped: section budget spent")]


def test_dry_run_equivalence_and_ops(tmp_path):
  """The GPU command's quick sections in tiny CPU mode (the fast suite): our PyTorch networks compute this
  project's functions, and the op timings are real. ``test_dry_run_exercises_every_section`` runs them all."""
  result = dc.main(["--dry-run", "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work"),
                    "--sections", "env,equivalence,ops", "--budget", "env=60", "--budget", "equivalence=300",
                    "--budget", "ops=300"])  # the dry run's own budgets are too tight for a loaded 2-core CPU
  assert {k: v["status"] for k, v in result["sections"].items()} == {s: "ok" for s in ("env", "equivalence", "ops")}
  for r in result["equivalence"]:
    assert r["max_abs_logit"] > 0.1 and r["max_abs_diff"] < 1e-3 * r["max_abs_logit"], r
  assert len([r for r in result["ops"] if r["ms"] > 0]) == 12


@pytest.mark.slow  # several minutes on a slow 2-core CPU: ResNet-50 in both frameworks, a subprocess test run
def test_dry_run_exercises_every_section(tmp_path):
  """The GPU command in tiny CPU mode: every section runs without an error, and its numbers are real."""
  result = dc.main(["--dry-run", "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work"),
                    "--budget", "resnet50=600", "--budget", "train=600", "--budget", "equivalence=300",
                    "--budget", "tests=300", "--budget", "ops=300", "--budget", "env=60"])
  assert {k: v["status"] for k, v in result["sections"].items()} == {s: "ok" for s in dc.SECTIONS}
  assert all(t["passed"] >= 1 and t["failures"] == t["errors"] == 0 for t in result["tests"])
  for r in result["equivalence"]:  # our PyTorch networks compute this project's functions
    assert r["max_abs_logit"] > 0.1 and r["max_abs_diff"] < 1e-3 * r["max_abs_logit"], r
  rows = result["resnet50"]
  kinds = {(r["framework"], r["variant"], r["dtype"], bool(r.get("compile")), bool(r.get("search"))) for r in rows}
  assert ("torch", "same", "bfloat16", True, False) in kinds and ("jax", "aps", "bfloat16", False, False) in kinds
  assert ("jax", "same", "bfloat16", False, True) in kinds and ("torch", "same", "bfloat16", False, True) in kinds
  assert ("jax", "full+blur", "float32", False, False) in kinds
  for r in rows:
    assert r["images_per_s"] > 0 and np.isfinite(r["loss"]), r
    assert r["framework"] == "torch" or r["flops"] > 0
  assert len([r for r in result["ops"] if r["ms"] > 0]) == 12  # JAX blur/APS and torch blur, fwd/fwd+bwd, 2 dtypes
  train = result["train"]
  assert train["exit_code"] == 0 and train["summary"]["steps"] == dc.DRY.train_steps
  assert train["train_images_per_s_steady"] > 0 and all(p["images_per_s"] > 0 for p in train["pipeline"])
  assert train["data_images_per_s_median"] > 0  # the pipeline's own throughput lines reached the log
  md = (tmp_path / "out" / "device_check.md").read_text()
  assert "| same | bfloat16 |" in md and "rn50_full end to end" in md
  assert json.loads((tmp_path / "out" / "device_check.json").read_text())["sections"] == result["sections"]


class _TinyNet(nn.Module):
  """Border conv, BatchNorm (statistics over the global batch), BlurPool, dense: the accelerator paths."""

  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = jb.nn.Conv(8, (3, 3), mode="full", dtype=self.dtype)(x.astype(self.dtype))
    x = nn.relu(nn.BatchNorm(use_running_average=not train, dtype=self.dtype)(x))
    x = jb.nn.BlurPool(size=3, stride=2)(x)
    return nn.Dense(3, dtype=self.dtype)(x.mean(axis=(1, 2))).astype(jnp.float32)


@pytest.mark.device
def test_sharded_train_step_matches_one_device():
  """The trainer's step in bfloat16 compute with the batch split over every local device equals the step on one
  device (float32 parameters and updates)."""
  model, tx = _TinyNet(jnp.bfloat16), optax.sgd(0.1, momentum=0.9)
  mesh = sharding.make_mesh()
  n = 2 * mesh.devices.size
  rng = np.random.default_rng(0)
  batch = {"image": rng.standard_normal((n, 12, 12, 3)).astype(np.float32),
           "label": rng.integers(0, 3, n).astype(np.int32)}
  variables = model.init(jax.random.PRNGKey(0), batch["image"][:1])
  state = trainer.TrainState(step=jnp.zeros((), jnp.int32), params=variables["params"],
                             batch_stats=variables["batch_stats"], opt_state=tx.init(variables["params"]),
                             lr_scale=jnp.ones((), jnp.float32), rng=jax.random.PRNGKey(1))
  step = functools.partial(trainer.train_step, model=model, tx=tx)
  rep = sharding.replicated(mesh)
  sharded_batch = sharding.put_batch(batch, mesh)
  assert len(sharded_batch["image"].sharding.device_set) == mesh.devices.size
  got, got_m = jax.jit(step, out_shardings=(rep, rep))(sharding.put_replicated(jax.device_get(state), mesh),
                                                        sharded_batch)
  one = jax.devices()[0]
  want, want_m = jax.jit(step)(jax.device_put(state, one), jax.device_put(batch, one))
  tol = 2e-2  # bfloat16 activations; a wrong shard or a per-device BatchNorm statistic is off by far more
  np.testing.assert_allclose(float(got_m["loss"]), float(want_m["loss"]), rtol=tol)
  for a, b in zip(jax.tree.leaves((got.params, got.batch_stats)), jax.tree.leaves((want.params, want.batch_stats))):
    np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32), rtol=tol, atol=tol)
