"""A run is its config, and a damaged run falls back instead of crashing.

* Records: config.json holds the resolved config, package version and git commit; a rerun that changes a result key
  is refused with the diff; observing keys may change; a larger num_epochs continues a finished run and ends
  bit-identical to a run trained that long in one go; train.eval uses the record and refuses a contradicting config.
* Fallback: every damaged latest checkpoint is set aside with a warning and the run resumes from the previous one,
  ending with the same parameters (fingerprint) as an undamaged run; an unreadable summary.json is set aside.

All in-process, sharing one finished 3-epoch run (copied per test) and the trainer's compiled programs.
"""

import glob
import json
import os
import shutil

import pytest

from train import checkpointing
from train import provenance
from train import synthetic
from train import trainer


def _config():
  c = synthetic.tiny_config()
  c.num_epochs = 3  # 2 steps per epoch: checkpoints at steps 2, 4, 6 (the last two kept)
  c.data.shuffle = True
  c.optimizer.name = "adamw"
  c.optimizer.learning_rate = 0.01
  c.checkpoint.keep = 1  # raised to 2 by the Checkpointer: a damaged latest one always has a predecessor
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


def _copy(base, tmp_path):
  workdir = str(tmp_path / "run")
  shutil.copytree(base, workdir)
  return workdir


def test_run_records_its_config_version_and_commit(finished_run):
  base, fingerprint = finished_run
  with open(os.path.join(base, "config.json")) as f:
    rec = json.load(f)
  assert rec["kind"] == "run" and rec["config"]["optimizer"]["name"] == "adamw" and rec["config"]["seed"] == 0
  import jaxborders
  assert rec["jaxborders_version"] == jaxborders.__version__
  with open(os.path.join(base, "summary.json")) as f:
    summary = json.load(f)
  assert summary["jaxborders_version"] == jaxborders.__version__ and "git_commit" in summary
  assert summary["params_fingerprint"] == fingerprint


@pytest.mark.parametrize("key, value, expected", [
    ("seed", 5, "seed: 0 -> 5"),
    ("batch_size", 8, "batch_size: 16 -> 8"),
    ("model.conv_mode", "full", "model.conv_mode: 'same' -> 'full'"),
    ("num_epochs", 2, "num_epochs: 3 -> 2"),
])
def test_changed_result_key_is_refused_with_the_diff(finished_run, tmp_path, key, value, expected):
  workdir = _copy(finished_run[0], tmp_path)
  c = _config()
  *parents, leaf = key.split(".")
  node = c
  for p in parents:
    node = node[p]
  node[leaf] = value
  before = sorted(os.listdir(os.path.join(workdir, "checkpoints")))
  with pytest.raises(provenance.ConfigMismatch) as info:
    trainer.train_and_evaluate(c, workdir)
  assert expected in str(info.value) and "another --workdir" in str(info.value), str(info.value)
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == before  # nothing trained or written


def test_observing_keys_may_change(finished_run, tmp_path, capfd):
  workdir = _copy(finished_run[0], tmp_path)
  c = _config()
  c.log.every_n_epochs = 2
  c.checkpoint.keep = 5
  c.eval.batch_size = 8
  summary = trainer.train_and_evaluate(c, workdir)
  assert "already finished" in capfd.readouterr().out
  assert summary["params_fingerprint"] == finished_run[1]


def test_larger_num_epochs_continues_bit_identical_to_one_go(finished_run, tmp_path):
  c = _config()
  c.num_epochs = 4
  one_go = trainer.train_and_evaluate(c, str(tmp_path / "one_go"))
  continued = trainer.train_and_evaluate(c, _copy(finished_run[0], tmp_path))
  assert continued["steps"] == one_go["steps"] == 8
  assert continued["params_fingerprint"] == one_go["params_fingerprint"] != finished_run[1]


def test_which_differences_count():
  base = _config().to_dict()

  def diff(**changes):
    new = json.loads(json.dumps(base))
    for key, value in changes.items():
      *parents, leaf = key.split("__")
      node = new
      for p in parents:
        node = node[p]
      node[leaf] = value
    return provenance.differences(json.loads(json.dumps(base)), new)

  assert diff(num_epochs=9, parallel_runs=2, log__every_n_epochs=5, checkpoint__every_n_epochs=3) == []
  assert diff(eval__every_n_epochs=2) == []  # no early stopping, no plateau: evaluations only observe
  assert diff(eval__every_n_epochs=2, early_stopping__metric="val/loss") != []  # they decide the result
  assert diff(num_epochs=9, schedule__name="cosine") == ["num_epochs: 3 -> 9", "schedule.name: 'constant' -> 'cosine'"]
  assert diff(num_steps=5) == ["num_steps: 0 -> 5"]  # switching to a step count may shorten the run
  assert diff(data__train_size=64) == ["data.train_size: 32 -> 64"]
  assert diff(microbatch_size=8) == ["microbatch_size: 0 -> 8"]  # summation order: other bits


def test_eval_uses_the_record_and_refuses_a_contradicting_config(finished_run, tmp_path):
  from train import eval as eval_lib
  base, _ = finished_run
  recorded = provenance.config_for_eval(None, base)
  assert recorded.to_dict() == provenance.recorded_config(base).to_dict() and recorded.optimizer.name == "adamw"
  agreeing = _config()
  agreeing.eval.shift.passes = 1  # an evaluation setting
  assert provenance.config_for_eval(agreeing, base) is agreeing
  contradicting = _config()
  contradicting.model.conv_mode = "full"
  with pytest.raises(provenance.ConfigMismatch, match=r"model.conv_mode: 'same' -> 'full'.*Leave out --config"):
    provenance.config_for_eval(contradicting, base)
  with pytest.raises(provenance.ConfigMismatch, match="has no config.json"):
    provenance.config_for_eval(None, str(tmp_path))
  unfinished = _copy(base, tmp_path)
  os.remove(os.path.join(unfinished, "summary.json"))
  with pytest.raises(FileNotFoundError, match="no finished runs"):
    eval_lib.evaluate(recorded, unfinished, quiet=True)


def test_record_in_tensorboard(tmp_path):
  rec = provenance.record(_config())
  provenance.write_tensorboard_text(str(tmp_path), rec)
  import struct
  from tensorboardX.proto import event_pb2
  texts = []
  for name in os.listdir(tmp_path / "tb"):  # TFRecord framing: length, its crc, the Event proto, its crc
    data = (tmp_path / "tb" / name).read_bytes()
    while data:
      (length,) = struct.unpack("<Q", data[:8])
      event = event_pb2.Event.FromString(data[12:12 + length])
      data = data[16 + length:]
      texts += [v.tensor.string_val[0].decode() for v in event.summary.value if v.tag.startswith("config")]
  assert len(texts) == 1
  text = texts[0]
  assert "| optimizer.name | 'adamw' |" in text and f"git_commit: {rec['git_commit']}" in text
