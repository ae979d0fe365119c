"""Streaming training (``train.data.Stream`` sources) on ``tfds.testing.mock_data`` cifar10: a run stopped inside an
epoch by ``num_steps`` and resumed to the full length ends bit-identical to an uninterrupted run."""

from __future__ import annotations

import os

import pytest

NUM_EXAMPLES = 16  # batch 4: 4 steps per epoch


def _config(num_steps: int):
  from configs import default
  c = default.get_config()
  c.seed = 3
  c.batch_size = 4
  c.num_steps = num_steps
  c.model.name = "redgreen_net"  # small: three runs compile three times (total_steps is part of the program key)
  c.model.num_classes = 10
  c.data.source = "tfds_source"
  c.data.dataset = "cifar10"
  c.data.worker_count = 0
  c.eval.batch_size = 8
  c.optimizer.name = "adamw"
  c.optimizer.learning_rate = 0.01
  c.checkpoint.every_n_steps = 2  # exercises the mid-epoch checkpoint of the step loop
  c.log.tensorboard = False
  return c


def test_stream_resume_mid_epoch_is_exact(tmp_path):
  tfds = pytest.importorskip("tensorflow_datasets")
  from train import trainer

  with tfds.testing.mock_data(num_examples=NUM_EXAMPLES):
    full = trainer.train_and_evaluate(_config(6), str(tmp_path / "full"))
    parted = tmp_path / "parted"
    first = trainer.train_and_evaluate(_config(3), str(parted))  # stops inside epoch 0
    os.remove(parted / "summary.json")  # else the rerun counts as finished
    resumed = trainer.train_and_evaluate(_config(6), str(parted))
  assert (first["steps"], full["steps"], resumed["steps"]) == (3, 6, 6)
  assert resumed["params_fingerprint"] == full["params_fingerprint"]
  assert first["params_fingerprint"] != full["params_fingerprint"]
  assert 0.0 <= full["metrics"]["val/accuracy"] <= 1.0
