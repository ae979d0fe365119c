"""Report of ``configs/redgreen_table1.py``: Table 1 of the F-Conv paper, ours beside the published numbers.

Writes ``table1.md`` and ``table1.png`` (bar plot) into the workdir and returns the markdown.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

MODES = ("valid", "same", "circular", "full")
LABELS = {"valid": "valid (V-Conv)", "same": "same-zero (S-Conv)", "circular": "same-circular", "full": "full-zero (F-Conv)"}
# docs/experiments.md: published Table 1 (mean ± std over 10 seeds), similar / dissimilar test accuracy in %.
PUBLISHED = {"valid": ((100.0, 0.0), (0.2, 0.1)), "same": ((99.8, 0.1), (8.4, 0.7)),
             "circular": ((73.7, 1.0), (73.7, 1.0)), "full": ((89.7, 0.5), (89.7, 0.5))}
# docs/experiments.md: the reference script with independent draws (2 seeds).
REFERENCE_INDEPENDENT = {"valid": (100.0, 0.6), "same": (99.3, 5.2), "circular": (61.9, 61.9), "full": (85.6, 85.6)}


def collect(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
  """Per mode: accuracies (%) of every seed, wall time and epochs."""
  out: dict[str, dict[str, Any]] = {}
  for r in runs:
    mode = r["overrides"].get("model.conv_mode")
    d = out.setdefault(mode, {"similar": [], "dissimilar": [], "wall_s": [], "epochs": [], "seeds": []})
    d["similar"].append(100.0 * r["metrics"]["test_similar/accuracy"])
    d["dissimilar"].append(100.0 * r["metrics"]["test_dissimilar/accuracy"])
    d["wall_s"].append(r["wall_s"])
    d["epochs"].append(r["epochs"])
    d["seeds"].append(r["seed"])
  return out


def _ms(values: list[float]) -> str:
  a = np.asarray(values)
  return f"{a.mean():.1f} ± {a.std():.1f}"


def pattern_checks(res: dict[str, dict[str, Any]]) -> dict[str, bool]:
  """The paper's qualitative finding, as checks on our means."""
  m = {k: (np.mean(v["similar"]), np.mean(v["dissimilar"])) for k, v in res.items()}
  checks = {}
  for k in ("valid", "same"):
    if k in m:
      checks[f"{k}: dissimilar far below similar"] = m[k][1] < m[k][0] - 50
  for k in ("circular", "full"):
    if k in m:
      checks[f"{k}: similar ≈ dissimilar"] = abs(m[k][0] - m[k][1]) < 5
  if "full" in m and "circular" in m:
    checks["full > circular"] = m["full"][0] > m["circular"][0]
  return checks


