"""Every bad value and CLI mistake is refused before training: one line naming the key, the documented exit code.

Most cases go through ``config.validate`` in-process (what ``train.main`` runs before anything is built); a
handful go through the real command line (subprocesses started together, always killed in a ``finally``).
"""

import math
import os
import subprocess
import sys

import ml_collections
import numpy as np
import pytest

from train import bundle
from train import config as config_lib
from train import sharding, synthetic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tiny():
  return synthetic.tiny_config()


def _set(key, value):
  """A mutation of the config's dict: any value a config file could write (no ConfigDict type-safety)."""
  def mutate(d):
    *parents, leaf = key.split(".")
    for p in parents:
      d = d[p]
    d[leaf] = value
  return mutate


def _distributed(**kw):
  def mutate(d):
    d["distributed"].update(kw)
  return mutate


# (mutation, the key the one-line message must name)
BAD_VALUES = [
    (_set("seeds", (0.5, 1.7)), "seeds"),
    (_set("seeds", (1, 1)), "seeds"),
    (_set("seed", -1), "seed"),
    (_set("seed", 1.5), "seed"),
    (_set("batch_size", 0), "batch_size"),
    (_set("batch_size", 2.5), "batch_size"),
    (_set("microbatch_size", 5), "microbatch_size"),
    (_set("parallel_runs", -1), "parallel_runs"),
    (_set("num_epochs", -1), "num_epochs"),
    (_set("num_steps", 1.5), "num_steps"),
    (_set("checkpoint.keep", 0), "checkpoint.keep"),
    (_set("checkpoint.keep", -1), "checkpoint.keep"),
    (_set("checkpoint.every_n_epochs", -1), "checkpoint.every_n_epochs"),
    (_set("checkpoint.every_n_steps", -2), "checkpoint.every_n_steps"),
    (_set("log.every_n_epochs", 0), "log.every_n_epochs"),
    (_set("log.every_n_steps", -1), "log.every_n_steps"),
    (_set("eval.batch_size", -1), "eval.batch_size"),
    (_set("eval.every_n_epochs", 0), "eval.every_n_epochs"),
    (_set("data.train_size", 0), "data.train_size"),
    (_set("data.val_size", -5), "data.val_size"),
    (_set("optimizer.learning_rate", math.nan), "optimizer.learning_rate"),
    (_set("optimizer.learning_rate", math.inf), "optimizer.learning_rate"),
    (_set("optimizer.learning_rate", 0.0), "optimizer.learning_rate"),
    (_set("optimizer.weight_decay", -1.0), "optimizer.weight_decay"),
    (_set("optimizer.eps", math.nan), "optimizer.eps"),
    (_set("model.num_classes", 1), "model.num_classes"),
    (_set("early_stopping.patience", -1), "early_stopping.patience"),
    (_set("schedule.plateau_factor", 0.0), "schedule.plateau_factor"),
    (_set("schedule.step_epochs", (-1,)), "schedule.step_epochs"),
    (_set("precision.compute_dtype", "float16"), "precision.compute_dtype"),
    (_set("debug.step_sleep_s", -1.0), "debug.step_sleep_s"),
    (_distributed(num_processes=2), "distributed.num_processes"),
    (_distributed(coordinator_address="localhost", num_processes=2, process_id=0), "distributed.coordinator_address"),
    (_distributed(coordinator_address="localhost:1234", num_processes=2, process_id=2), "distributed.process_id"),
    (_distributed(init_timeout_s=0), "distributed.init_timeout_s"),
]


@pytest.mark.parametrize("mutate, key", BAD_VALUES, ids=[f"{i}-{k}" for i, (_, k) in enumerate(BAD_VALUES)])
def test_bad_value_is_refused_in_one_line_naming_the_key(mutate, key):
  c = _tiny()
  config_lib.validate(c)  # the base config is fine
  d = c.to_dict()
  mutate(d)
  with pytest.raises(ValueError) as info:
    config_lib.validate(ml_collections.ConfigDict(d))
  message = str(info.value)
  assert key in message and "\n" not in message, message


def test_labels_must_fit_num_classes():
  c = _tiny()
  config_lib.check_labels(c, np.array([0, 1, 1]))
  with pytest.raises(ValueError, match=r"model.num_classes=2 does not fit the labels .*\(range 0..4\)"):
    config_lib.check_labels(c, np.array([0, 4]))


def test_microbatch_adapts_to_the_device_count():
  assert [sharding.adapt_microbatch(10, 200, n) for n in (1, 2, 4, 8)] == [10, 10, 20, 40]
  assert sharding.adapt_microbatch(2, 16, 4) == 4
  assert sharding.adapt_microbatch(8, 16, 16) == 0  # no multiple of 16 below the batch: one pass
  for n in (1, 2, 4, 8):  # every result is valid: divides the batch, a multiple of the device count
    m = sharding.adapt_microbatch(10, 200, n)
    assert 200 % m == 0 and m % n == 0


