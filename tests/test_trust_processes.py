"""Nothing outlives its run and the bits do not depend on scheduling.

A parallel sweep whose parent is SIGKILLed leaves no worker alive for more than a few seconds, and the rerun ends
with every run's fingerprint equal to the uninterrupted sweep's (the remaining runs train in single-threaded
workers however few are left). Real entry point in subprocesses, always killed in a ``finally``.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from train import parallel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SWEEP = '''
from train.synthetic import tiny_config

def get_config():
  c = tiny_config()
  c.num_epochs = 4  # 2 steps per epoch
  c.data.shuffle = True
  c.optimizer.name = "adamw"
  c.optimizer.learning_rate = 0.01
  c.seeds = (0, 1, 2)
  c.parallel_runs = 2
  return c
'''


def _start(config, workdir, *extra):
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT, JAXBORDERS_XLA_CACHE="")
  return subprocess.Popen([sys.executable, "-m", "train.main", "--config", config, "--workdir", workdir, *extra],
                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _children(pid):
  out = []
  for entry in os.listdir("/proc"):
    if entry.isdigit():
      try:
        with open(f"/proc/{entry}/stat") as f:
          if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
            out.append(int(entry))
      except (OSError, IndexError, ValueError):
        pass
  return out


def _alive(pid):
  try:
    with open(f"/proc/{pid}/stat") as f:
      return f.read().rsplit(")", 1)[1].split()[0] != "Z"
  except OSError:
    return False


def _fingerprints(workdir):
  with open(os.path.join(workdir, "summary.json")) as f:
    return {r["seed"]: r["params_fingerprint"] for r in json.load(f)["runs"]}


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux") or len(parallel.available_cores()) < 2,
                    reason="needs Linux /proc and 2 cores")
def test_killed_sweep_leaves_no_orphans_and_resumes_bit_identical(tmp_path):
  config = str(tmp_path / "sweep.py")
  with open(config, "w") as f:
    f.write(SWEEP)
  ref_dir, kill_dir = str(tmp_path / "ref"), str(tmp_path / "killed")
  procs, workers = [], []
  try:
    killed = _start(config, kill_dir, "--config.debug.step_sleep_s=0.5")
    procs.append(killed)
    ckpt = os.path.join(kill_dir, "base", "seed_0", "checkpoints")
    t0 = time.time()
    while not (os.path.isdir(ckpt) and any(d.isdigit() for d in os.listdir(ckpt))):
      assert killed.poll() is None, killed.stdout.read()
      assert time.time() - t0 < 300, "no checkpoint appeared"
      time.sleep(0.2)
    workers = _children(killed.pid)
    assert workers, "no worker processes"
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    procs.append(_start(config, ref_dir))  # the uninterrupted sweep (started now: one sweep at a time on 2 cores)
    t_kill = time.time()
    while any(_alive(w) for w in workers) and time.time() - t_kill < 20:
      time.sleep(0.1)
    survivors = [w for w in workers if _alive(w)]
    assert not survivors, f"workers {survivors} outlived their killed parent by {time.time() - t_kill:.0f} s"
    out, _ = procs[-1].communicate(timeout=600)
    assert procs[-1].returncode == 0, out
    rerun = _start(config, kill_dir)
    procs.append(rerun)
    out, _ = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, out
    assert "resumed from step" in out and "at a time" in out, out
    assert _fingerprints(kill_dir) == _fingerprints(ref_dir)
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.wait()
    for w in workers:
      if _alive(w):
        os.kill(w, signal.SIGKILL)


def test_a_failed_sweep_run_is_named():
  import concurrent.futures.process
  from train import trainer
  error = parallel._labelled(trainer.NonFiniteLossError("non-finite training loss at step 3"), "[2/4 full seed 1] ")
  assert isinstance(error, trainer.NonFiniteLossError)  # same type: the same exit code
  assert str(error) == "[2/4 full seed 1] non-finite training loss at step 3"
  broken = parallel._labelled(concurrent.futures.process.BrokenProcessPool("gone"), "[3/4 same seed 0] ")
  assert isinstance(broken, parallel.WorkerDied)  # exit code 7, one line
  assert str(broken).startswith("[3/4 same seed 0] not finished: a worker process of the sweep died")

  def fails():
    raise ValueError("data.source='x': the training stream ended")
  with pytest.raises(ValueError, match=r"^\[1/2 a seed 0\] data.source='x'"):
    parallel.labelled_call("[1/2 a seed 0] ", fails)
