"""The evaluation report: ``eval.md`` (the F-Conv paper's Table 2 layout and every metric) and the PNG figures."""

from __future__ import annotations

import os
from typing import Any

import numpy as np


# ----------------------------------------------------------------------------------------------------------
# Reports.


def _mean_std(values: list[float]) -> str:
  v = np.asarray(values, np.float64)
  return f"{v.mean():.2f}" if len(v) == 1 else f"{v.mean():.2f} ± {v.std():.2f}"


def _get(run: dict[str, Any], metric: str) -> float | None:
  if metric == "diagonal":
    return run["diagonal"]["mean"] if "diagonal" in run else None
  if metric == "adversarial":
    return run["adversarial"]["accuracy"][-1] if "adversarial" in run else None
  value = run.get(metric)
  return None if value is None else float(value)


TABLE_METRICS = (("accuracy", "accuracy"), ("consistency", "consistency"), ("circular_consistency", "circ. cons."),
                 ("diagonal", "diag. acc."), ("adversarial", "adv. acc. (max m)"),
                 ("classification_variation", "class. var."))


def markdown(runs: list[dict[str, Any]]) -> str:
  """Table 2 layout (rows: architecture, columns: variants) for diagonal accuracy and consistency, then every
  metric per run (mean ± std over seeds)."""
  rows = list(dict.fromkeys(r["row"] for r in runs))
  variants = list(dict.fromkeys(r["variant"] for r in runs))
  lines = ["# Shift-robustness evaluation", ""]
  for metric, title in (("diagonal", "Diagonal accuracy"), ("consistency", "Consistency")):
    lines += [f"## {title} (%)", "", "| model | " + " | ".join(variants) + " |", "|---|" + "---|" * len(variants)]
    for row in rows:
      cells = []
      for v in variants:
        vals = [_get(r, metric) for r in runs if r["row"] == row and r["variant"] == v]
        vals = [x for x in vals if x is not None]
        cells.append(_mean_std(vals) if vals else "–")
      lines.append(f"| {row} | " + " | ".join(cells) + " |")
    lines.append("")
  lines += ["## All metrics", "", "| run | seeds | " + " | ".join(t for _, t in TABLE_METRICS) + " |",
            "|---|---|" + "---|" * len(TABLE_METRICS)]
  for name in dict.fromkeys(r["name"] for r in runs):
    group = [r for r in runs if r["name"] == name]
    cells = []
    for metric, _ in TABLE_METRICS:
      vals = [x for x in (_get(r, metric) for r in group) if x is not None]
      cells.append(_mean_std(vals) if vals else "–")
    lines.append(f"| {name} | {len(group)} | " + " | ".join(cells) + " |")
  proto = runs[0]["protocol"]
  lines += ["", f"Split {proto['split']!r}, {runs[0]['num_examples']} images of {proto['eval_size']}, windows "
            f"{proto['crop']}: diagonal offsets 0..{proto['max_offset']}, consistency offsets in "
            f"[0, {proto['max_offset']}), circular shifts in [-{proto['circular_max_shift']}, "
            f"{proto['circular_max_shift']}), adversary ({proto['adversarial_kind']}) up to "
            f"±{proto['adversarial_max_shift']}. Accuracies in %; class. var. = mean std of p(correct) over the "
            "diagonal offsets.", ""]
  skipped = {k: v for r in runs for k, v in r["skipped"].items()}
  if skipped:
    lines += ["Not computed: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()), ""]
  return "\n".join(lines)


def _mean_curve(group: list[dict[str, Any]], key: str, field: str) -> tuple[np.ndarray, np.ndarray]:
  x = np.asarray(group[0][key][field])
  y = np.mean([r[key]["accuracy"] for r in group], axis=0)
  return x, y


def plot_all(runs: list[dict[str, Any]], workdir: str) -> list[str]:
  """Writes the PNG plots; returns their paths."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  paths = []
  names = list(dict.fromkeys(r["name"] for r in runs))
  groups = {n: [r for r in runs if r["name"] == n] for n in names}

  def save(fig, filename):
    path = os.path.join(workdir, filename)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    paths.append(path)

  fig, ax = plt.subplots(figsize=(6, 4))
  for n, g in groups.items():
    if "diagonal" in g[0]:
      ax.plot(*_mean_curve(g, "diagonal", "offsets"), marker=".", label=n)
  ax.set(xlabel="diagonal offset (pixels)", ylabel="top-1 accuracy (%)", title="Accuracy vs diagonal shift")
  ax.legend(fontsize=7)
  save(fig, "diagonal_shift.png")

  fig, ax = plt.subplots(figsize=(6, 4))
  for n, g in groups.items():
    if "adversarial" in g[0]:
      ax.plot(*_mean_curve(g, "adversarial", "max_shift"), marker="o", label=n)
  ax.set(xlabel="maximum shift m (pixels)", ylabel="accuracy against a shift adversary (%)",
         title="Adversarial shift accuracy")
  ax.legend(fontsize=7)
  save(fig, "adversarial_shift.png")

  fig, ax = plt.subplots(figsize=(5, 4))
  for n, g in groups.items():
    c = [r.get("consistency", r["circular_consistency"]) for r in g]
    ax.scatter([r["accuracy"] for r in g], c, label=n)
  ax.set(xlabel="accuracy (%)", ylabel="consistency (%)", title="Consistency vs accuracy")
  ax.legend(fontsize=7)
  save(fig, "consistency_accuracy.png")

  fig, ax = plt.subplots(figsize=(7, 4))
  for n, g in groups.items():
    tv = g[0]["filter_tv"]
    ax.plot(range(len(tv)), list(tv.values()), marker=".", label=n)
  ax.set(xlabel="conv layer (network order)", ylabel="filter total variation", title="Filter smoothness")
  ax.legend(fontsize=7)
  save(fig, "filter_tv.png")

  for n, g in groups.items():
    eq = g[0]["equivariance"]
    if not eq:
      continue
    cols = len(eq)
    fig, axes = plt.subplots(1, cols, figsize=(2.2 * cols, 2.4), squeeze=False)
    for ax, (layer, grid) in zip(axes[0], eq.items()):
      im = ax.imshow(np.asarray(grid), cmap="viridis", vmin=0.0, vmax=max(1e-6, float(np.max(grid))))
      ax.set_title(f"{layer}\nmean {np.mean(grid):.3f}", fontsize=8)
      ax.set_xlabel("Δx", fontsize=7)
      ax.set_ylabel("Δy", fontsize=7)
      fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle(f"{n}: cosine distance of Shift(F(X)) and F(Shift(X))", fontsize=9)
    save(fig, "equivariance.png" if len(groups) == 1 else f"equivariance_{_safe(n)}.png")
  return paths


def _safe(name: str) -> str:
  return "".join(ch if ch.isalnum() or ch in "=-_." else "_" for ch in name)
