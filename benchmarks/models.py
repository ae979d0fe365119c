"""Model benchmarks: time, FLOPs and memory of ResNet-18/50 (and 3D ResNet-18) per border / anti-aliasing option.

    python -m benchmarks.models                       # CPU defaults: batch 8, 224x224; writes benchmarks/results/models.json
    python -m benchmarks.models --quick               # small inputs, smoke run
    python -m benchmarks.models --dtype bfloat16      # e.g. on a GPU (whatever jax.devices() gives is used)
    python benchmarks/models.py --models resnet18 --variants same,full --batch 2

For each model and variant (``same``, ``full``, ``same+blur``, ``full+blur``, ``aps``; on request the later methods
``lps``, ``adaptive``, ``afc``, ``flc``, each with circular convolutions as ``aps``):
forward (eval mode) and forward+backward (train mode: cross-entropy, grads of all parameters, BatchNorm batch
statistics) wall time, XLA's FLOP count of both compiled programs (``compiled.cost_analysis()``) and memory of
the compiled train step (``compiled.memory_analysis()``: arguments + outputs + temporaries, an upper bound on
the peak), with ``full / same`` ratios of time and FLOPs (issue 5's target: time ratio no worse than the FLOP
ratio). Beside them, where PyTorch is installed, minimal PyTorch ResNet-18/50 for ``same`` (torchvision v1) and
``full`` (CWB's F-Conv recipe, docs/models.md), written here because torchvision is not a dependency; PyTorch runs
NCHW on CPU, channels-last + AMP (bfloat16) on a GPU when ``--dtype bfloat16``.

Blur = ``blur:triangle:3`` (the Tri-3 filter of the shift-robustness study), ``aps`` = adaptive polyphase
sampling with circular convolutions (docs/antialiasing.md). Timings are medians of ``--repeats`` interleaved calls.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
  sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks.common import (cpu_cores, env_line, environment, fmt_ms, fmt_ratio, markdown_table,
                               time_interleaved, write_json)
from jaxborders.models import get_model

VARIANTS: dict[str, dict[str, Any]] = {
    "same": dict(conv_mode="same", antialias=None),
    "full": dict(conv_mode="full", antialias=None),
    "same+blur": dict(conv_mode="same", antialias="blur:triangle:3"),
    "full+blur": dict(conv_mode="full", antialias="blur:triangle:3"),
    "aps": dict(conv_mode="circular", antialias="aps"),
    # The later methods (jaxborders.nn.methods), with circular convolutions as APS; not in the default run.
    "lps": dict(conv_mode="circular", antialias="lps"),
    "adaptive": dict(conv_mode="circular", antialias="adaptive:3:8"),
    "afc": dict(conv_mode="circular", antialias="afc"),
    "flc": dict(conv_mode="circular", antialias="flc"),
}
DEFAULT_VARIANTS = ("same", "full", "same+blur", "full+blur", "aps")


def _cost(compiled: Any) -> dict[str, float | None]:
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else None
  flops = None if not cost or "flops" not in cost else float(cost["flops"])
  mem = None
  try:
    m = compiled.memory_analysis()
    if m is not None:
      mem = float(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes
                  - getattr(m, "alias_size_in_bytes", 0))
  except (AttributeError, NotImplementedError):
    pass
  return {"flops": flops, "memory_bytes": mem}


def bench_jax(name: str, variant: str, shape: tuple[int, ...], dtype, num_classes: int) -> dict[str, Any]:
  """Compiled eval forward and train step of one model variant, with their costs (timed later)."""
  model = get_model(name, num_classes=num_classes, dtype=dtype, **VARIANTS[variant])
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal(shape), dtype)
  labels = jnp.asarray(rng.integers(0, num_classes, shape[0]))
  variables = jax.jit(lambda x: model.init(jax.random.PRNGKey(0), x, train=False))(x)
  params, stats = variables["params"], variables.get("batch_stats", {})

  def forward(params, stats, x):
    return model.apply({"params": params, "batch_stats": stats}, x, train=False)

  def train_step(params, stats, x, labels):
    def loss_fn(p):
      # rngs: LPS samples its polyphase component in training.
      logits, new = model.apply({"params": p, "batch_stats": stats}, x, train=True, mutable=["batch_stats"],
                                rngs={"dropout": jax.random.key(1)})
      loss = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels).mean()
      return loss, new["batch_stats"]
    (loss, new_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    return loss, grads, new_stats

  fwd = jax.jit(forward).lower(params, stats, x).compile()
  step = jax.jit(train_step).lower(params, stats, x, labels).compile()
  out_shape = jax.eval_shape(forward, params, stats, x).shape
  return {
      "fwd_fn": lambda: jax.block_until_ready(fwd(params, stats, x)),
      "fb_fn": lambda: jax.block_until_ready(step(params, stats, x, labels)),
      "params": int(sum(math.prod(a.shape) for a in jax.tree_util.tree_leaves(params))),
      "fwd_cost": _cost(fwd), "fb_cost": _cost(step), "logits_shape": list(out_shape),
  }


# ---------------------------------------------------------------------------------------------------------------
# Minimal PyTorch ResNets (2D): 'same' = torchvision v1, 'full' = CWB resnet_fconv (docs/models.md).


def torch_resnet(depth: int, mode: str, num_classes: int = 1000):
  import torch
  from torch import nn
  import torch.nn.functional as F

  full = mode == "full"
  p3 = 2 if full else 1  # padding of every 3x3 conv

  class Basic(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int):
      super().__init__()
      self.conv1 = nn.Conv2d(cin, planes, 3, stride, p3, bias=False)
      self.bn1 = nn.BatchNorm2d(planes)
      self.conv2 = nn.Conv2d(planes, planes, 3, 1, p3, bias=False)
      self.bn2 = nn.BatchNorm2d(planes)
      self.proj = stride != 1 or cin != planes
      self.sc_pad = (3 if self.proj else 2) if full else 0
      if self.proj:
        self.down = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
      y = F.relu(self.bn1(self.conv1(x)))
      y = self.bn2(self.conv2(y))
      sc = F.pad(x, (self.sc_pad,) * 4) if self.sc_pad else x
      return F.relu(y + (self.down(sc) if self.proj else sc))

  class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int):
      super().__init__()
      self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
      self.bn1 = nn.BatchNorm2d(planes)
      self.conv2 = nn.Conv2d(planes, planes, 3, stride, p3, bias=False)
      self.bn2 = nn.BatchNorm2d(planes)
      self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
      self.bn3 = nn.BatchNorm2d(planes * 4)
      self.proj = stride != 1 or cin != planes * 4
      self.sc_pad = 1 if full else 0
      if self.proj:
        self.down = nn.Sequential(nn.Conv2d(cin, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4))

    def forward(self, x):
      y = F.relu(self.bn1(self.conv1(x)))
      y = F.relu(self.bn2(self.conv2(y)))
      y = self.bn3(self.conv3(y))
      sc = F.pad(x, (self.sc_pad,) * 4) if self.sc_pad else x
      return F.relu(y + (self.down(sc) if self.proj else sc))

  block, stages = {18: (Basic, (2, 2, 2, 2)), 34: (Basic, (3, 4, 6, 3)), 50: (Bottleneck, (3, 4, 6, 3))}[depth]

  class ResNet(nn.Module):
    def __init__(self):
      super().__init__()
      self.conv1 = nn.Conv2d(3, 64, 7, 2, 6 if full else 3, bias=False)
      self.bn1 = nn.BatchNorm2d(64)
      self.pool = nn.MaxPool2d(2, 2, 0) if full else nn.MaxPool2d(3, 2, 1)
      layers, cin = [], 64
      for i, n in enumerate(stages):
        planes = 64 * 2 ** i
        for b in range(n):
          layers.append(block(cin, planes, 2 if (b == 0 and i > 0) else 1))
          cin = planes * block.expansion
      self.layers = nn.Sequential(*layers)
      self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
      x = self.pool(F.relu(self.bn1(self.conv1(x))))
      x = self.layers(x)
      return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

  return ResNet()


def bench_torch(name: str, variant: str, shape: tuple[int, ...], dtype_name: str, num_classes: int):
  """Torch eval forward and train step (SGD-free: loss.backward) for 2D same/full ResNets, else None."""
  if variant not in ("same", "full") or not name.startswith("resnet") or name.startswith("resnet3d"):
    return None
  try:
    import torch
  except ImportError:
    return None
  depth = int(name.removeprefix("resnet"))
  if depth not in (18, 34, 50):
    return None
  cuda = torch.cuda.is_available() and jax.default_backend() == "gpu"
  device = "cuda" if cuda else "cpu"
  model = torch_resnet(depth, variant, num_classes).to(device)
  rng = np.random.default_rng(0)
  n, h, w, c = shape
  x = torch.from_numpy(rng.standard_normal((n, c, h, w)).astype(np.float32)).to(device)
  labels = torch.from_numpy(rng.integers(0, num_classes, n)).to(device)
  amp = dtype_name == "bfloat16"
  if cuda:  # the usual fast GPU setup: channels-last, AMP
    model = model.to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)
  sync = torch.cuda.synchronize if cuda else (lambda: None)

  def autocast():
    return torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=amp)

  def fwd():
    model.eval()
    with torch.no_grad(), autocast():
      y = model(x)
    sync()
    return y

  def fb():
    model.train()
    with autocast():
      loss = torch.nn.functional.cross_entropy(model(x).float(), labels)
    loss.backward()
    model.zero_grad(set_to_none=True)
    sync()
    return loss

  params = sum(p.numel() for p in model.parameters())
  return {"fwd_fn": fwd, "fb_fn": fb, "params": int(params)}


def run_model(name: str, variants: list[str], shape: tuple[int, ...], dtype, dtype_name: str, repeats: int,
              use_torch: bool, num_classes: int) -> list[dict[str, Any]]:
  jax_runs = {v: bench_jax(name, v, shape, dtype, num_classes) for v in variants}
  torch_runs = {v: bench_torch(name, v, shape, dtype_name, num_classes) for v in variants} if use_torch else {}
  fns = {}
  for v, r in jax_runs.items():
    fns[f"jax/{v}/fwd"], fns[f"jax/{v}/fb"] = r["fwd_fn"], r["fb_fn"]
  for v, r in torch_runs.items():
    if r is not None:
      fns[f"torch/{v}/fwd"], fns[f"torch/{v}/fb"] = r["fwd_fn"], r["fb_fn"]
  times = time_interleaved(fns, repeats, warmup=1)
  rows = []
  for v, r in jax_runs.items():
    t = torch_runs.get(v)
    rows.append({
        "model": name, "variant": v, **VARIANTS[v], "input": list(shape), "params": r["params"],
        "fwd": times[f"jax/{v}/fwd"], "fwd_bwd": times[f"jax/{v}/fb"],
        "fwd_flops": r["fwd_cost"]["flops"], "fwd_bwd_flops": r["fb_cost"]["flops"],
        "fwd_memory_bytes": r["fwd_cost"]["memory_bytes"], "fwd_bwd_memory_bytes": r["fb_cost"]["memory_bytes"],
        "torch_params": t["params"] if t else None,
        "torch_fwd": times.get(f"torch/{v}/fwd"), "torch_fwd_bwd": times.get(f"torch/{v}/fb"),
    })
  return rows


def _gflops(v: float | None, batch: int) -> str:
  return "—" if v is None else f"{v / batch / 1e9:.2f}"


def table(rows: list[dict[str, Any]]) -> str:
  out = []
  by_key = {(r["model"], r["variant"]): r for r in rows}
  for r in rows:
    same = by_key.get((r["model"], "same"))
    n = r["input"][0]
    med = lambda d: None if d is None else d["median_ms"]
    tf, tb = med(r["torch_fwd"]), med(r["torch_fwd_bwd"])
    out.append([
        r["model"], r["variant"], fmt_ms(med(r["fwd"])), fmt_ms(med(r["fwd_bwd"])),
        _gflops(r["fwd_flops"], n), _gflops(r["fwd_bwd_flops"], n),
        "—" if r["fwd_bwd_memory_bytes"] is None else f"{r['fwd_bwd_memory_bytes'] / 2**20:.0f}",
        fmt_ratio(med(r["fwd"]), same and med(same["fwd"])), fmt_ratio(med(r["fwd_bwd"]), same and med(same["fwd_bwd"])),
        fmt_ratio(r["fwd_flops"], same and same["fwd_flops"]),
        fmt_ms(tf), fmt_ms(tb), fmt_ratio(med(r["fwd_bwd"]), tb),
    ])
  return markdown_table(["model", "variant", "fwd ms", "fwd+bwd ms", "fwd GFLOP/img", "fwd+bwd GFLOP/img",
                         "train mem MiB", "fwd / same", "fwd+bwd / same", "FLOPs / same", "torch fwd ms",
                         "torch fwd+bwd ms", "jax/torch fwd+bwd"], out)


def main(argv: list[str] | None = None) -> dict[str, Any]:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--out", default="benchmarks/results/models.json", help="JSON output path")
  p.add_argument("--quick", action="store_true", help="small inputs (64x64, 3D 16x32x32), batch 2, 1 repeat")
  p.add_argument("--models", default="resnet18,resnet50,resnet3d_18")
  p.add_argument("--variants", default=",".join(DEFAULT_VARIANTS), help=f"subset of {list(VARIANTS)}")
  p.add_argument("--batch", type=int, default=None, help="default 8 (quick: 2)")
  p.add_argument("--size", type=int, default=None, help="2D input size (default 224; quick 64)")
  p.add_argument("--video", default=None, help="3D input T,H,W (default 16,112,112; quick 16,32,32)")
  p.add_argument("--repeats", type=int, default=None, help="timed calls per variant (default 3; quick 1)")
  p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
  p.add_argument("--no-torch", action="store_true", help="skip the PyTorch columns")
  p.add_argument("--torch-threads", type=int, default=None, help="torch.set_num_threads (default: all cores)")
  args = p.parse_args(argv)

  batch = args.batch or (2 if args.quick else 8)
  size = args.size or (64 if args.quick else 224)
  video = tuple(int(v) for v in (args.video or ("16,32,32" if args.quick else "16,112,112")).split(","))
  repeats = args.repeats or (1 if args.quick else 3)
  dtype = jnp.dtype(args.dtype)
  variants = args.variants.split(",")
  for v in variants:
    if v not in VARIANTS:
      p.error(f"unknown variant {v!r}; choose from {list(VARIANTS)}")
  use_torch = not args.no_torch
  if use_torch:
    try:
      import torch
      torch.set_num_threads(args.torch_threads or cpu_cores())
    except ImportError:
      use_torch = False
  env = environment()
  print(f"# jaxborders model benchmark\n\n{env_line(env)}\n\nbatch {batch}, {args.dtype}, median of {repeats}; "
        f"FLOPs from XLA cost analysis (multiply-add = 2), per image; train mem = compiled train step's "
        f"arguments + outputs + temporaries\n", flush=True)
  rows: list[dict[str, Any]] = []
  for name in args.models.split(","):
    shape = (batch, *video, 3) if name.startswith("resnet3d") else (batch, size, size, 3)
    model_rows = run_model(name, variants, shape, dtype, args.dtype, repeats, use_torch, 1000)
    rows += model_rows
    print(f"## {name}, input {'×'.join(map(str, shape))}\n\n{table(model_rows)}\n", flush=True)
    # Written after every model, so that a long run that dies later keeps what it measured.
    path = write_json(args.out, {"env": env, "args": vars(args), "rows": rows})
  result = {"env": env, "args": vars(args), "rows": rows}
  print(f"wrote {path}")
  return result


if __name__ == "__main__":
  main()
