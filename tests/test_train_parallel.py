"""Data parallelism: 1 device vs 4 forced host devices (with microbatches) vs 2 processes × 2 devices
(jax.distributed on 127.0.0.1) give the same loss and parameters for the same global batch (float tolerance)."""

import json
import os
import socket
import subprocess
import sys

import numpy as np

from train import trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CONFIG = '''
from train.synthetic import tiny_config

def get_config():
  c = tiny_config()
  c.num_steps = 3
  c.data.shuffle = True
  c.optimizer.name = "sgd"
  c.optimizer.learning_rate = 0.1
  c.checkpoint.every_n_epochs = 0
  return c
'''


def _env(devices):
  return dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT, JAXBORDERS_XLA_CACHE="",
              XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}".strip())


def _cmd(config, workdir, *extra):
  return [sys.executable, "-m", "train.main", "--config", config, "--workdir", workdir, *extra]


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _result(workdir):
  with open(os.path.join(workdir, "summary.json")) as f:
    summary = json.load(f)
  return summary, trainer.load_params(workdir)


def _assert_close(a, b):
  flat_a, flat_b = (dict(_flatten(x)) for x in (a, b))
  assert flat_a.keys() == flat_b.keys()
  for k in flat_a:
    np.testing.assert_allclose(flat_a[k], flat_b[k], rtol=1e-5, atol=1e-6, err_msg=k)


def _flatten(tree, prefix=""):
  for k, v in tree.items():
    if isinstance(v, dict):
      yield from _flatten(v, f"{prefix}{k}/")
    else:
      yield prefix + k, np.asarray(v)


def test_one_vs_four_devices_vs_two_processes(tmp_path):
  config = str(tmp_path / "cfg.py")
  (tmp_path / "cfg.py").write_text(CONFIG)
  one, four, multi = (str(tmp_path / n) for n in ("one", "four", "multi"))
  port = _free_port()
  procs = []
  try:
    procs.append(subprocess.Popen(_cmd(config, one), cwd=ROOT, env=_env(1), stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True))
    # Four devices, each step's batch of 16 in two microbatches of 8 (2 per device): the same update.
    procs.append(subprocess.Popen(_cmd(config, four, "--config.microbatch_size=8"), cwd=ROOT, env=_env(4),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    for pid in range(2):
      procs.append(subprocess.Popen(
          _cmd(config, multi, f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2", f"--process_id={pid}"),
          cwd=ROOT, env=_env(2), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outs):
      assert p.returncode == 0, out
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.wait()
  (s1, p1), (s4, p4), (sm, pm) = _result(one), _result(four), _result(multi)
  assert (s1["devices"], s4["devices"], sm["devices"], sm["processes"]) == (1, 4, 4, 2)
  _assert_close(p1, p4)
  _assert_close(p1, pm)
  assert abs(s1["final_train_loss"] - s4["final_train_loss"]) < 1e-5
  assert abs(s1["final_train_loss"] - sm["final_train_loss"]) < 1e-5
