"""Red-Green Table 1 protocol: this project's trainer vs a PyTorch version of the same protocol, side by side.

    python benchmarks/redgreen.py             # full protocol: 4 modes × 10 seeds, ≤ 50 epochs (~20 + ~50 min)
    python benchmarks/redgreen.py --seeds 2   # reduced; the 10-seed time is extrapolated (labelled)

Both sides run the identical protocol: the same data (our generator), the same net, Adadelta (lr 1, rho 0.9,
eps 1e-6, weight decay 5e-5), batch 200, up to 50 epochs, early stopping on val loss (patience 8), best parameters
tested. Ours is ``configs/redgreen_table1.py`` through the trainer (microbatches of 10, runs on all cores at once
via ``parallel_runs``; ``--parallel_runs 1`` for one run at a time). PyTorch (2 threads, one run after another)
in two styles: ``lean``, a plain tensor loop, and ``reference``, the reference script's own loop (DataLoader over
float64 arrays, per-batch casts, autograd on in validation, torch.save of the best weights). Wall times include
compilation / start-up; writes benchmarks/results/redgreen.json.
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
REFERENCE_S_PER_RUN = {"valid": 50, "same": 68, "circular": 125, "full": 77}  # measured here (issue 4)


def load_data():
  import ml_collections

  from jaxborders.data import redgreen
  cfg = ml_collections.ConfigDict(redgreen.DEFAULTS)
  return {s: redgreen.load(cfg, s, 0) for s in redgreen.SPLITS}


def run_torch(mode: str, seed: int, epochs: int, data, patience: int = 8) -> dict:
  """The reference protocol in plain PyTorch (NCHW), one run."""
  import torch
  import torch.nn as tnn
  import torch.nn.functional as F
  torch.manual_seed(seed)
  pad = {"valid": 0, "same": 1, "circular": 1, "full": 2}[mode]
  pm = "circular" if mode == "circular" else "zeros"
  convs = [tnn.Conv2d(i, o, 3, s, pad, bias=False, padding_mode=pm) for i, o, s in ((3, 32, 1), (32, 32, 2), (32, 64, 2), (64, 64, 2))]
  net = tnn.Sequential(*[m for c in convs for m in (c, tnn.ReLU())], tnn.AdaptiveMaxPool2d(1), tnn.Flatten(), tnn.Linear(64, 2))
  opt = torch.optim.Adadelta(net.parameters(), lr=1.0, rho=0.9, eps=1e-6, weight_decay=5e-5)
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


def _per_mode(runs: list[dict], modes: list[str], key) -> dict:
  out = {}
  for m in modes:
    rs = [r for r in runs if key(r) == m]
    out[m] = {"s_per_run": float(np.mean([r["wall_s"] for r in rs])), "epochs": float(np.mean([r["epochs"] for r in rs])),
              "similar": float(np.mean([r["similar"] for r in rs])),
              "dissimilar": float(np.mean([r["dissimilar"] for r in rs]))}
  return out


def run_torch_reference_style(mode: str, seed: int, epochs: int, data, patience: int = 8) -> dict:
  """The same protocol written the way the reference script (CWB ``red_and_green.py``) runs it.

  Its loop, not its bugs: float64 arrays batched by a ``DataLoader`` and cast to float32 per batch, validation
  in batches of 200 with autograd on, the best weights written to disk with ``torch.save``, the epoch loop kept
  running (idle) after early stopping. The net is ours (circular wrap 1; the reference's ``padding=2``
  circular convs are wider on current PyTorch, so its own circular runs are slower still).
  """
  import tempfile

  import torch
  import torch.nn as tnn
  import torch.nn.functional as F
  from torch.utils.data import DataLoader, TensorDataset
  torch.manual_seed(seed)
  pad = {"valid": 0, "same": 1, "circular": 1, "full": 2}[mode]
  pm = "circular" if mode == "circular" else "zeros"
  convs = [tnn.Conv2d(i, o, 3, s, pad, bias=False, padding_mode=pm) for i, o, s in ((3, 32, 1), (32, 32, 2), (32, 64, 2), (64, 64, 2))]
  net = tnn.Sequential(*[m for c in convs for m in (c, tnn.ReLU())], tnn.AdaptiveMaxPool2d(1), tnn.Flatten(), tnn.Linear(64, 2))
  opt = torch.optim.Adadelta(net.parameters(), lr=1.0, rho=0.9, eps=1e-6, weight_decay=5e-5)
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


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--seeds", type=int, default=10)
  ap.add_argument("--epochs", type=int, default=50)
  ap.add_argument("--modes", default=",".join(MODES))
  ap.add_argument("--parallel_runs", type=int, default=0, help="ours: runs at once (0: one per core, the default "
                  "of configs/redgreen_table1.py; 1: one run at a time)")
  ap.add_argument("--torch_threads", type=int, default=2)
  ap.add_argument("--skip_torch", action="store_true")
  ap.add_argument("--torch_styles", default="lean,reference",
                  help="PyTorch versions to time: 'lean' (a plain tensor loop) and/or 'reference' (the reference "
                       "script's loop: DataLoader, float64 casts, autograd in validation, torch.save)")
  ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "redgreen.json"))
  args = ap.parse_args()
  modes = args.modes.split(",")
  import tempfile

  import jax
  from configs import redgreen_table1
  from train import trainer

  cfg = redgreen_table1.get_config()
  cfg.seeds = tuple(range(args.seeds))
  cfg.num_epochs = args.epochs
  cfg.sweep.model.conv_mode = tuple(modes)
  cfg.checkpoint.every_n_epochs = 0
  cfg.parallel_runs = args.parallel_runs
  cfg.report = ""
  results = {"cpu_count": os.cpu_count(), "seeds": args.seeds, "epochs": args.epochs, "modes": modes,
             "jax_version": jax.__version__, "parallel_runs": args.parallel_runs, "torch_threads": args.torch_threads}
  with tempfile.TemporaryDirectory() as wd:
    t0 = time.time()
    summary = trainer.train_and_evaluate(cfg, wd)
    jax_total = time.time() - t0
  jax_runs = [{"mode": r["overrides"]["model.conv_mode"], "seed": r["seed"], "wall_s": r["wall_s"], "epochs": r["epochs"],
               "similar": r["metrics"]["test_similar/accuracy"], "dissimilar": r["metrics"]["test_dissimilar/accuracy"]}
              for r in summary["runs"]]
  results["jax"] = {"total_s": jax_total, "runs": jax_runs, "modes": _per_mode(jax_runs, modes, lambda r: r["mode"])}
  styles = [] if args.skip_torch else args.torch_styles.split(",")
  if styles:
    import torch
    torch.set_num_threads(args.torch_threads)
    results["torch_version"] = torch.__version__
    data = load_data()
  for style in styles:
    fn = {"lean": run_torch, "reference": run_torch_reference_style}[style]
    torch_runs = []
    t0 = time.time()
    for m in modes:
      for s in range(args.seeds):
        t1 = time.time()
        r = fn(m, s, args.epochs, data)
        torch_runs.append({"mode": m, "seed": s, "wall_s": time.time() - t1, "epochs": r["epochs"],
                           "similar": r["test_similar"], "dissimilar": r["test_dissimilar"]})
        print(f"torch ({style}) {m} seed {s}: {torch_runs[-1]['wall_s']:.1f} s, {r['epochs']} epochs", flush=True)
    results[f"torch_{style}"] = {"total_s": time.time() - t0, "runs": torch_runs,
                                 "modes": _per_mode(torch_runs, modes, lambda r: r["mode"])}
  print(f"\nRed-Green protocol: {len(modes)} modes × {args.seeds} seeds × ≤{args.epochs} epochs (early stopping), "
        f"{os.cpu_count()} CPUs; ours with parallel_runs={args.parallel_runs}, PyTorch {args.torch_threads} threads, "
        "one run after another")
  head = "| mode | ours s/run | ours epochs | ours sim/dis % |"
  for style in styles:
    head += f" PyTorch {style} s/run | epochs | sim/dis % |"
  print(head + " reference script s/run (measured before) |")
  print("|---" * (4 + 3 * len(styles) + 1) + "|")
  for m in modes:
    j = results["jax"]["modes"][m]
    row = f"| {m} | {j['s_per_run']:.1f} | {j['epochs']:.1f} | {100 * j['similar']:.1f} / {100 * j['dissimilar']:.1f} |"
    for style in styles:
      t = results[f"torch_{style}"]["modes"][m]
      row += f" {t['s_per_run']:.1f} | {t['epochs']:.1f} | {100 * t['similar']:.1f} / {100 * t['dissimilar']:.1f} |"
    print(row + f" {REFERENCE_S_PER_RUN[m]} |")
  print(f"whole protocol wall time: ours {jax_total:.0f} s (runs overlap when parallel_runs != 1)")
  for style in styles:
    total = results[f"torch_{style}"]["total_s"]
    results[f"speedup_vs_torch_{style}"] = total / jax_total
    print(f"  PyTorch {style}: {total:.0f} s -> ours is {total / jax_total:.2f}x faster")
  if args.seeds != 10 and len(modes) == 4:
    # Labelled extrapolation: wall time scales with the number of seeds (same modes, same epochs per run).
    scale = 10 / args.seeds
    parts = [f"ours ≈ {jax_total * scale / 60:.1f} min"]
    parts += [f"PyTorch {style} ≈ {results[f'torch_{style}']['total_s'] * scale / 60:.1f} min" for style in styles]
    print(f"EXTRAPOLATED to 10 seeds (×{scale:g}): " + ", ".join(parts) +
          f"; the reference script was measured here at ≈ {sum(REFERENCE_S_PER_RUN.values()) * 10 / 60:.0f} min "
          f"(ours {sum(REFERENCE_S_PER_RUN.values()) * 10 / (jax_total * scale):.2f}x faster than that)")
  os.makedirs(os.path.dirname(args.out), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump(results, f, indent=1)
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main()
