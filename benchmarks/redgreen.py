"""Red-Green Table 1 protocol: this project's trainer vs a PyTorch version of the same protocol, side by side.

    python benchmarks/redgreen.py --seeds 1,10   # 1 seed, then the paper's 10 seeds, in one run (hours on 2 cores)
    python benchmarks/redgreen.py --seeds 1      # the quick check: 4 modes × 1 seed

Both sides run the identical protocol: the same data (our generator), the same net, Adadelta (lr 1, rho 0.9,
eps 1e-6, weight decay 5e-5), batch 200, up to 50 epochs, early stopping on val loss (patience 8), best parameters
tested. Ours is ``configs/redgreen_table1.py`` through the trainer (microbatches of 10, runs on all cores at once
via ``parallel_runs``; ``--parallel_runs 1`` for one run at a time). PyTorch (2 threads, one run after another)
in two styles: ``lean``, a plain tensor loop, and ``reference``, the reference script's own loop (DataLoader over
float64 arrays, per-batch casts, autograd on in validation, torch.save of the best weights). Wall times include
compilation / start-up. Each mode's achieved GFLOP/s per core (XLA's FLOP count of one training step and one
validation pass × the epochs each run trained, over its wall time and the cores it used) is printed beside this
CPU's single-core matmul rate, measured in the same run. Writes benchmarks/results/redgreen.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

MODES = ("valid", "same", "circular", "full")


def load_data():
  import ml_collections

  from jaxborders.data import redgreen
  cfg = ml_collections.ConfigDict(redgreen.DEFAULTS)
  return {s: redgreen.load(cfg, s, 0) for s in redgreen.SPLITS}


def _torch_net_and_optimizer(mode: str, seed: int):
  """The Red-Green net in PyTorch (NCHW, PyTorch's default init from ``seed``) and the protocol's Adadelta."""
  import torch
  import torch.nn as tnn
  torch.manual_seed(seed)
  pad = {"valid": 0, "same": 1, "circular": 1, "full": 2}[mode]
  pm = "circular" if mode == "circular" else "zeros"
  convs = [tnn.Conv2d(i, o, 3, s, pad, bias=False, padding_mode=pm)
           for i, o, s in ((3, 32, 1), (32, 32, 2), (32, 64, 2), (64, 64, 2))]
  net = tnn.Sequential(*[m for c in convs for m in (c, tnn.ReLU())], tnn.AdaptiveMaxPool2d(1), tnn.Flatten(),
                       tnn.Linear(64, 2))
  return net, torch.optim.Adadelta(net.parameters(), lr=1.0, rho=0.9, eps=1e-6, weight_decay=5e-5)


def run_torch(mode: str, seed: int, epochs: int, data, patience: int = 8) -> dict:
  """The reference protocol in plain PyTorch (NCHW), one run."""
  import torch
  import torch.nn.functional as F
  net, opt = _torch_net_and_optimizer(mode, seed)
  t = {s: (torch.from_numpy(d["image"].transpose(0, 3, 1, 2).copy()), torch.from_numpy(d["label"]).long()) for s, d in data.items()}
  x, y = t["train"]
  best, bad, best_state, ep = None, 0, None, 0
  train_times = []
  for ep in range(1, epochs + 1):
    net.train()
    t0 = time.time()
    for i in range(0, x.shape[0] - 199, 200):
      opt.zero_grad()
      F.cross_entropy(net(x[i:i + 200]), y[i:i + 200]).backward()
      opt.step()
    train_times.append(time.time() - t0)
    net.eval()
    with torch.no_grad():
      vl = F.cross_entropy(net(t["val"][0]), t["val"][1]).item()
    if best is None or vl < best:
      best, bad, best_state = vl, 0, {k: v.clone() for k, v in net.state_dict().items()}
    else:
      bad += 1
      if bad > patience:
        break
  net.load_state_dict(best_state)
  with torch.no_grad():
    acc = {s: (net(t[s][0]).argmax(1) == t[s][1]).float().mean().item() for s in ("test_similar", "test_dissimilar")}
  return {"epochs": ep, "train_s_per_epoch": float(np.median(train_times[1:] or train_times)), **acc}


def protocol_result(total_s: float, runs: list[dict], modes: list[str]) -> dict:
  """One side of a protocol: its wall time, its runs, and per mode the mean s/run, epochs and accuracies."""
  per_mode = {}
  for m in modes:
    rs = [r for r in runs if r["mode"] == m]
    per_mode[m] = {key: float(np.mean([r[field] for r in rs])) for key, field in
                   (("s_per_run", "wall_s"), ("epochs", "epochs"), ("similar", "similar"), ("dissimilar", "dissimilar"))}
  return {"total_s": total_s, "runs": runs, "modes": per_mode}


def run_torch_reference_style(mode: str, seed: int, epochs: int, data, patience: int = 8) -> dict:
  """The same protocol written the way the reference script (CWB ``red_and_green.py``) runs it.

  Its loop, not its bugs: float64 arrays batched by a ``DataLoader`` and cast to float32 per batch, validation
  in batches of 200 with autograd on, the best weights written to disk with ``torch.save``, the epoch loop kept
  running (idle) after early stopping. The net is ours (circular wrap 1; the reference's ``padding=2``
  circular convs are wider on current PyTorch, so its own circular runs are slower still).
  """
  import tempfile

  import torch
  import torch.nn.functional as F
  from torch.utils.data import DataLoader, TensorDataset
  net, opt = _torch_net_and_optimizer(mode, seed)
  loaders = {s: DataLoader(TensorDataset(torch.from_numpy(d["image"].transpose(0, 3, 1, 2).astype(np.float64)),
                                         torch.from_numpy(d["label"].astype(np.float64))), batch_size=200)
             for s, d in data.items()}
  best, bad, flag, ep = 50.0, 0, True, 0
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "net_model_wts.pth")
    for epoch in range(epochs):
      if not flag:
        continue
      ep = epoch + 1
      net.train()
      for images, labels in loaders["train"]:
        images, labels = images.type(torch.FloatTensor), labels.type(torch.LongTensor)
        opt.zero_grad()
        F.cross_entropy(net(images), labels).backward()
        opt.step()
      val_loss, total = 0.0, 0
      for images, labels in loaders["val"]:
        out = net(images.type(torch.FloatTensor))
        val_loss += F.cross_entropy(out, labels.type(torch.LongTensor)).item()
        total += labels.shape[0]
      val_loss /= total
      if best > val_loss:
        best, bad = val_loss, 0
        torch.save(net.state_dict(), path)
      elif bad < patience:
        bad += 1
      else:
        flag = False
    net.load_state_dict(torch.load(path))
  net.eval()
  acc = {}
  for s in ("test_similar", "test_dissimilar"):
    correct = total = 0
    for images, labels in loaders[s]:
      correct += int((net(images.type(torch.FloatTensor)).argmax(1) == labels.type(torch.LongTensor)).sum())
      total += labels.shape[0]
    acc[s] = correct / total
  return {"epochs": ep, **acc}


def protocol_flops(modes: list[str]) -> dict[str, dict[str, float]]:
  """XLA's FLOP count per mode of one training step (batch 200) and one validation pass (1000 images)."""
  import jax
  import jax.numpy as jnp
  import optax

  from jaxborders.models import get_model
  from jaxborders.models.summary import _cost_flops as flops

  out = {}
  for mode in modes:
    model = get_model("redgreen_net", conv_mode=mode, num_classes=2)
    params = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))["params"]
    loss = lambda p, x, y: optax.softmax_cross_entropy_with_integer_labels(model.apply({"params": p}, x), y).mean()
    step = jax.jit(jax.grad(loss)).lower(params, jnp.zeros((200, 32, 32, 3)), jnp.zeros((200,), jnp.int32))
    val = jax.jit(lambda p, x: model.apply({"params": p}, x)).lower(params, jnp.zeros((1000, 32, 32, 3)))
    out[mode] = {"train_step": flops(step.compile()), "val_pass": flops(val.compile())}
  return out