def report(workdir: str, runs: list[dict[str, Any]], config: Any, wall_s: float | None = None,
           workers: int = 1) -> str:
  """Writes table1.md / table1.png. ``wall_s``: elapsed time of the whole sweep; ``workers``: runs at once."""
  res = collect(runs)
  modes = [k for k in MODES if k in res] + [k for k in res if k not in MODES]
  n_seeds = len(next(iter(res.values()))["seeds"])
  leaky = bool(config.data.get("leaky_splits", False))
  lines = [f"## Red-Green, Table 1 — ours ({n_seeds} seed{'s' if n_seeds > 1 else ''} per mode"
           f"{', leaky splits as the reference' if leaky else ', independent train/val/test draws'}) vs published",
           "",
           "| conv | similar (ours) | dissimilar (ours) | similar (paper) | dissimilar (paper) | reference code, independent draws | epochs | s/run |",
           "|---|---|---|---|---|---|---|---|"]
  for k in modes:
    d = res[k]
    pub = PUBLISHED.get(k)
    pub_s = f"{pub[0][0]:.1f} ± {pub[0][1]:.1f}" if pub else "-"
    pub_d = f"{pub[1][0]:.1f} ± {pub[1][1]:.1f}" if pub else "-"
    ref = REFERENCE_INDEPENDENT.get(k)
    ref_t = f"{ref[0]:.1f} / {ref[1]:.1f}" if ref else "-"
    lines.append(f"| {LABELS.get(k, k)} | {_ms(d['similar'])} | {_ms(d['dissimilar'])} | {pub_s} | {pub_d} | {ref_t} | "
                 f"{np.mean(d['epochs']):.1f} | {np.mean(d['wall_s']):.1f} |")
  checks = pattern_checks(res)
  lines += ["", "Accuracy in % (mean ± std over seeds; std over runs as the reference computes it). Paper: 10 seeds.",
            "", "Pattern of the paper: " + "; ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in checks.items()) + ".", ""]
  if leaky:
    lines.append("These runs use the reference's leaky splits (val and the similar test set are copies of the first "
                 "1000 training images), so early stopping selects on test data, as in the published numbers.")
  else:
    found = all(checks.values())
    lines.append(
        "Where ours differ from the paper: we draw train, val and test independently, whereas the reference generator "
        "re-seeds its RNG in every call so its val and similar test sets are copies of the first 1000 training images; "
        "the published early stopping therefore selected on (copies of) the test set. With honest splits the "
        "position-independent nets (circular, full), which must learn the relative order of the boxes rather than "
        "their absolute position, are expected to score lower than published, as the reference code itself does "
        "with independent draws (column 6). "
        + ("Our runs show the paper's pattern." if found else
           "Our runs do NOT show every part of the paper's pattern (see the checks above); with few seeds or "
           "shortened training this is expected, otherwise investigate.")
        + (f" With {n_seeds} seed{'s' if n_seeds > 1 else ''} instead of 10 the ± are rough; run "
           "--config.seeds=\"(0,1,2,3,4,5,6,7,8,9)\" for the full protocol." if n_seeds < 10 else ""))
  num_runs = sum(len(d["seeds"]) for d in res.values())
  per_run = ", ".join(f"{k} {np.mean(res[k]['wall_s']):.1f} s" for k in modes)
  if wall_s is None:
    lines += ["", f"Time per run: {per_run}."]
  else:
    at_once = f", {workers} at a time (one single-threaded process per core)" if workers > 1 else ""
    lines += ["", f"Wall time: {wall_s:.0f} s for {num_runs} runs{at_once}; per run: {per_run}."]
  text = "\n".join(lines) + "\n"
  with open(os.path.join(workdir, "table1.md"), "w") as f:
    f.write(text)
  _plot(res, modes, os.path.join(workdir, "table1.png"), n_seeds)
  return text


def _plot(res: dict[str, dict[str, Any]], modes: list[str], path: str, n_seeds: int) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  x = np.arange(len(modes))
  w = 0.2
  fig, ax = plt.subplots(figsize=(max(7.0, 1.1 * len(modes)), 3.8))
  for i, (name, key, color) in enumerate((("similar (ours)", "similar", "tab:green"),
                                          ("dissimilar (ours)", "dissimilar", "tab:red"))):
    means = [np.mean(res[k][key]) for k in modes]
    stds = [np.std(res[k][key]) for k in modes]
    ax.bar(x + (i - 1.5) * w, means, w, yerr=stds, label=name, color=color, capsize=3)
  for i, (name, idx, color) in enumerate((("similar (paper)", 0, "#a1d99b"), ("dissimilar (paper)", 1, "#fc9272"))):
    means = [PUBLISHED[k][idx][0] if k in PUBLISHED else 0 for k in modes]
    stds = [PUBLISHED[k][idx][1] if k in PUBLISHED else 0 for k in modes]
    ax.bar(x + (i + 0.5) * w, means, w, yerr=stds, label=name, color=color, capsize=3, hatch="//")
  ax.set_xticks(x, [LABELS.get(k, k).replace(" (", "\n(") for k in modes], fontsize=8)  # two lines: no overlap
  ax.set_ylabel("test accuracy (%)")
  ax.set_ylim(0, 105)
  seeds = f"{n_seeds} seed" + ("" if n_seeds == 1 else "s")
  ax.set_title(f"Red-Green (F-Conv paper Table 1): ours ({seeds}) vs published (10 seeds)", fontsize=9)
  ax.legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.2))
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
