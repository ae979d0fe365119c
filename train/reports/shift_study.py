"""Report of the CPU-scale shift-robustness study (``configs/shift_study.py``; F-Conv paper Exp 3, docs/experiments.md).

Runs ``train.eval`` on every trained run (writing its ``eval.json``, ``eval.md`` and plots into the workdir),
then writes ``shift_study.md`` — per run (mean ± std over seeds): accuracy, consistency, circular consistency,
sub-pixel consistency, diagonal-shift accuracy (mean over offsets 0..max), mean sub-pixel-shift accuracy, the
diagonal curve at every offset and the sub-pixel curve at every shift — and ``shift_study.png``: the
diagonal-shift curves (left) and consistency / circular / sub-pixel consistency per run (right).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from train import eval as eval_lib

COLUMNS = (("accuracy", "accuracy"), ("consistency", "consistency"), ("circular_consistency", "circ. consistency"),
           ("subpixel_consistency", "sub-pixel consistency"), ("diagonal", "diag. acc. (mean)"),
           ("subpixel_accuracy", "sub-pixel acc. (mean)"))


def _cell(values: list[float]) -> str:
  v = np.asarray(values, np.float64)
  return f"{v.mean():.1f}" if len(v) == 1 else f"{v.mean():.1f} ± {v.std():.1f}"


def table(runs: list[dict[str, Any]]) -> str:
  """Markdown: the summary columns, then the diagonal curve, one row per run (seeds averaged)."""
  names = list(dict.fromkeys(r["name"] for r in runs))
  groups = {n: [r for r in runs if r["name"] == n] for n in names}
  lines = ["| run | seeds | " + " | ".join(t for _, t in COLUMNS) + " |", "|---|---|" + "---|" * len(COLUMNS)]
  for n, g in groups.items():
    cells = []
    for key, _ in COLUMNS:
      vals = [eval_lib._get(r, key) for r in g]  # pylint: disable=protected-access
      vals = [v for v in vals if v is not None]
      cells.append(_cell(vals) if vals else "–")
    lines.append(f"| {n} | {len(g)} | " + " | ".join(cells) + " |")
  first = runs[0]
  if "diagonal" in first:
    offsets = first["diagonal"]["offsets"]
    lines += ["", "Diagonal-shift accuracy (%) at offset (o, o):", "",
              "| run | " + " | ".join(str(o) for o in offsets) + " |", "|---|" + "---|" * len(offsets)]
    for n, g in groups.items():
      curve = np.mean([r["diagonal"]["accuracy"] for r in g], axis=0)
      lines.append(f"| {n} | " + " | ".join(f"{v:.0f}" for v in curve) + " |")
  if "subpixel_accuracy" in first:
    shifts = first["subpixel_accuracy"]["shifts"]
    lines += ["", "Sub-pixel shift accuracy (%) at diagonal Fourier shift (s, s):", "",
              "| run | " + " | ".join(f"{s:g}" for s in shifts) + " |", "|---|" + "---|" * len(shifts)]
    for n, g in groups.items():
      curve = np.mean([r["subpixel_accuracy"]["accuracy"] for r in g], axis=0)
      lines.append(f"| {n} | " + " | ".join(f"{v:.0f}" for v in curve) + " |")
  proto = first["protocol"]
  lines += ["", f"{first['num_examples']} {proto['split']} images {proto['eval_size']}, windows {proto['crop']}; "
            f"consistency: offsets in [0, {proto['max_offset']}); "
            f"circular: rolls in [-{proto['circular_max_shift']}, {proto['circular_max_shift']}); "
            f"sub-pixel: Fourier shifts in [-{proto.get('subpixel_max_shift', 0)}, "
            f"{proto.get('subpixel_max_shift', 0)})."]
  return "\n".join(lines) + "\n"


def plot(runs: list[dict[str, Any]], path: str) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  from matplotlib.ticker import MaxNLocator

  from train.eval_report import legend_label
  names = list(dict.fromkeys(r["name"] for r in runs))
  groups = {n: [r for r in runs if r["name"] == n] for n in names}
  labels = [legend_label(g[0].get("overrides", {})) for g in groups.values()]
  fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
  for label, g in zip(labels, groups.values()):
    if "diagonal" in g[0]:
      left.plot(g[0]["diagonal"]["offsets"], np.mean([r["diagonal"]["accuracy"] for r in g], axis=0), marker=".",
                label=label)
  left.xaxis.set_major_locator(MaxNLocator(integer=True))
  left.set(xlabel="diagonal offset (pixels)", ylabel="top-1 accuracy (%)", title="Accuracy vs diagonal shift")
  left.legend(fontsize=7)
  x = np.arange(len(names))
  cons = [np.mean([r.get("consistency", np.nan) for r in g]) for g in groups.values()]
  circ = [np.mean([r["circular_consistency"] for r in g]) for g in groups.values()]
  sub = [np.mean([r.get("subpixel_consistency", np.nan) for r in g]) for g in groups.values()]
  right.bar(x - 0.27, cons, 0.27, label="consistency (crops)")
  right.bar(x, circ, 0.27, label="circular consistency")
  right.bar(x + 0.27, sub, 0.27, label="sub-pixel consistency")
  right.set_xticks(x, labels, rotation=30, ha="right", fontsize=7)
  right.set(ylabel="%", ylim=(0, 118), title="Same prediction under two shifts")
  right.legend(fontsize=7, loc="upper center", ncol=3)  # above the bars (which reach 100)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def report(workdir: str, runs: list[dict[str, Any]], config: Any, **timing: Any) -> str:
  del timing  # wall time and parallelism (unused here)
  """The trainer's report hook: evaluates every run, writes shift_study.md / .png, returns the table."""
  del runs  # train.eval restores each run from its checkpoints (it needs the BatchNorm statistics too)
  summary = eval_lib.evaluate(config, workdir, quiet=True)
  text = "Shift-robustness study (train.eval)\n\n" + table(summary["runs"])
  with open(os.path.join(workdir, "shift_study.md"), "w") as f:
    f.write("# " + text)
  plot(summary["runs"], os.path.join(workdir, "shift_study.png"))
  return text + f"\nEvaluation: {summary['wall_s']:.1f} s; shift_study.md/.png and eval.* in {workdir}\n"
