"""Preemption: SIGKILL mid-training + restart ends bit-identical to an uninterrupted run; SIGTERM saves, exits 0.

Runs the real entry point in subprocesses (started together to share the two cores; always killed in a
``finally``).
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CONFIG = '''
from train.synthetic import tiny_config

def get_config():
  c = tiny_config()
  c.num_epochs = 6  # 2 steps per epoch
  c.data.shuffle = True
  c.optimizer.name = "adamw"
  c.optimizer.learning_rate = 0.01
  c.early_stopping.metric = "val/loss"
  c.early_stopping.patience = 100
  return c
'''


def start(config_path, workdir, *extra):
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT, JAXBORDERS_XLA_CACHE="")
  cmd = [sys.executable, "-m", "train.main", "--config", config_path, "--workdir", workdir, *extra]
  return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_checkpoint(workdir, min_step, proc, timeout=240):
  ckpt = os.path.join(workdir, "checkpoints")
  t0 = time.time()
  while time.time() - t0 < timeout:
    if proc.poll() is not None:
      raise AssertionError(f"run ended early: {proc.stdout.read()}")
    if os.path.isdir(ckpt) and any(d.isdigit() and int(d) >= min_step for d in os.listdir(ckpt)):
      return
    time.sleep(0.2)
  raise AssertionError("no checkpoint appeared")


def fingerprint(workdir):
  with open(os.path.join(workdir, "summary.json")) as f:
    return json.load(f)["params_fingerprint"]


def test_sigkill_resume_is_bit_identical_and_sigterm_saves(tmp_path):
  config = tmp_path / "cfg.py"
  config.write_text(CONFIG)
  ref_dir, kill_dir, term_dir = (str(tmp_path / n) for n in ("ref", "kill", "term"))
  slow = "--config.debug.step_sleep_s=1.0"
  procs = []
  try:
    ref = start(str(config), ref_dir)
    killed = start(str(config), kill_dir, slow)
    termed = start(str(config), term_dir, slow)
    procs = [ref, killed, termed]
    wait_for_checkpoint(kill_dir, 4, killed)  # epoch 2 of 6 saved
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    assert not os.path.exists(os.path.join(kill_dir, "summary.json"))
    resumed = start(str(config), kill_dir)
    procs.append(resumed)
    wait_for_checkpoint(term_dir, 2, termed)
    termed.send_signal(signal.SIGTERM)
    out_term, _ = termed.communicate(timeout=120)
    assert termed.returncode == 0, out_term
    assert "preempted" in out_term and "checkpoint saved at step" in out_term
    assert any(d.isdigit() for d in os.listdir(os.path.join(term_dir, "checkpoints")))
    out_ref, _ = ref.communicate(timeout=240)
    assert ref.returncode == 0, out_ref
    out_res, _ = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, out_res
    assert "resumed from step" in out_res
    assert fingerprint(kill_dir) == fingerprint(ref_dir)
    # The JSONL of the resumed run reads like the uninterrupted one (re-run epochs are not duplicated).
    with open(os.path.join(kill_dir, "metrics.jsonl")) as f:
      steps = [json.loads(line)["step"] for line in f if "train/images_per_s" not in line]
    assert steps == list(range(1, 13))
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.wait()


def test_sigterm_stops_parallel_runs_and_the_rerun_finishes_them(tmp_path):
  """parallel_runs: SIGTERM to the parent reaches the workers (checkpoints saved, queued runs not started),
  the parent exits 0; the same command then resumes the stopped runs and finishes every run."""
  config = tmp_path / "cfg.py"
  config.write_text(CONFIG)
  workdir = str(tmp_path / "sweep")
  extra = ["--config.parallel_runs=2", "--config.seeds=(0,1,2,3)"]
  proc = start(str(config), workdir, "--config.debug.step_sleep_s=1.0", *extra)
  try:
    wait_for_checkpoint(os.path.join(workdir, "base", "seed_0"), 2, proc)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert "preempted" in out and "2 at a time" in out
    started = [s for s in range(4) if os.path.isdir(os.path.join(workdir, "base", f"seed_{s}", "checkpoints"))]
    assert 0 in started and len(started) <= 3, (started, out)  # at most the queued one got past the start
    assert not os.path.exists(os.path.join(workdir, "summary.json"))
    again = start(str(config), workdir, *extra)
    out, _ = again.communicate(timeout=240)
    assert again.returncode == 0, out
    assert "resumed from step" in out
    with open(os.path.join(workdir, "summary.json")) as f:
      summary = json.load(f)
    assert summary["num_runs"] == 4 and all(r["epochs"] == 6 for r in summary["runs"])
  finally:
    for p in [proc] + ([again] if "again" in locals() else []):
      if p.poll() is None:
        p.kill()
        p.wait()
