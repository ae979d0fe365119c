"""Fallback: every damaged latest checkpoint is set aside with a warning and the run resumes from the previous
one, ending with the same parameters (fingerprint) as an undamaged run; an unreadable summary.json is set aside."""

import glob
import json
import os
import shutil

import pytest

from configs import default
from train import checkpointing
from train import trainer


def _config():
  c = default.get_config()
  c.batch_size = 16
  c.num_epochs = 3  # 2 steps per epoch: checkpoints at steps 2, 4, 6 (the last two kept)
  c.data.source = "train.synthetic"
  c.data.shuffle = True
  c.data.train_size = 32
  c.data.val_size = 16
  c.data.test_size = 16
  c.eval.batch_size = 16
  c.optimizer.name = "adamw"
  c.optimizer.learning_rate = 0.01
  c.checkpoint.every_n_epochs = 1
  c.checkpoint.keep = 1  # raised to 2 by the Checkpointer: a damaged latest one always has a predecessor
  c.log.tensorboard = False
  return c


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("base"))
  summary = trainer.train_and_evaluate(_config(), workdir)
  steps = sorted(int(d) for d in os.listdir(os.path.join(workdir, "checkpoints")) if d.isdigit())
  assert steps == [4, 6]
  return workdir, summary["params_fingerprint"]


def _largest_data_file(step_dir):
  files = [f for f in glob.glob(os.path.join(step_dir, "state", "**", "d", "*"), recursive=True) if os.path.isfile(f)]
  return max(files, key=os.path.getsize)


def _truncate(path):
  size = os.path.getsize(path)
  with open(path, "r+b") as f:
    f.truncate(size // 2)


def _zero(path):
  size = os.path.getsize(path)
  with open(path, "wb") as f:
    f.write(b"\0" * size)


def _truncated_data_file(step_dir):
  _truncate(_largest_data_file(step_dir))


def _missing_metadata(step_dir):
  os.remove(os.path.join(step_dir, "state", "_METADATA"))


def _empty_step_dir(step_dir):
  shutil.rmtree(step_dir)
  os.makedirs(step_dir)


def _zeroed_file_without_commit_marker(step_dir):
  for marker in glob.glob(os.path.join(step_dir, "**", "commit_success.txt"), recursive=True):
    os.remove(marker)
  _zero(_largest_data_file(step_dir))


def _truncated_meta(step_dir):
  _truncate(os.path.join(step_dir, "meta", "metadata"))


@pytest.mark.parametrize("damage", [_truncated_data_file, _missing_metadata, _empty_step_dir,
                                    _zeroed_file_without_commit_marker, _truncated_meta])
def test_damaged_latest_checkpoint_falls_back(finished_run, tmp_path, capfd, damage):
  base, fingerprint = finished_run
  workdir = str(tmp_path / "run")
  shutil.copytree(base, workdir)
  os.remove(os.path.join(workdir, "summary.json"))  # as if killed after the last checkpoint
  damage(os.path.join(workdir, "checkpoints", "6"))
  summary = trainer.train_and_evaluate(_config(), workdir)
  err = capfd.readouterr().err
  assert f"warning: checkpoint {os.path.join(workdir, 'checkpoints', '6')} is damaged" in err, err
  assert summary["steps"] == 6 and summary["params_fingerprint"] == fingerprint
  assert os.listdir(os.path.join(workdir, "checkpoints_corrupt"))  # kept for inspection, out of orbax's way


def test_arrays_that_differ_from_the_saved_sha256_are_refused(tmp_path):
  """A checkpoint that restores without error but holds other numbers than were saved fails the sha256 check."""
  import jax.numpy as jnp
  import numpy as np
  tree = {"w": jnp.arange(6.0), "b": jnp.ones((2,), jnp.int32)}
  ckpt = checkpointing.Checkpointer(str(tmp_path / "ck"))
  ckpt.save(1, tree, {"epoch": 1}, wait=True)
  restored, meta = ckpt.restore(checkpointing.abstract_like(tree), 1)
  assert meta == {"epoch": 1} and np.array_equal(restored["w"], tree["w"])
  meta_path = tmp_path / "ck" / "1" / "meta" / "metadata"
  saved = json.loads(meta_path.read_text())
  assert saved["sha256"] == checkpointing.tree_sha256(tree)
  other = checkpointing.tree_sha256({"w": tree["w"].at[5].set(7.0), "b": tree["b"]})  # one number differs
  assert other != saved["sha256"]
  meta_path.write_text(json.dumps({**saved, "sha256": other}))
  with pytest.raises(ValueError, match="do not match the sha256"):
    ckpt.restore(checkpointing.abstract_like(tree), 1)
  ckpt.close()


def test_unreadable_summary_is_rebuilt(finished_run, tmp_path, capfd):
  base, fingerprint = finished_run
  workdir = str(tmp_path / "run")
  shutil.copytree(base, workdir)
  path = os.path.join(workdir, "summary.json")
  _truncate(path)
  for _ in range(2):  # every later rerun works too
    summary = trainer.train_and_evaluate(_config(), workdir)
    assert summary["params_fingerprint"] == fingerprint and summary["status"] == "finished"
  assert "is unreadable" in capfd.readouterr().err
  with open(path) as f:
    assert json.load(f)["params_fingerprint"] == fingerprint
