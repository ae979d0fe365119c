"""Report of the border and shift atlas (``configs/atlas.py``): one markdown page and four figures.

``report_bundle(workdir, parts, config)`` (called by ``train/bundle.py`` after every part trained) writes into
``workdir``:

* ``atlas.md``: location leakage per border mode (Red-Green similar / dissimilar accuracy beside the F-Conv
  paper's Table 1), position information per layer (trained vs random nets), the shift table (accuracy,
  crop / circular / sub-pixel consistency, diagonal-shift mean, FLOPs, training time per method × border)
  beside the published numbers that measure the same thing, and a statement, computed from the table, of where
  crop and circular shifts rank the methods differently;
* ``atlas.json``: every number of the page;
* ``atlas_leakage.png`` (bars per mode), ``atlas_position.png`` (Spearman per layer, one panel per mode),
  ``atlas_scatter.png`` (accuracy vs consistency, marker area ∝ FLOPs), ``atlas_shifts.png`` (consistency per
  shift type per method; diagonal-shift and sub-pixel accuracy curves).

Published numbers are quoted from the papers (citations beside them); they come from other data, networks and
training lengths, so only the direction of an effect is comparable, never the value.
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import ml_collections
import numpy as np

from train import config as config_lib
from train.reports import redgreen_table1

# BlurPool paper (Zhang, ICML 2019), ImageNet ResNet-18 trained from scratch: (accuracy, consistency) in %.
# Its Tri-3 filter [1, 2, 1] is our Bin-3 (the binomial and triangle 3-tap filters coincide).
PUBLISHED_BLURPOOL = {("none", "same"): (69.74, 85.11), ("blur:binomial:3", "same"): (71.69, 87.51),
                      ("blur:binomial:5", "same"): (71.38, 88.25)}
# F-Conv paper (Kayhan & van Gemert, CVPR 2020) Table 2, ImageNet-200 ResNet-18: (diagonal accuracy, consistency).
PUBLISHED_FCONV = {("none", "same"): (79.43, 86.43), ("none", "full"): (82.74, 88.38),
                   ("blur:binomial:3", "same"): (81.96, 88.32), ("blur:binomial:3", "full"): (83.95, 90.03)}
# APS paper (Chaman & Dokmanic, CVPR 2021): circular padding + APS is exactly invariant to circular shifts.
PUBLISHED_APS_CIRCULAR = {("aps", "circular"): 100.0}
CITE = {"fconv": "Kayhan & van Gemert, CVPR 2020", "blurpool": "Zhang, ICML 2019", "aps": "Chaman & Dokmanic, CVPR 2021",
        "islam": "Islam, Jia & Bruce, ICLR 2020"}
METHOD_LABELS = {"none": "strided", "blur:binomial:3": "BlurPool Bin-3", "blur:binomial:5": "BlurPool Bin-5",
                 "maxblur": "MaxBlurPool", "aps": "APS", "lps": "LPS", "adaptive": "adaptive AA", "afc": "alias-free",
                 "flc": "FLC"}
MARKERS = {"same": "o", "circular": "s", "full": "^"}  # border -> scatter marker (also the row order)
SHIFT_COLUMNS = (("accuracy", "accuracy"), ("consistency", "crop cons."), ("circular_consistency", "circ. cons."),
                 ("subpixel_consistency", "sub-pixel cons."), ("diagonal_mean", "diag. acc."))


def method_label(spec: str) -> str:
  return METHOD_LABELS.get(spec, spec)


def _mean(values: list[float]) -> float:
  vals = [v for v in values if v is not None and np.isfinite(v)]
  return float(np.mean(vals)) if vals else float("nan")


def _fmt(v: float | None, digits: int = 1) -> str:
  return "–" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


# ----------------------------------------------------------------------------------------------------------
# Location leakage (parts.leakage).


def part_run_dirs(part: ml_collections.ConfigDict, workdir: str) -> list[tuple[dict[str, Any], int, Any, str]]:
  """(overrides, seed, run config, run dir) of every run of a trainer config, the trainer's layout."""
  specs = list(config_lib.iter_runs(part))
  single = len(specs) == 1
  return [(o, s, c, workdir if single else os.path.join(workdir, config_lib.run_name(o), f"seed_{s}"))
          for o, s, c in specs]


