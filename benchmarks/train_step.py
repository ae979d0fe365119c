"""Steps/s and images/s of the Red-Green config: this project's jitted epoch vs a straightforward PyTorch loop.

    python benchmarks/train_step.py [--modes same,full] [--epochs 3]

JAX: the trainer's compiled epoch program (``train.trainer.build_programs``; one jitted call per epoch of 10
steps of batch 200). PyTorch: the same net, Adadelta, batch 200, one Python step at a time. Compilation is
excluded (first epoch / first step are warm-up). Writes benchmarks/results/train_step.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def bench_jax(mode: str, epochs: int) -> float:
  import jax
  import jax.numpy as jnp

  from configs import redgreen
  from jaxborders.models import get_model
  from train import config as config_lib
  from train import sharding, trainer
  cfg = redgreen.get_config()
  cfg.model.conv_mode = mode
  model = get_model("redgreen_net", **config_lib.model_kwargs(cfg))
  mesh = sharding.make_mesh()
  tx = trainer.make_optimizer(cfg, 10, 500)
  progs = trainer.build_programs(cfg, model, tx, (32, 32, 3), 10, 500, mesh)
  import numpy as np
  images = sharding.put_replicated(np.random.rand(2000, 32, 32, 3).astype(np.float32), mesh)
  labels = sharding.put_replicated((np.arange(2000) % 2).astype(np.int32), mesh)
  key = jax.random.PRNGKey(0)
  state = progs.init(key)
  state, m = progs.epoch(state, images, labels, key, jnp.int32(0), num_steps=10)
  jax.block_until_ready(m)
  t0 = time.time()
  for e in range(epochs):
    state, m = progs.epoch(state, images, labels, key, jnp.int32(e + 1), num_steps=10)
  jax.block_until_ready(m)
  return (time.time() - t0) / (epochs * 10)


def bench_torch(mode: str, epochs: int) -> float:
  import torch
  import torch.nn as tnn
  import torch.nn.functional as F
  torch.set_num_threads(os.cpu_count())
  pad = {"valid": 0, "same": 1, "circular": 1, "full": 2}[mode]
  pm = "circular" if mode == "circular" else "zeros"
  convs = [tnn.Conv2d(i, o, 3, s, pad, bias=False, padding_mode=pm) for i, o, s in ((3, 32, 1), (32, 32, 2), (32, 64, 2), (64, 64, 2))]
  net = tnn.Sequential(*[m for c in convs for m in (c, tnn.ReLU())], tnn.AdaptiveMaxPool2d(1), tnn.Flatten(), tnn.Linear(64, 2))
  opt = torch.optim.Adadelta(net.parameters(), lr=1.0, rho=0.9, eps=1e-6, weight_decay=5e-5)
  x, y = torch.rand(2000, 3, 32, 32), torch.arange(2000) % 2

  def step(i):
    opt.zero_grad()
    F.cross_entropy(net(x[i:i + 200]), y[i:i + 200]).backward()
    opt.step()
  step(0)
  t0 = time.time()
  for _ in range(epochs):
    for i in range(0, 2000, 200):
      step(i)
  return (time.time() - t0) / (epochs * 10)


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--modes", default="valid,same,circular,full")
  ap.add_argument("--epochs", type=int, default=3)
  ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "train_step.json"))
  args = ap.parse_args()
  out = {}
  print("| mode | JAX steps/s | JAX img/s | PyTorch steps/s | PyTorch img/s | ratio |\n|---|---|---|---|---|---|")
  for mode in args.modes.split(","):
    j, t = bench_jax(mode, args.epochs), bench_torch(mode, args.epochs)
    out[mode] = {"jax_s_per_step": j, "torch_s_per_step": t, "ratio": t / j}
    print(f"| {mode} | {1 / j:.2f} | {200 / j:.0f} | {1 / t:.2f} | {200 / t:.0f} | {t / j:.2f}× |", flush=True)
  os.makedirs(os.path.dirname(args.out), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump({"cpu_count": os.cpu_count(), "batch": 200, "results": out}, f, indent=1)


if __name__ == "__main__":
  main()