def matmul_gflops_per_core(size: int = 1024, repeats: int = 20) -> float:
  """fp32 matmul rate of one core (a subprocess pinned to one core, XLA single-threaded): the practical peak."""
  import subprocess
  pin = (f"os.sched_setaffinity(0, {{{sorted(os.sched_getaffinity(0))[0]}}})\n"
         if hasattr(os, "sched_setaffinity") else "")
  code = (f"import os, time\n{pin}import jax, jax.numpy as jnp\n"
          f"a = jnp.ones(({size}, {size})); f = jax.jit(lambda a: a @ a); f(a).block_until_ready()\n"
          f"best = 1e9\n"
          f"for _ in range({repeats}):\n"
          f"  t = time.perf_counter(); f(a).block_until_ready(); best = min(best, time.perf_counter() - t)\n"
          f"print(2 * {size}**3 / best / 1e9)\n")
  env = dict(os.environ, XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} --xla_cpu_multi_thread_eigen=false".strip())
  out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
  return float(out.stdout.split()[-1])


def run_ours(modes: list[str], seeds: int, epochs: int, parallel_runs: int) -> dict:
  """The protocol through this project's trainer (configs/redgreen_table1.py), no checkpoints, no report."""
  import tempfile

  from configs import redgreen_table1
  from train import trainer

  cfg = redgreen_table1.get_config()
  cfg.seeds = tuple(range(seeds))
  cfg.num_epochs = epochs
  cfg.sweep.model.conv_mode = tuple(modes)
  cfg.checkpoint.every_n_epochs = 0
  cfg.parallel_runs = parallel_runs
  cfg.report = ""
  with tempfile.TemporaryDirectory() as wd:
    t0 = time.time()
    summary = trainer.train_and_evaluate(cfg, wd)
    total = time.time() - t0
  runs = [{"mode": r["overrides"]["model.conv_mode"], "seed": r["seed"], "wall_s": r["wall_s"], "epochs": r["epochs"],
           "similar": r["metrics"]["test_similar/accuracy"], "dissimilar": r["metrics"]["test_dissimilar/accuracy"]}
          for r in summary["runs"]]
  return protocol_result(total, runs, modes)