def leakage_results(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
  """Per border mode: similar / dissimilar accuracy (%) of every seed, wall time, epochs (Table 1 layout)."""
  return redgreen_table1.collect(summary["runs"])


def leakage_markdown(res: dict[str, dict[str, Any]]) -> list[str]:
  lines = ["| border mode | seeds | similar | dissimilar | gap | similar / dissimilar (published) | s/run |",
           "|---|---|---|---|---|---|---|"]
  for mode, d in res.items():
    pub = redgreen_table1.PUBLISHED.get(mode)
    pub_t = f"{pub[0][0]:.1f} / {pub[1][0]:.1f}" if pub else "–"
    sim, dis = np.mean(d["similar"]), np.mean(d["dissimilar"])
    lines.append(f"| {mode} | {len(d['seeds'])} | {sim:.1f} ± {np.std(d['similar']):.1f} | "
                 f"{dis:.1f} ± {np.std(d['dissimilar']):.1f} | {sim - dis:.1f} | {pub_t} | {np.mean(d['wall_s']):.1f} |")
  leaky = [m for m, d in res.items() if np.mean(d["similar"]) - np.mean(d["dissimilar"]) > 20]
  lines += ["", f"Test accuracy in % (mean ± std over seeds); published: {CITE['fconv']}, Table 1 (10 seeds, "
            "val and similar test sets overlapping the training set in the reference code). Modes whose dissimilar "
            "accuracy falls more than 20 points below the similar one read absolute position: "
            f"{', '.join(leaky) if leaky else 'none'}."]
  return lines


# ----------------------------------------------------------------------------------------------------------
# Position information (probe on the leakage part's nets).


def position_results(workdir: str, config: ml_collections.ConfigDict) -> dict[str, dict[str, Any]]:
  """Per border mode: ``{"trained": {layer: {pattern: {spearman, mae}}}, "random": [...]}`` (the probe of
  ``jaxborders.position_information`` on the first seed's trained net and on ``probe.random_inits`` fresh ones)."""
  import jaxborders
  from jaxborders.models import get_model
  part, probe = config.parts.leakage, config.probe
  size = 32
  # i.i.d. uniform noise: every pixel distributed alike, so any position read out comes from the network
  images = jaxborders.position_free_images(jax.random.key(int(probe.seed)), int(probe.num_images), (size, size, 3))
  out: dict[str, dict[str, Any]] = {}
  for overrides, seed, run_config, run_dir in part_run_dirs(part, os.path.join(workdir, "leakage")):
    mode = overrides.get("model.conv_mode", run_config.model.conv_mode)
    if mode in out or not os.path.exists(os.path.join(run_dir, "params.msgpack")):
      continue
    from train.run import load_params
    model = get_model(run_config.model.name, **config_lib.model_kwargs(run_config))
    key = jax.random.key(int(probe.seed))
    kwargs = dict(key=key, steps=int(probe.steps), layers=tuple(probe.get("layers", ())) or None)
    trained = jaxborders.position_information(model, {"params": load_params(run_dir)}, images, **kwargs)
    random = []
    for i in range(int(probe.random_inits)):
      variables = model.init(jax.random.key(1000 + i), images[:1])
      random.append(jaxborders.position_information(model, variables, images, **kwargs))
    out[mode] = {"trained": trained, "random": random, "seed": seed}
    jax.clear_caches()  # free this net's compiled probes (XLA:CPU code maps count against vm.max_map_count)
  return out


def _patterns(pos: dict[str, dict[str, Any]]) -> list[str]:
  first = next(iter(pos.values()))["trained"]
  return list(next(iter(first.values())))


def _random_mean(random: list[dict[str, Any]], layer: str, pattern: str, measure: str) -> float:
  return _mean([r[layer][pattern][measure] for r in random if layer in r])


def position_markdown(pos: dict[str, dict[str, Any]]) -> list[str]:
  """Per mode and layer: Spearman correlation and MAE, averaged over the patterns, trained vs random."""
  if not pos:
    return ["(no trained Red-Green nets to probe)"]
  patterns = _patterns(pos)
  layers = list(next(iter(pos.values()))["trained"])
  head = "| border mode | " + " | ".join(layers) + " |"
  lines = [f"Spearman correlation (mean over the patterns {', '.join(patterns)}) of the probe's prediction with "
           "the true position map, trained / random net, per layer (MAE in atlas.json):", "", head,
           "|---|" + "---|" * len(layers)]
  for mode, d in pos.items():
    cells = []
    for layer in layers:
      if layer not in d["trained"]:
        cells.append("–")
        continue
      t = _mean([d["trained"][layer][p]["spearman"] for p in patterns])
      r = _mean([_random_mean(d["random"], layer, p, "spearman") for p in patterns])
      cells.append(f"{t:.2f} / {r:.2f}")
    lines.append(f"| {mode} | " + " | ".join(cells) + " |")
  deep = layers[-1]
  ranking = sorted(pos, key=lambda m: -_mean([pos[m]["trained"].get(deep, {}).get(p, {}).get("spearman", np.nan)
                                               for p in patterns]))
  lines += ["", f"At the deepest layer ({deep}) the trained nets rank, from most to least position information: "
            f"{', '.join(ranking)}."]
  score = {m: _mean([pos[m]["trained"].get(deep, {}).get(p, {}).get("spearman", np.nan) for p in patterns]) for m in pos}
  if "same" in score and "valid" in score:
    agree = score["same"] > score["valid"]
    lines[-1] += (f" {CITE['islam']} found that zero padding lets a network encode absolute position and that "
                  f"without padding far less is read out; here zero padding ('same', {score['same']:.2f}) vs no "
                  f"padding ('valid', {score['valid']:.2f}) at {deep}: "
                  f"{'the same direction' if agree else 'NOT the same direction'}.")
  return lines


# ----------------------------------------------------------------------------------------------------------
# Shift robustness (parts.shift).


def _model_flops(run_config: Any, input_shape: tuple[int, ...]) -> float | None:
  from jaxborders.models import get_model
  from jaxborders.models.summary import summarize
  model = get_model(run_config.model.name, **config_lib.model_kwargs(run_config))
  return summarize(model, input_shape)["flops"]


def shift_parts(config: ml_collections.ConfigDict) -> list[str]:
  """The bundle's shift-robustness parts: every part whose name starts with ``shift``."""
  return [name for name in config.parts if name.startswith("shift")]


def shift_results(workdir: str, config: ml_collections.ConfigDict, parts: dict[str, Any]) -> list[dict[str, Any]]:
  """One row per (method, border) of every shift part: seed means of train.eval's metrics
  (``<part>/eval.json``), FLOPs per example (XLA cost analysis of the eval forward pass, cached in
  ``atlas_flops.json``) and training time. Rows follow the order of ``METHOD_LABELS``, then the borders."""
  flops_path = os.path.join(workdir, "atlas_flops.json")
  flops_cache = json.load(open(flops_path)) if os.path.exists(flops_path) else {}
  rows: dict[tuple[str, str], dict[str, Any]] = {}
  for name in shift_parts(config):
    with open(os.path.join(workdir, name, "eval.json")) as f:
      evals = json.load(f)["runs"]
    trained = {(json.dumps(r["overrides"], sort_keys=True), r["seed"]): r for r in parts[name]["runs"]}
    for overrides, seed, run_config, _ in part_run_dirs(config.parts[name], os.path.join(workdir, name)):
      method = str(overrides.get("model.antialias", run_config.model.antialias))
      border = overrides.get("model.conv_mode", run_config.model.conv_mode)
      ev = [e for e in evals if e["overrides"] == overrides and e["seed"] == seed]
      if not ev:
        continue
      row = rows.setdefault((method, border), {"method": method, "border": border, "evals": [], "train": []})
      row["evals"].append(ev[0])
      row["train"].append(trained.get((json.dumps(overrides, sort_keys=True), seed), {}))
      key = f"{method}|{border}"
      if key not in flops_cache:
        flops_cache[key] = _model_flops(run_config, _input_shape(run_config))
        jax.clear_caches()
      row["flops"] = flops_cache[key]
  with open(flops_path, "w") as f:
    json.dump(flops_cache, f, indent=1)
  order = list(METHOD_LABELS)  # rows: methods in this order, then borders same, circular, full
  borders = list(MARKERS)
  keys = sorted(rows, key=lambda k: (order.index(k[0]) if k[0] in order else len(order),
                                     borders.index(k[1]) if k[1] in borders else len(borders), k[1]))
  return [_shift_row(rows[k]) for k in keys]


def _input_shape(run_config: Any) -> tuple[int, ...]:
  size = int(run_config.data.image_size)
  return (1, size, size, 1 if run_config.data.get("color", "gray") == "gray" else 3)


def missing_cells(rows: list[dict[str, Any]], config: ml_collections.ConfigDict) -> list[str]:
  """Every (method, border) of the grid the shift parts span that did not run, with the model's own reason."""
  from jaxborders.models import get_model
  from jaxborders.models.summary import summarize
  methods = list(dict.fromkeys(r["method"] for r in rows))
  borders = list(dict.fromkeys(r["border"] for r in rows))
  have = {(r["method"], r["border"]) for r in rows}
  part = config.parts[shift_parts(config)[0]]
  out = []
  for m in methods:
    for b in borders:
      if (m, b) in have:
        continue
      run_config = config_lib.apply_overrides(part, {"model.antialias": m, "model.conv_mode": b})
      try:
        summarize(get_model(run_config.model.name, **config_lib.model_kwargs(run_config)), _input_shape(run_config),
                  flops=False)
        reason = "not in the config's sweeps"
      except ValueError as e:
        reason = str(e)
      out.append(f"{method_label(m)} × {b}: {reason}")
  return out


def _shift_row(row: dict[str, Any]) -> dict[str, Any]:
  evals, train = row["evals"], row["train"]
  out = {"method": row["method"], "border": row["border"], "seeds": len(evals), "flops": row["flops"]}
  for key in ("accuracy", "consistency", "circular_consistency", "subpixel_consistency"):
    out[key] = _mean([e.get(key) for e in evals])
  out["diagonal_mean"] = _mean([e["diagonal"]["mean"] for e in evals if "diagonal" in e])
  if "diagonal" in evals[0]:
    out["diagonal"] = {"offsets": evals[0]["diagonal"]["offsets"],
                       "accuracy": np.mean([e["diagonal"]["accuracy"] for e in evals], axis=0).tolist()}
  sub = [e["subpixel_accuracy"] for e in evals if isinstance(e.get("subpixel_accuracy"), dict)]
  if sub:
    out["subpixel_accuracy"] = {"shifts": sub[0]["shifts"],
                                "accuracy": np.mean([d["accuracy"] for d in sub], axis=0).tolist()}
  out["train_s"] = _mean([t.get("train_wall_s") for t in train])
  out["epoch_s"] = _mean([t.get("epoch_s") for t in train])
  return out


def _published_cells(method: str, border: str) -> str:
  cells = []
  if (method, border) in PUBLISHED_BLURPOOL:
    a, c = PUBLISHED_BLURPOOL[(method, border)]
    cells.append(f"acc {a:.2f}, cons. {c:.2f} [BlurPool]")
  if (method, border) in PUBLISHED_FCONV:
    d, c = PUBLISHED_FCONV[(method, border)]
    cells.append(f"diag. {d:.2f}, cons. {c:.2f} [F-Conv]")
  if (method, border) in PUBLISHED_APS_CIRCULAR:
    cells.append(f"circ. cons. {PUBLISHED_APS_CIRCULAR[(method, border)]:.0f} [APS]")
  return "; ".join(cells) or "–"


def shift_markdown(rows: list[dict[str, Any]]) -> list[str]:
  lines = ["| method | border | seeds | " + " | ".join(t for _, t in SHIFT_COLUMNS) +
           " | MFLOPs | train s | published (ImageNet; see below) |",
           "|---|---|---|" + "---|" * len(SHIFT_COLUMNS) + "---|---|---|"]
  for r in rows:
    cells = [_fmt(r[k]) for k, _ in SHIFT_COLUMNS]
    mflops = _fmt(r["flops"] / 1e6, 2) if r["flops"] else "–"
    lines.append(f"| {method_label(r['method'])} | {r['border']} | {r['seeds']} | " + " | ".join(cells) +
                 f" | {mflops} | {_fmt(r['train_s'], 0)} | {_published_cells(r['method'], r['border'])} |")
  lines += ["", "All values in % (seed means). crop cons.: same prediction for two windows at random offsets; "
            "circ. cons.: two circular rolls of the centre window; sub-pixel cons.: fractional shifts made by "
            "band-limited (Fourier) interpolation; diag. acc.: mean accuracy over the diagonal offsets. "
            f"Published: [BlurPool] {CITE['blurpool']}, ImageNet ResNet-18 (its Tri-3 = our Bin-3); [F-Conv] "
            f"{CITE['fconv']}, Table 2, ImageNet-200 ResNet-18 (diagonal accuracy, consistency); [APS] "
            f"{CITE['aps']}: circular padding + APS + global pooling is exactly invariant to circular shifts. "
            "Those nets trained 90 epochs on ImageNet; ours a few epochs on 10 classes, so compare directions only."]
  return lines


def _kendall(a: list[float], b: list[float]) -> float:
  """Kendall's tau-a of two scores over the same items (ties count as neither concordant nor discordant)."""
  n, s = len(a), 0.0
  for i in range(n):
    for j in range(i + 1, n):
      s += np.sign(a[i] - a[j]) * np.sign(b[i] - b[j])
  return float(2 * s / (n * (n - 1))) if n > 1 else float("nan")


def _ranking(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
  return sorted([r for r in rows if np.isfinite(r[key])], key=lambda r: -r[key])


def crop_vs_circular(rows: list[dict[str, Any]]) -> list[str]:
  """Plain sentences, computed from the rows: per border, the method ranking under crop and circular shifts."""
  lines = []
  for border in dict.fromkeys(r["border"] for r in rows):
    group = [r for r in rows if r["border"] == border and np.isfinite(r["consistency"])]
    if len(group) < 2:
      continue
    crop, circ = _ranking(group, "consistency"), _ranking(group, "circular_consistency")
    tau = _kendall([r["consistency"] for r in group], [r["circular_consistency"] for r in group])
    top = lambda rs, k: ", ".join(f"{method_label(r['method'])} {r[k]:.1f}" for r in rs[:3])  # noqa: E731
    perfect = [method_label(r["method"]) for r in group if r["circular_consistency"] >= 99.995]
    text = (f"**{border}**: crop shifts rank {top(crop, 'consistency')} first; circular shifts rank "
            f"{top(circ, 'circular_consistency')} first (Kendall τ between the two rankings {tau:.2f}; "
            f"{'the same best method' if crop[0]['method'] == circ[0]['method'] else 'a different best method'}).")
    if perfect:
      worst_crop = min((r for r in group if method_label(r["method"]) in perfect), key=lambda r: r["consistency"])
      text += (f" 100% circular consistency: {', '.join(perfect)}; under crop shifts the same nets reach "
               f"{worst_crop['consistency']:.1f}% at worst ({method_label(worst_crop['method'])}).")
    sub = [r for r in group if np.isfinite(r["subpixel_consistency"])]
    if len(sub) > 1:
      best_sub = _ranking(sub, "subpixel_consistency")[0]
      text += (f" Under sub-pixel shifts the best is {method_label(best_sub['method'])} "
               f"({best_sub['subpixel_consistency']:.1f}%).")
    lines.append(text)
  if not lines:
    lines.append("(fewer than two methods per border: no ranking to compare)")
  gaps = sorted((r for r in rows if np.isfinite(r["consistency"]) and np.isfinite(r["circular_consistency"])),
                key=lambda r: -(r["circular_consistency"] - r["consistency"]))
  if gaps:
    top = ", ".join(f"{method_label(r['method'])} × {r['border']} ({r['circular_consistency']:.1f} vs "
                    f"{r['consistency']:.1f})" for r in gaps[:3])
    over = sum(r["circular_consistency"] > r["consistency"] for r in gaps)
    lines.append(f"Circular consistency exceeds crop consistency for {over} of {len(gaps)} method × border "
                 f"combinations; the largest gaps (circular vs crop): {top}.")
  return lines


# ----------------------------------------------------------------------------------------------------------
# Figures.


def _plt():
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def plot_position(pos: dict[str, dict[str, Any]], path: str) -> None:
  plt = _plt()
  modes = list(pos)
  patterns = _patterns(pos)
  cols = min(4, len(modes))
  rows_n = -(-len(modes) // cols)
  fig, axes = plt.subplots(rows_n, cols, figsize=(max(3.2 * cols, 9.0), 2.8 * rows_n + 0.8), squeeze=False,
                           sharey=True)
  colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  for ax, mode in zip(axes.flat, modes):
    layers = list(pos[mode]["trained"])
    x = np.arange(len(layers))
    for i, p in enumerate(patterns):
      c = colors[i % len(colors)]
      ax.plot(x, [pos[mode]["trained"][layer][p]["spearman"] for layer in layers], "-o", color=c, ms=3,
              label=f"{p} trained")
      ax.plot(x, [_random_mean(pos[mode]["random"], layer, p, "spearman") for layer in layers], "--", color=c,
              label=f"{p} random")
    ax.set_xticks(x, layers, rotation=30, fontsize=7)
    ax.set_title(mode, fontsize=9)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_ylim(top=1.05)  # Spearman's ρ: 1 = position read perfectly, 0 = none (negative: noise of the fit)
  for ax in axes.flat[len(modes):]:
    ax.axis("off")
  for ax in axes[:, 0]:
    ax.set_ylabel("Spearman ρ")
  handles, labels = axes[0, 0].get_legend_handles_labels()
  fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=min(6, len(labels)))
  fig.suptitle("Position information per layer (probe on noise images): trained (solid) vs random init (dashed)",
               fontsize=10)
  fig.tight_layout(rect=(0, 0.08, 1, 0.95))
  fig.savefig(path, dpi=100)
  plt.close(fig)


def plot_scatter(rows: list[dict[str, Any]], path: str) -> None:
  plt = _plt()
  methods = list(dict.fromkeys(r["method"] for r in rows))
  colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  flops = np.array([r["flops"] or 0 for r in rows], np.float64)
  scale = 400.0 / max(flops.max(), 1.0)
  fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharey=True)
  for ax, (key, title) in zip(axes, (("consistency", "crop shifts"), ("circular_consistency", "circular shifts"))):
    for r, f in zip(rows, flops):
      c = colors[methods.index(r["method"]) % len(colors)]
      ax.scatter(r[key], r["accuracy"], s=max(f * scale, 8), marker=MARKERS.get(r["border"], "D"), color=c,
                 alpha=0.7, edgecolors="k", linewidths=0.5)
    ax.set(xlabel=f"consistency under {title} (%)", title=f"Accuracy vs consistency, {title}")
    ax.grid(alpha=0.3)
  axes[0].set_ylabel("accuracy (centre crop, %)")
  from matplotlib.lines import Line2D
  handles = [Line2D([], [], marker="o", ls="", color=colors[i % len(colors)], label=method_label(m))
             for i, m in enumerate(methods)]
  handles += [Line2D([], [], marker=MARKERS.get(b, "D"), ls="", color="grey", label=f"border {b}")
              for b in dict.fromkeys(r["border"] for r in rows)]
  fig.legend(handles=handles, fontsize=7, loc="center right")
  fig.suptitle("Marker area ∝ FLOPs per image (XLA cost analysis)", fontsize=9)
  fig.tight_layout(rect=(0, 0, 0.87, 0.95))
  fig.savefig(path, dpi=100)
  plt.close(fig)


def plot_shifts(rows: list[dict[str, Any]], path: str) -> None:
  """Top: consistency per shift type (crop, circular, sub-pixel), x = method, one line per border. Bottom:
  diagonal-shift accuracy and sub-pixel accuracy curves, one line per method and border."""
  plt = _plt()
  methods = list(dict.fromkeys(r["method"] for r in rows))
  borders = list(dict.fromkeys(r["border"] for r in rows))
  colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  fig, axes = plt.subplots(2, 3, figsize=(14, 8))
  x = np.arange(len(methods))
  for ax, (key, title) in zip(axes[0], (("consistency", "crop shifts"), ("circular_consistency", "circular shifts"),
                                        ("subpixel_consistency", "sub-pixel shifts"))):
    for b in borders:
      by = {r["method"]: r[key] for r in rows if r["border"] == b}
      ax.plot(x, [by.get(m, np.nan) for m in methods], marker=MARKERS.get(b, "D"), label=f"border {b}")
    ax.set_xticks(x, [method_label(m) for m in methods], rotation=35, ha="right", fontsize=7)
    ax.set(ylabel="consistency (%)", title=f"Consistency, {title}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  styles = {b: ls for b, ls in zip(borders, ("-", "--", ":", "-."))}
  for r in rows:
    c = colors[methods.index(r["method"]) % len(colors)]
    label = f"{method_label(r['method'])}, {r['border']}"
    if "diagonal" in r:
      axes[1, 0].plot(r["diagonal"]["offsets"], r["diagonal"]["accuracy"], styles[r["border"]], color=c, label=label)
    if "subpixel_accuracy" in r:
      s = r["subpixel_accuracy"]
      axes[1, 1].plot(s["shifts"], s["accuracy"], styles[r["border"]], marker=".", color=c, label=label)
  axes[1, 0].set(xlabel="diagonal offset (pixels)", ylabel="accuracy (%)", title="Accuracy vs diagonal crop shift")
  axes[1, 1].set(xlabel="fractional shift (pixels)", ylabel="accuracy (%)", title="Accuracy vs sub-pixel shift")
  handles, labels = axes[1, 0].get_legend_handles_labels()
  axes[1, 2].axis("off")
  axes[1, 2].legend(handles, labels, fontsize=6, ncol=2, loc="center", title="method, border (line style)")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


# ----------------------------------------------------------------------------------------------------------
# The page.


def report_bundle(workdir: str, parts: dict[str, dict[str, Any]], config: ml_collections.ConfigDict,
                  wall_s: float | None = None, part_wall_s: dict[str, float] | None = None) -> str:
  """Writes ``atlas.md``, ``atlas.json`` and the ``atlas_*.png`` figures into ``workdir``; returns the markdown."""
  leak = leakage_results(parts["leakage"])
  pos = position_results(workdir, config)
  rows = shift_results(workdir, config, parts)
  missing = missing_cells(rows, config)
  modes = list(leak)
  n_seeds = len(next(iter(leak.values()))["seeds"])
  redgreen_table1._plot(leak, modes, os.path.join(workdir, "atlas_leakage.png"), n_seeds)  # pylint: disable=protected-access
  if pos:
    plot_position(pos, os.path.join(workdir, "atlas_position.png"))
  plot_scatter(rows, os.path.join(workdir, "atlas_scatter.png"))
  plot_shifts(rows, os.path.join(workdir, "atlas_shifts.png"))
  shift_part = config.parts[shift_parts(config)[0]]
  fig = lambda name: os.path.join(os.path.abspath(workdir), name)  # noqa: E731  (docs/_ext/run_reports.py shows them)
  timing = ""
  if part_wall_s:
    timing = ("Wall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in part_wall_s.items()) +
              (f"; {wall_s:.0f} s for the parts' training and evaluation (the position probe and this report come after; "
               f"bundle_summary.json records the whole command's time)." if wall_s else "."))
  lines = ["# The border and shift atlas", "",
           "One command (`python -m train.main --config configs/atlas.py`), every border mode and downsampling "
           "method on the same CPU tasks. " + timing, "",
           "## Location leakage (Red-Green)", "", f"Figure: {fig('atlas_leakage.png')}", "", *leakage_markdown(leak), "",
           "## Position information per layer", "",
           f"A read-out trained on the frozen features of each layer predicts position maps from "
           f"{int(config.probe.num_images)} i.i.d. noise images ({int(config.probe.steps)} steps; the measures of "
           f"{CITE['islam']}: Spearman correlation and MAE).", "",
           *([f"Figure: {fig('atlas_position.png')}", ""] if pos else []), *position_markdown(pos), "",
           "## Shift robustness", "",
           f"{shift_part.model.name} (width {shift_part.model.get('width', '–')}) on {shift_part.data.image_size}×{shift_part.data.image_size} "
           f"crops of {len(shift_part.data.get('images', ())) or 10} natural images, {shift_part.num_epochs} epochs, "
           f"{shift_part.data.train_per_class} training crops per class.", "",
           f"Figures: {fig('atlas_scatter.png')} (accuracy vs consistency, marker area ∝ FLOPs) and "
           f"{fig('atlas_shifts.png')} (consistency per shift type; diagonal and sub-pixel accuracy curves).", "", *shift_markdown(rows), "",
           *(["Not run: " + "; ".join(missing) + ".", ""] if missing else []),
           "## Crop vs circular shifts", "", *crop_vs_circular(rows), ""]
  text = "\n".join(lines)
  with open(os.path.join(workdir, "atlas.md"), "w") as f:
    f.write(text)
  with open(os.path.join(workdir, "atlas.json"), "w") as f:
    json.dump({"leakage": leak, "position": pos, "shift": rows, "not_run": missing, "wall_s": wall_s, "part_wall_s": part_wall_s}, f,
              indent=1, default=float)
  return text


__all__ = ["report_bundle", "leakage_results", "position_results", "shift_results", "crop_vs_circular",
           "method_label"]
