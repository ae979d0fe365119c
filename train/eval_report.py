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
  if metric == "subpixel_accuracy":
    return run["subpixel_accuracy"]["mean"] if "subpixel_accuracy" in run else None
  if metric == "adversarial":
    return run["adversarial"]["accuracy"][-1] if "adversarial" in run else None
  value = run.get(metric)
  return None if value is None else float(value)


TABLE_METRICS = (("accuracy", "accuracy"), ("consistency", "consistency"), ("circular_consistency", "circ. cons."),
                 ("subpixel_consistency", "sub-px cons."), ("diagonal", "diag. acc."),
                 ("subpixel_accuracy", "sub-px acc."), ("adversarial", "adv. acc. (max m)"),
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
            f"{proto['circular_max_shift']}), sub-pixel (Fourier) shifts in [-{proto.get('subpixel_max_shift', 0)}, "
            f"{proto.get('subpixel_max_shift', 0)}), adversary ({proto['adversarial_kind']}) up to "
            f"±{proto['adversarial_max_shift']}. Accuracies in %; class. var. = mean std of p(correct) over the "
            "diagonal offsets; sub-px acc. = mean accuracy over the diagonal sub-pixel shifts.", ""]
  skipped = {k: v for r in runs for k, v in r["skipped"].items()}
  if skipped:
    lines += ["Not computed: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()), ""]
  not_drawn = figures_not_drawn(runs)
  if not_drawn:
    lines += ["Figures not drawn: " + "; ".join(f"{k} ({v})" for k, v in not_drawn.items()), ""]
  return "\n".join(lines)


def _mean_curve(group: list[dict[str, Any]], key: str, field: str) -> tuple[np.ndarray, np.ndarray]:
  x = np.asarray(group[0][key][field])
  y = np.mean([r[key]["accuracy"] for r in group], axis=0)
  return x, y


_BLUR_KINDS = {"binomial": "bin", "triangle": "tri", "rectangle": "rect"}


def legend_label(overrides: dict[str, Any]) -> str:
  """A readable name of a sweep point for legends: ``same``, ``full + BlurPool bin-3``, ``circular + APS``.

  Example:
    >>> legend_label({'model.antialias': 'blur:binomial:3', 'model.conv_mode': 'full'})
    'full + BlurPool bin-3'
    >>> legend_label({'model.conv_mode': 'same', 'model.antialias': 'none'})
    'same'
  """
  parts, blur = [], []
  for key, value in overrides.items():
    name = key.split(".")[-1]
    if name in ("conv_mode", "name"):
      parts.insert(0, str(value))
    elif name == "antialias":
      spec = str(value).split(":")
      if spec[0] == "blur":
        kind, size = (spec[1], spec[2]) if len(spec) == 3 else ("triangle", "3")
        blur.append(f"BlurPool {_BLUR_KINDS.get(kind, kind)}-{size}")
      elif spec[0] == "aps":
        blur.append(" ".join(["APS", *spec[1:]]))
    else:
      parts.append(f"{name}={value}")
  return " + ".join(parts + blur) or "base"


def figures_not_drawn(runs: list[dict[str, Any]]) -> dict[str, str]:
  """``{png file: why}`` for the figures whose metric no run computed (they are not written)."""
  skipped = {k: v for r in runs for k, v in r.get("skipped", {}).items()}
  out = {}
  for filename, metric in (("diagonal_shift.png", "diagonal"), ("adversarial_shift.png", "adversarial"),
                           ("subpixel_shift.png", "subpixel_accuracy")):
    if not any(metric in r for r in runs):
      out[filename] = skipped.get(metric, f"{metric} was not computed")
  if not any(r.get("equivariance") for r in runs):
    out["equivariance*.png"] = skipped.get("equivariance", "no layer has circular equivariance to measure")
  return out


def _consistency_metric(runs: list[dict[str, Any]]) -> tuple[str, str]:
  """The consistency every run has: crop consistency (BlurPool), else circular consistency (APS)."""
  if all(r.get("consistency") is not None for r in runs):
    return "consistency", "consistency: two random crops (%)"
  return "circular_consistency", "circular consistency: two circular shifts (%)"


def plot_all(runs: list[dict[str, Any]], workdir: str) -> list[str]:
  """Writes the PNG plots whose metrics were computed (``figures_not_drawn`` lists the others); returns their paths."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  from matplotlib.ticker import MaxNLocator

  paths = []
  names = list(dict.fromkeys(r["name"] for r in runs))
  groups = {n: [r for r in runs if r["name"] == n] for n in names}
  labels = {n: legend_label(g[0].get("overrides", {})) if g[0].get("overrides") else n for n, g in groups.items()}
  not_drawn = figures_not_drawn(runs)

  def save(fig, filename):
    path = os.path.join(workdir, filename)
    if fig.get_layout_engine() is None:
      fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    paths.append(path)

  def curves(metric, field, xlabel, ylabel, title, marker, filename, integer=True):
    if filename in not_drawn:
      return
    fig, ax = plt.subplots(figsize=(6, 4))
    for n, g in groups.items():
      if metric in g[0]:
        ax.plot(*_mean_curve(g, metric, field), marker=marker, label=labels[n])
    ax.xaxis.set_major_locator(MaxNLocator(integer=integer))
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=7)
    save(fig, filename)

  curves("diagonal", "offsets", "diagonal offset (pixels)", "top-1 accuracy (%)", "Accuracy vs diagonal shift", ".",
         "diagonal_shift.png")
  curves("adversarial", "max_shift", "maximum shift m (pixels)", "accuracy against a shift adversary (%)",
         "Adversarial shift accuracy", "o", "adversarial_shift.png")
  curves("subpixel_accuracy", "shifts", "diagonal sub-pixel shift (pixels, Fourier)", "top-1 accuracy (%)",
         "Accuracy vs sub-pixel shift", "o", "subpixel_shift.png", integer=False)

  metric, axis_label = _consistency_metric(runs)
  fig, ax = plt.subplots(figsize=(5, 4))
  for n, g in groups.items():
    ax.scatter([r["accuracy"] for r in g], [r[metric] for r in g], label=labels[n])
  ax.set(xlabel="accuracy (%)", ylabel=axis_label, title=f"{axis_label.split(':')[0].capitalize()} vs accuracy")
  ax.legend(fontsize=7)
  save(fig, "consistency_accuracy.png")

  fig, ax = plt.subplots(figsize=(7, 4))
  for n, g in groups.items():
    tv = g[0]["filter_tv"]
    ax.plot(range(1, len(tv) + 1), list(tv.values()), marker=".", label=labels[n])
  ax.xaxis.set_major_locator(MaxNLocator(integer=True))
  ax.set(xlabel="conv layer (network order, 1 = first)", ylabel="filter total variation", title="Filter smoothness")
  ax.legend(fontsize=7)
  save(fig, "filter_tv.png")

  # One colour scale for every layer of every run (as BlurPool Fig. 4), so that maps can be compared.
  maps = [np.asarray(grid) for g in groups.values() for grid in g[0]["equivariance"].values()]
  vmax = max([1e-6] + [float(m.max()) for m in maps])
  for n, g in groups.items():
    eq = g[0]["equivariance"]
    if eq:
      save(_equivariance_figure(plt, MaxNLocator, eq, labels[n], vmax),
           "equivariance.png" if len(groups) == 1 else f"equivariance_{_safe(n)}.png")
  return paths


def _equivariance_figure(plt: Any, locator: Any, eq: dict[str, Any], label: str, vmax: float) -> Any:
  """Heat maps of one run, one panel per layer, on the shared colour scale ``[0, vmax]`` with one colour bar."""
  cols = len(eq)
  fig, axes = plt.subplots(1, cols, figsize=(1.9 * cols + 1.0, 2.6), squeeze=False, layout="constrained")
  for ax, (layer, grid) in zip(axes[0], eq.items()):
    grid = np.asarray(grid)
    im = ax.imshow(grid, cmap="viridis", vmin=0.0, vmax=vmax, origin="upper")
    ax.set_title(f"{layer}\nmean {np.mean(grid):.3f}", fontsize=7)
    ax.set_xlabel("Δx (px)", fontsize=7)
    ax.set_ylabel("Δy (px)", fontsize=7)
    ax.xaxis.set_major_locator(locator(integer=True))
    ax.yaxis.set_major_locator(locator(integer=True))
    ax.tick_params(labelsize=6)
  fig.suptitle(f"{label}: cosine distance of Shift(F(X)) and F(Shift(X))", fontsize=8)
  fig.colorbar(im, ax=list(axes[0]), fraction=0.03, pad=0.02)
  return fig


def _safe(name: str) -> str:
  return "".join(ch if ch.isalnum() or ch in "=-_." else "_" for ch in name)