def run_torch_protocol(style: str, modes: list[str], seeds: int, epochs: int, data) -> dict:
  fn = {"lean": run_torch, "reference": run_torch_reference_style}[style]
  runs = []
  t0 = time.time()
  for m in modes:
    for s in range(seeds):
      t1 = time.time()
      r = fn(m, s, epochs, data)
      runs.append({"mode": m, "seed": s, "wall_s": time.time() - t1, "epochs": r["epochs"],
                   "similar": r["test_similar"], "dissimilar": r["test_dissimilar"]})
      print(f"torch ({style}) {m} seed {s}: {runs[-1]['wall_s']:.1f} s, {r['epochs']} epochs", flush=True)
  return protocol_result(time.time() - t0, runs, modes)


def add_gflops(side: dict, flops: dict, cores_per_run: int) -> None:
  """Achieved GFLOP/s per core of each mode's runs: FLOPs trained and validated over wall time × cores used."""
  for m, row in side["modes"].items():
    runs = [r for r in side["runs"] if r["mode"] == m]
    done = sum(r["epochs"] * (10 * flops[m]["train_step"] + flops[m]["val_pass"]) for r in runs)
    row["gflops_per_core"] = done / sum(r["wall_s"] for r in runs) / cores_per_run / 1e9


def markdown(results: dict, styles: list[str]) -> str:
  peak = results["matmul_gflops_per_core"]
  lines = []
  for block in results["protocols"]:
    n = block["seeds"]
    k = len(results["modes"])
    lines += [f"### {k} mode{'s' * (k > 1)} × {n} seed{'s' * (n > 1)} × ≤{results['epochs']} epochs (early stopping)",
              "", "| mode | ours s/run | epochs | GFLOP/s/core (% of matmul) | sim / dis % |" +
              "".join(f" PyTorch {s} s/run | epochs | GFLOP/s/core (%) | sim / dis % |" for s in styles),
              "|---" * (5 + 4 * len(styles)) + "|"]
    for m in results["modes"]:
      cells = []
      for side in ["ours"] + [f"torch_{s}" for s in styles]:
        r = block[side]["modes"][m]
        cells += [f"{r['s_per_run']:.1f}", f"{r['epochs']:.1f}",
                  f"{r['gflops_per_core']:.1f} ({100 * r['gflops_per_core'] / peak:.0f}%)",
                  f"{100 * r['similar']:.1f} / {100 * r['dissimilar']:.1f}"]
      lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Whole protocol wall time: ours {block['ours']['total_s']:.0f} s" + "".join(
        f"; PyTorch {s} {block['torch_' + s]['total_s']:.0f} s (ours {block['speedup_vs_' + s]:.2f}× faster)"
        for s in styles) + ".")
    lines.append("")
  lines.append(f"{results['cpu_count']} CPUs; ours: {results['parallel_runs_label']}; PyTorch {results['torch_threads']} "
               f"threads, one run after another. Single-core fp32 matmul rate ({results['matmul_size']}², XLA, measured "
               f"in this run): {peak:.1f} GFLOP/s. FLOPs: XLA's count of one training step and one validation pass "
               "per mode, times the epochs each run trained.")
  return "\n".join(lines) + "\n"


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--seeds", default="1,10", help="comma-separated seed counts; each is a whole protocol, in order")
  ap.add_argument("--epochs", type=int, default=50)
  ap.add_argument("--modes", default=",".join(MODES))
  ap.add_argument("--parallel_runs", type=int, default=0, help="ours: runs at once (0: one per core, the default "
                  "of configs/redgreen_table1.py; 1: one run at a time)")
  ap.add_argument("--torch_threads", type=int, default=2)
  ap.add_argument("--skip_torch", action="store_true")
  ap.add_argument("--torch_styles", default="reference",
                  help="comma-separated PyTorch versions to time: 'reference' (the reference script's loop: DataLoader, "
                       "float64 casts, autograd in validation, torch.save) and/or 'lean' (a plain tensor loop)")
  ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "redgreen.json"))
  args = ap.parse_args()
  modes = args.modes.split(",")
  seed_counts = [int(n) for n in args.seeds.split(",")]
  styles = [] if args.skip_torch else args.torch_styles.split(",")
  for style in styles:
    if style not in ("lean", "reference"):
      raise SystemExit(f"--torch_styles: unknown style {style!r}; accepted values: lean, reference.")
  import jax

  from train import parallel

  workers = parallel.num_workers(args.parallel_runs, len(modes) * min(seed_counts))
  ours_cores = 1 if workers else len(parallel.available_cores())  # workers are single-threaded; in process: all cores
  size = 1024
  results = {"cpu_count": os.cpu_count(), "epochs": args.epochs, "modes": modes, "jax_version": jax.__version__,
             "parallel_runs": args.parallel_runs, "torch_threads": args.torch_threads, "matmul_size": size,
             "parallel_runs_label": (f"{workers} single-threaded runs at a time" if workers else
                                     f"one run at a time on {ours_cores} cores"),
             "matmul_gflops_per_core": matmul_gflops_per_core(size), "flops": protocol_flops(modes), "protocols": []}
  print(f"single-core matmul: {results['matmul_gflops_per_core']:.1f} GFLOP/s", flush=True)
  data = None
  if styles:
    import torch
    torch.set_num_threads(args.torch_threads)
    results["torch_version"] = torch.__version__
    data = load_data()
  for seeds in seed_counts:
    block = {"seeds": seeds, "ours": run_ours(modes, seeds, args.epochs, args.parallel_runs)}
    add_gflops(block["ours"], results["flops"], ours_cores)
    for style in styles:
      block[f"torch_{style}"] = run_torch_protocol(style, modes, seeds, args.epochs, data)
      add_gflops(block[f"torch_{style}"], results["flops"], args.torch_threads)
      block[f"speedup_vs_{style}"] = block[f"torch_{style}"]["total_s"] / block["ours"]["total_s"]
    results["protocols"].append(block)
  text = markdown(results, styles)
  print("\n" + text)
  os.makedirs(os.path.dirname(args.out), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump(results, f, indent=1)
  with open(os.path.splitext(args.out)[0] + ".md", "w") as f:
    f.write(text)
  print(f"wrote {args.out} and {os.path.splitext(args.out)[0]}.md")


if __name__ == "__main__":
  main()
