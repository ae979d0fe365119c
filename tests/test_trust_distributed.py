"""Multi-process runs (jax.distributed on 127.0.0.1) end in bounded time however a peer goes.

A process alone fails after ``distributed.init_timeout_s`` naming the coordinator and process ids; SIGTERM to one
process saves a checkpoint in both and both exit 0; SIGKILL of one ends the other within the heartbeat bound.
Every process is killed in a ``finally``.
"""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CONFIG = '''
from train.synthetic import tiny_config

def get_config():
  c = tiny_config()
  c.num_epochs = 40  # 2 steps per epoch; the test stops it long before
  c.optimizer.name = "sgd"
  c.optimizer.learning_rate = 0.05
  c.checkpoint.every_n_epochs = 1
  c.debug.step_sleep_s = 0.3
  c.distributed.heartbeat_timeout_s = 5
  return c
'''


def _port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _start(config, workdir, port, process_id, *extra):
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT, JAXBORDERS_XLA_CACHE="")
  cmd = [sys.executable, "-m", "train.main", "--config", config, "--workdir", workdir,
         f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2", f"--process_id={process_id}", *extra]
  return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill_all(procs):
  for p in procs:
    if p.poll() is None:
      p.kill()
      p.wait()


def test_a_process_alone_fails_within_its_start_timeout(tmp_path):
  (tmp_path / "cfg.py").write_text(CONFIG)
  port = _port()
  proc = _start(str(tmp_path / "cfg.py"), str(tmp_path / "w"), port, 0, "--config.distributed.init_timeout_s=2")
  try:
    t0 = time.time()
    _, err = proc.communicate(timeout=120)
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 6, err
    assert len(lines) == 1 and f"coordinator 127.0.0.1:{port}" in lines[0] and "process 0 of 2" in lines[0], err
    assert "init_timeout_s=2" in lines[0] and time.time() - t0 < 60  # 2 s after JAX is imported
    assert not os.path.exists(tmp_path / "w" / "checkpoints")
  finally:
    _kill_all([proc])


def _two_processes_then(tmp_path, signum):
  (tmp_path / "cfg.py").write_text(CONFIG)
  port, workdir = _port(), str(tmp_path / "w")
  procs = [_start(str(tmp_path / "cfg.py"), workdir, port, i) for i in range(2)]
  try:
    ckpt = os.path.join(workdir, "checkpoints")
    t0 = time.time()
    while not (os.path.isdir(ckpt) and any(d.isdigit() for d in os.listdir(ckpt))):
      assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
      assert time.time() - t0 < 400, "no checkpoint appeared"
      time.sleep(0.2)
    procs[1].send_signal(signum)
    t_signal = time.time()
    results = [p.communicate(timeout=90) for p in procs]
    return procs, results, time.time() - t_signal
  finally:
    _kill_all(procs)


@pytest.mark.slow
def test_sigterm_to_one_process_saves_and_stops_both(tmp_path):
  procs, results, elapsed = _two_processes_then(tmp_path, signal.SIGTERM)
  for p, (out, err) in zip(procs, results):
    assert p.returncode == 0 and "preempted: signal 15 received: checkpoint saved" in err, (out, err)
  assert elapsed < 60


@pytest.mark.slow
def test_sigkill_of_one_process_ends_the_other_within_the_bound(tmp_path):
  procs, results, elapsed = _two_processes_then(tmp_path, signal.SIGKILL)
  out, err = results[0]
  assert procs[0].returncode != 0 and elapsed < 5 + 30, (elapsed, out, err)  # heartbeat_timeout_s=5, + slack
  if procs[0].returncode == 6:  # the collective failed at once: one line naming the lost peer
    assert "a peer process was lost" in err, err
