"""Patch-location toy (F-Conv paper Fig. 1): data, exact chance of full / circular, the config and its report."""

import os

import jax
import numpy as np
import pytest

from jaxborders.data.patch_toy import patch_toy
from jaxborders.models import get_model, intermediates


def test_identical_patch_at_both_corners():
  d = patch_toy(2, image_size=32, patch_size=16)
  x, y = d["image"], d["label"]
  assert x.shape == (4, 32, 32, 1) and y.tolist() == [0, 1, 0, 1]
  for i in (0, 2):
    np.testing.assert_array_equal(x[i, :16, :16], x[i + 1, 16:, 16:])
    assert x[i, :16, :16].std() > 0.05  # a textured patch, not a blank one
    assert not x[i, 16:].any() and not x[i, :, 16:].any()  # black elsewhere
    assert not x[i + 1, :16].any() and not x[i + 1, :, :16].any()


def test_held_out_patches_differ():
  import ml_collections

  from jaxborders.data import patch_toy as source

  c = ml_collections.ConfigDict(dict(source.DEFAULTS, held_out=True))
  train, test = source.load(c, "train", 0), source.load(c, "test", 0)
  assert not np.array_equal(train["image"], test["image"])
  c.held_out = False
  np.testing.assert_array_equal(source.load(c, "train", 0)["image"], source.load(c, "test", 0)["image"])


@pytest.mark.parametrize("mode", ["full", "circular"])
def test_full_and_circular_give_identical_logits(mode):
  # Why they stay at chance: for any filter, the two images give the same maximum response.
  x = patch_toy()["image"]
  for seed in range(3):
    net = get_model("patch_toy_net", conv_mode=mode)
    params = net.init(jax.random.PRNGKey(seed), x)
    logits = np.asarray(net.apply(params, x))
    np.testing.assert_allclose(logits[0], logits[1], rtol=0, atol=1e-6)


def test_same_can_separate():
  # A filter that fires only when centred 2 rows above a patch's top edge (on black) sees that context for the
  # bottom-right patch only: the top-left patch's context lies outside the image, where same conv computes nothing.
  x = patch_toy()["image"]
  net = get_model("patch_toy_net", conv_mode="same")
  params = net.init(jax.random.PRNGKey(0), x)
  kernel = np.full((5, 5, 1, 1), -1.0, np.float32)
  kernel[4, :, 0, 0] = 1.0
  params["params"]["conv"]["kernel"] = kernel
  feats = intermediates(net, params, x)
  peak = np.asarray(feats["pre_logits"])[:, 0]
  assert peak[0] == 0.0 and peak[1] > 0.0


def _run(tmp_path, overrides):
  from configs import patch_toy as cfg
  from train import trainer

  config = cfg.get_config()
  for key, value in overrides.items():
    node = config
    *parents, leaf = key.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = value
  workdir = str(tmp_path / "pt")
  summary = trainer.train_and_evaluate(config, workdir)
  return workdir, summary


def test_small_run_writes_report(tmp_path):
  workdir, summary = _run(tmp_path, {"num_epochs": 3, "seeds": (0, 1), "eval.every_n_epochs": 3,
                                     "checkpoint.every_n_epochs": 3, "log.every_n_epochs": 3})
  assert summary["num_runs"] == 6
  for name in ("patch_toy.md", "patch_toy_filters.png", "summary.md"):
    assert os.path.getsize(os.path.join(workdir, name)) > 0
  text = open(os.path.join(workdir, "patch_toy.md")).read()
  assert "| full |" in text and "| circular |" in text and "| same |" in text


@pytest.mark.slow
def test_science_same_learns_full_and_circular_at_chance(tmp_path):
  # The default protocol (3 modes × 5 seeds, 100 epochs): about 30 s.
  _, summary = _run(tmp_path, {})
  acc = {}
  for r in summary["runs"]:
    acc.setdefault(r["overrides"]["model.conv_mode"], []).append(r["metrics"]["test/accuracy"])
  assert sum(a == 1.0 for a in acc["same"]) >= 4  # 4/5 here; a failing seed ends with a dead filter
  assert all(a == 0.5 for a in acc["full"] + acc["circular"])
