"""Red-Green Table 1 protocol: this project's trainer vs a PyTorch version of the same protocol, side by side.

    python benchmarks/redgreen.py                      # full protocol: 4 modes × 10 seeds, ≤ 50 epochs (long)
    python benchmarks/redgreen.py --seeds 1 --epochs 5 # reduced; the full-protocol time is extrapolated

Both sides run the identical protocol: the same data (our generator), the same net, Adadelta (lr 1, rho 0.9,
eps 1e-6, weight decay 5e-5), batch 200, early stopping on val loss (patience 8), best parameters tested.
Each side's time includes compilation / start-up. Writes benchmarks/results/redgreen.json.
Reduced runs: the per-epoch time of each side is multiplied by the epochs each mode needs in the full
protocol (EPOCHS_FULL, counted from our runs) × 10 seeds; this is labelled as an extrapolation.
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


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--seeds", type=int, default=10)
  ap.add_argument("--epochs", type=int, default=50)
  ap.add_argument("--modes", default=",".join(MODES))
  ap.add_argument("--skip_torch", action="store_true")
  ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "redgreen.json"))
  args = ap.parse_args()
  modes = args.modes.split(",")
  full = args.seeds == 10 and args.epochs == 50
  import jax
  from configs import redgreen_table1
  from train import trainer

  cfg = redgreen_table1.get_config()
  cfg.seeds = tuple(range(args.seeds))
  cfg.num_epochs = args.epochs
  cfg.sweep.model.conv_mode = tuple(modes)
  cfg.checkpoint.every_n_epochs = 0
  import tempfile
  results = {"jax": {}, "torch": {}, "cpu_count": os.cpu_count(), "seeds": args.seeds, "epochs": args.epochs,
             "jax_version": jax.__version__}
  with tempfile.TemporaryDirectory() as wd:
    t0 = time.time()
    summary = trainer.train_and_evaluate(cfg, wd)
    results["jax"]["total_s"] = time.time() - t0
  for m in modes:
    runs = [r for r in summary["runs"] if r["overrides"]["model.conv_mode"] == m]
    results["jax"][m] = {"s_per_run": float(np.mean([r["wall_s"] for r in runs])),
                         "s_per_epoch": float(np.sum([r["wall_s"] for r in runs]) / np.sum([r["epochs"] for r in runs])),
                         "epochs": float(np.mean([r["epochs"] for r in runs])),
                         "train_s_per_epoch_steady": float(np.nanmean([r["epoch_s"] or np.nan for r in runs])),
                         "first_epoch_s": float(np.mean([r["first_epoch_s"] for r in runs])),
                         "similar": float(np.mean([r["metrics"]["test_similar/accuracy"] for r in runs])),
                         "dissimilar": float(np.mean([r["metrics"]["test_dissimilar/accuracy"] for r in runs]))}
  if not args.skip_torch:
    import torch
    torch.set_num_threads(os.cpu_count())
    data = load_data()
    t0 = time.time()
    for m in modes:
      runs = []
      for s in range(args.seeds):
        t1 = time.time()
        r = run_torch(m, s, args.epochs, data)
        r["wall_s"] = time.time() - t1
        runs.append(r)
      results["torch"][m] = {"s_per_run": float(np.mean([r["wall_s"] for r in runs])),
                             "s_per_epoch": float(np.sum([r["wall_s"] for r in runs]) / np.sum([r["epochs"] for r in runs])),
                             "epochs": float(np.mean([r["epochs"] for r in runs])),
                             "train_s_per_epoch_steady": float(np.mean([r["train_s_per_epoch"] for r in runs])),
                             "similar": float(np.mean([r["test_similar"] for r in runs])),
                             "dissimilar": float(np.mean([r["test_dissimilar"] for r in runs]))}
    results["torch"]["total_s"] = time.time() - t0
  print(f"\nRed-Green protocol, {len(modes)} modes × {args.seeds} seeds × ≤{args.epochs} epochs, {os.cpu_count()} CPUs")
  print("| mode | JAX s/run | JAX train s/epoch (steady) | JAX 1st epoch s (compile) | PyTorch s/run | PyTorch train "
        "s/epoch (steady) | speed-up (steady epoch) | speed-up (whole run) | reference script s/run |")
  print("|---|---|---|---|---|---|---|---|---|")
  for m in modes:
    j, t = results["jax"][m], results["torch"].get(m)
    tt = (f"{t['s_per_run']:.1f} | {t['train_s_per_epoch_steady']:.2f} | "
          f"{t['train_s_per_epoch_steady'] / j['train_s_per_epoch_steady']:.2f}× | {t['s_per_epoch'] / j['s_per_epoch']:.2f}×"
          if t else "- | - | - | -")
    print(f"| {m} | {j['s_per_run']:.1f} | {j['train_s_per_epoch_steady']:.2f} | {j['first_epoch_s']:.1f} | {tt} | "
          f"{REFERENCE_S_PER_RUN[m]} |")
  jt = results["jax"]["total_s"]
  line = f"total: JAX {jt:.0f} s"
  if results["torch"]:
    line += f", PyTorch {results['torch']['total_s']:.0f} s, ratio {results['torch']['total_s'] / jt:.2f}×"
  print(line)
  if not full:
    # Extrapolation (labelled): per-epoch times × the epochs each mode used here, × 10 seeds.
    est_j = sum(results["jax"][m]["s_per_epoch"] * results["jax"][m]["epochs"] for m in modes) * 10
    msg = f"EXTRAPOLATED to 10 seeds (epochs as measured here): JAX ≈ {est_j / 60:.1f} min"
    if results["torch"]:
      est_t = sum(results["torch"][m]["s_per_epoch"] * results["jax"][m]["epochs"] for m in modes) * 10
      msg += f", PyTorch ≈ {est_t / 60:.1f} min"
    print(msg + " (reference script measured here: ≈ 53 min)")
  os.makedirs(os.path.dirname(args.out), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump(results, f, indent=1)


if __name__ == "__main__":
  main()