BROKEN_FILES = {
    "syntax.py": "def get_config(:\n",
    "noget.py": "X = 1\n",
    "raises.py": "import no_such_module_xyz\n",
}
TINY_FILE = """
from configs import default

def get_config():
  c = default.get_config()
  c.batch_size = 16
  c.num_epochs = 1
  c.data.source = "train.synthetic"
  c.data.train_size = 32
  c.data.val_size = 16
  c.data.test_size = 16
  c.eval.batch_size = 16
  c.log.tensorboard = False
  return c
"""


def test_command_line_mistakes_exit_2_in_one_line(tmp_path):
  for name, text in {**BROKEN_FILES, "tiny.py": TINY_FILE}.items():
    (tmp_path / name).write_text(text)
  tiny = str(tmp_path / "tiny.py")
  workdir = str(tmp_path / "w")
  cases = {  # argv tail -> text the one line must contain
      ("--config", str(tmp_path / "missing.py")): "no such file",
      ("--config", str(tmp_path / "syntax.py")): "syntax error at line 1",
      ("--config", str(tmp_path / "noget.py")): "defines no get_config",
      ("--config", str(tmp_path / "raises.py")): "no_such_module_xyz",
      ("--config", tiny, "--config.seed=0.5"): "seed",
      ("--config", tiny, "--config.optimizer.lrate=1"): "optimizer.lrate",
      ("--config", tiny, "--wrokdir", workdir): "wrokdir",
      ("--config", tiny, "--workdir="): "--workdir",
      ("--config", tiny, "--workdir", workdir, "stray"): "unexpected arguments",
      ("--workdir", workdir): "--config",
  }
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT, JAXBORDERS_XLA_CACHE="")
  procs = {args: subprocess.Popen([sys.executable, "-m", "train.main", *args], cwd=ROOT, env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for args in cases}
  try:
    for args, expected in cases.items():
      out, err = procs[args].communicate(timeout=120)
      lines = [line for line in err.splitlines() if line.strip()]
      assert procs[args].returncode == 2, (args, out, err)
      assert len(lines) == 1 and expected in lines[0], (args, err)
    assert not os.path.exists(os.path.join(workdir, "checkpoints"))  # nothing trained
  finally:
    for p in procs.values():
      if p.poll() is None:
        p.kill()
        p.wait()


DISK_FULL_FILE = TINY_FILE.replace("  return c\n", '''  c.num_epochs = 4
  c.checkpoint.every_n_epochs = 1
  # Fault injection: the second checkpoint save finds the disk full (as orbax reports it: an OSError).
  import errno
  from train import checkpointing
  if not getattr(checkpointing.Checkpointer, "injected", False):
    save = checkpointing.Checkpointer.save
    def full(self, step, *args, **kwargs):
      if step > 2:
        raise OSError(errno.ENOSPC, "No space left on device")
      return save(self, step, *args, **kwargs)
    checkpointing.Checkpointer.save = full
    checkpointing.Checkpointer.injected = True
  return c
''')


@pytest.mark.slow  # one real training process (import + compile): about 20 s on 2 cores
def test_full_disk_fails_fast_in_one_line_and_keeps_the_last_checkpoint(tmp_path):
  (tmp_path / "full.py").write_text(DISK_FULL_FILE)
  workdir = str(tmp_path / "w")
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT, JAXBORDERS_XLA_CACHE="")
  proc = subprocess.Popen([sys.executable, "-m", "train.main", "--config", str(tmp_path / "full.py"), "--workdir",
                           workdir], cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
  try:
    out, err = proc.communicate(timeout=300)
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 5, (out, err)
    assert len(lines) == 1 and "No space left on device" in lines[0] and "last good checkpoint" in lines[0], err
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["2"]
  finally:
    if proc.poll() is None:
      proc.kill()
      proc.wait()


def test_every_shipped_config_passes_the_checks():
  """The checks refuse only bad values: every experiment config validates (e.g. data sizes of 0 meaning 'derive')."""
  import glob
  import importlib
  for path in sorted(glob.glob(os.path.join(ROOT, "configs", "*.py"))):
    name = os.path.basename(path)[:-3]
    if name != "__init__":
      config = importlib.import_module(f"configs.{name}").get_config()
      if bundle.is_bundle(config):  # configs/atlas.py: every part is a trainer config, checked as one
        bundle.validate_bundle(config)
      else:
        config_lib.validate(config)
