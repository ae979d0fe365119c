"""Shift-robustness evaluation of trained runs: ``python -m train.eval --config configs/X.py --workdir DIR``.

Restores the tested parameters of every run of the config (all sweep points × seeds, the trainer's layout:
``DIR`` itself for a single run, ``DIR/<sweep point>/seed_<s>/`` otherwise) from its orbax checkpoint and
computes on the evaluation split (docs/experiments.md, ``jaxborders.ops.metrics``):

============================  ==============================================================================
``accuracy``                  top-1 on the centre ``crop`` window of each evaluation image
``consistency``               same argmax for two ``crop`` windows at random offsets in [0, max_offset)
``circular_consistency``      same argmax for two rolls in [-m, m) of the centre window (APS paper)
``diagonal``                  accuracy of the window at (o, o) for o = 0..max_offset, and its mean (Table 2)
``adversarial``               correct at every shift within ±m of the centre window, per m (BlurPool Fig. 9)
``classification_variation``  std over the diagonal offsets of p(correct class) (BlurPool §4.2)
``equivariance``              per layer, cosine distance of Shift(F(X)) and F(Shift(X)) for circular shifts in
                              [0, m)² of the centre window (BlurPool Fig. 4); maps that grow (F-Conv, valid)
                              have no circular equivariance and are listed under ``skipped``
``filter_tv``                 normalised total variation of every conv kernel (BlurPool Fig. 7)
============================  ==============================================================================

The protocol follows from the data: ``crop`` is the training image size and ``max_offset`` the evaluation
images' extra size (ImageNet with ``data.eval_image_size=288``, ``eval_resize_size=288``: 224 windows at offsets
0..64, as the F-Conv paper; ``jaxborders.data.natural``: 32 in 40). Optional overrides live in
``config.eval.shift`` (``SHIFT_DEFAULTS`` lists every key; they need adding to ``configs/default.py`` before a
config may set them). Metrics that the data cannot support (no margin: no crop shifts) are listed under
``skipped`` with the reason.

Writes into ``DIR``: ``eval.json`` (everything, per run, plus the settings), ``eval.md`` (the F-Conv paper's
Table 2 layout — rows: architecture, columns: S / F / S+Blur / F+Blur — and a table of every metric), and PNG
plots: ``diagonal_shift.png`` (accuracy vs diagonal offset), ``adversarial_shift.png`` (BlurPool Fig. 9),
``consistency_accuracy.png`` (BlurPool Fig. 1/6 scatter), ``filter_tv.png`` (Fig. 7) and
``equivariance_<run>.png`` (Fig. 4 heat maps, one panel per layer).
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxborders.ops import metrics as M
from jaxborders.ops import shifts as S
from train import config as config_lib
from train import data as data_lib

# Every optional ``config.eval.shift`` key with its default (a value of 0 / -1 / '' means "derive from the data").
SHIFT_DEFAULTS: dict[str, Any] = dict(
    split="",  # evaluation split; '' = 'test' if the data source has one, else 'val'
    max_examples=0,  # evaluation images (0: the whole split)
    grid_examples=256,  # images for the per-shift grids (adversarial, classification variation); 0: all
    crop_size=0,  # network input side; 0: the training images' size
    max_offset=-1,  # crop shifts 0..max_offset; -1: evaluation image size - crop_size (0 disables crop shifts)
    diagonal_step=1,  # spacing of the diagonal offsets
    passes=5,  # consistency passes over the split (the papers: 5)
    circular_max_shift=0,  # rolls in [-m, m); 0: max_offset // 2 (APS: 32 on 224 images), or crop // 2 if no margin
    adversarial_max_shift=-1,  # m = 0..this; -1: min(max_offset // 2, 8) (crop) or 8 (circular)
    equivariance_max_shift=8,  # heat-map shifts [0, m)² (0 disables the heat maps)
    equivariance_examples=32,  # images for the heat maps
    batch_size=0,  # images per forward call; 0: eval.batch_size
    seed=0,  # random offsets of the consistency metrics
)

# Border-mode and anti-aliasing labels of the F-Conv paper's Table 2.
MODE_LABELS = {"same": "S", "full": "F", "valid": "V", "circular": "C", "reflect": "R", "replicate": "E"}


# ----------------------------------------------------------------------------------------------------------
# Settings and data.


def shift_settings(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """``SHIFT_DEFAULTS`` updated with ``config.eval.shift`` (when the schema has it); unknown keys fail."""
  settings = dict(SHIFT_DEFAULTS)
  given = config.eval.get("shift", None)
  if given is not None:
    unknown = sorted(set(given.keys()) - set(SHIFT_DEFAULTS))
    if unknown:
      raise ValueError(f"unknown eval.shift key(s) {', '.join(unknown)}; valid keys: {', '.join(SHIFT_DEFAULTS)}.")
    settings.update(dict(given))
  return settings


def eval_split_name(config: ml_collections.ConfigDict, settings: dict[str, Any]) -> str:
  source = data_lib.get_source(config.data.source)
  split = settings["split"] or ("test" if "test" in source.SPLITS else "val")
  if split not in source.SPLITS:
    raise ValueError(f"eval.shift.split={split!r} is not a split of data.source={config.data.source!r}; "
                     f"accepted values: {', '.join(source.SPLITS)}.")
  return split


def load_arrays(config: ml_collections.ConfigDict, split: str, max_examples: int = 0,
                batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
  """``(images, labels)`` of a split as numpy; a Stream is read batch by batch (padding dropped)."""
  data = data_lib.load_split(data_lib.source_config(config.data), split, int(config.seed))
  if not isinstance(data, data_lib.Stream):
    n = max_examples or len(data["label"])
    return data["image"][:n], data["label"][:n]
  images, labels, count = [], [], 0
  for batch in data.batches(0, batch_size, 0, 1):
    keep = np.asarray(batch.get("mask", np.ones(len(batch["label"]))), bool)
    images.append(np.asarray(batch["image"])[keep])
    labels.append(np.asarray(batch["label"])[keep])
    count += int(keep.sum())
    if max_examples and count >= max_examples:
      break
  images_np, labels_np = np.concatenate(images), np.concatenate(labels).astype(np.int32)
  n = max_examples or len(labels_np)
  return images_np[:n], labels_np[:n]


def train_image_shape(config: ml_collections.ConfigDict) -> tuple[int, ...]:
  """One training example's shape (*spatial, C) (streams report it without reading)."""
  data = data_lib.load_split(data_lib.source_config(config.data), "train", int(config.seed))
  return tuple(data.image_shape) if isinstance(data, data_lib.Stream) else tuple(data["image"].shape[1:])


def protocol(settings: dict[str, Any], train_shape: Sequence[int], eval_shape: Sequence[int]) -> dict[str, Any]:
  """The resolved protocol: crop window and shift ranges (spatial dims; in 3D the first one is time, unshifted).

  ``crop`` is per spatial dim; ``max_offset`` is the margin of the square spatial dims (the last two).
  """
  rank = len(eval_shape) - 1
  crop = list(train_shape[:-1])
  if settings["crop_size"]:
    crop[-2:] = [settings["crop_size"]] * min(2, rank)
  if any(c > e for c, e in zip(crop, eval_shape[:-1])):
    raise ValueError(f"crop {tuple(crop)} is larger than the evaluation images {tuple(eval_shape[:-1])}; set "
                     "eval.shift.crop_size or a larger evaluation image size.")
  margin = min(e - c for c, e in zip(crop[-2:], eval_shape[-3:-1])) if rank >= 2 else eval_shape[0] - crop[0]
  max_offset = margin if settings["max_offset"] < 0 else min(settings["max_offset"], margin)
  # APS: rolls in [-32, 32) on 224 images (= max_offset / 2 of the 288 protocol); no margin: half the crop.
  circular = settings["circular_max_shift"] or max(1, max_offset // 2 if max_offset else min(crop[-2:]) // 2)
  adv = settings["adversarial_max_shift"]
  adv_crop = max_offset // 2 if adv < 0 else min(adv, max_offset // 2)
  adv_crop = min(adv_crop, 8) if adv < 0 else adv_crop
  return dict(rank=rank, crop=tuple(int(c) for c in crop), max_offset=int(max_offset),
              circular_max_shift=int(circular), adversarial_max_shift=int(adv_crop if max_offset else (8 if adv < 0 else adv)),
              adversarial_kind="crop" if max_offset else "circular", eval_size=tuple(int(e) for e in eval_shape[:-1]))


def _spatial_offsets(values: np.ndarray, rank: int) -> np.ndarray:
  """(K,) shifts of the last two spatial dims as (K, rank) (time, in 3D, stays 0)."""
  out = np.zeros((len(values), rank), np.int32)
  out[:, -min(2, rank):] = np.asarray(values, np.int32)[:, None]
  return out


# ----------------------------------------------------------------------------------------------------------
# Restoring a run.


def restore_variables(run_dir: str) -> tuple[dict[str, Any], dict[str, Any]]:
  """The tested variables ``{'params', 'batch_stats'?}`` of a run and its checkpoint meta (latest step).

  The trainer checkpoints ``{'state': TrainState, 'best_params'}``; ``best_params`` are the tested parameters
  (the best ones under early stopping, else the final ones), tested with the final BatchNorm statistics, as
  the trainer does.
  """
  import orbax.checkpoint as ocp

  directory = os.path.abspath(os.path.join(run_dir, "checkpoints"))
  if not os.path.isdir(directory):
    raise FileNotFoundError(f"no checkpoints in {directory}: train the run first (python -m train.main --config ... "
                            f"--workdir ...), then evaluate the same workdir.")
  manager = ocp.CheckpointManager(directory, item_names=("state", "meta"))
  step = manager.latest_step()
  if step is None:
    raise FileNotFoundError(f"no finished checkpoint in {directory}.")
  out = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(), meta=ocp.args.JsonRestore()))
  manager.close()
  tree = out.state
  variables = {"params": tree["best_params"]}
  if tree["state"].get("batch_stats"):
    variables["batch_stats"] = tree["state"]["batch_stats"]
  return variables, {**dict(out.meta), "step": int(step)}


def has_checkpoint(run_dir: str) -> bool:
  """Whether ``run_dir`` holds at least one saved step (orbax step directories are named by the step)."""
  directory = os.path.join(run_dir, "checkpoints")
  return os.path.isdir(directory) and any(d.isdigit() for d in os.listdir(directory))


def build_model(config: ml_collections.ConfigDict) -> Any:
  from jaxborders.models import get_model
  return get_model(config.model.name, **config_lib.model_kwargs(config))


def _logits(model: Any, variables: Any, x: jax.Array) -> jax.Array:
  out = model.apply(variables, x, train=False)
  return out[0] if isinstance(out, tuple) else out


def _features(model: Any, names: tuple[str, ...], variables: Any, x: jax.Array) -> dict[str, jax.Array]:
  _, feats = model.apply(variables, x, train=False, return_features=True)
  return {n: feats[n] for n in names}


def equivariant_layers(model: Any, variables: Any, input_shape: Sequence[int]) -> tuple[list[str], dict[str, str]]:
  """Feature names whose maps have a circular equivariance (size = input / integer stride, or no space)."""
  if "return_features" not in inspect.signature(type(model).__call__).parameters:
    return [], {"*": f"{type(model).__name__} does not return named features"}
  shapes = jax.eval_shape(lambda v, x: model.apply(v, x, train=False, return_features=True)[1], variables,
                          jax.ShapeDtypeStruct(tuple(input_shape), jnp.float32))
  spatial = input_shape[1:-1]
  keep, skipped = [], {}
  # Network order (stem first, pre_logits last): eval_shape returns the dict with sorted keys.
  order = sorted(shapes, key=lambda n: (n != "stem", n == "pre_logits", n))
  for name in order:
    s = shapes[name]
    fs = s.shape[1:-1]
    if len(s.shape) == 2 or (len(fs) == len(spatial) and all(f and n % f == 0 for n, f in zip(spatial, fs))):
      keep.append(name)
    else:
      skipped[name] = f"map {tuple(fs)} does not divide the input {tuple(spatial)} (grown/cropped borders)"
  return keep, skipped


# ----------------------------------------------------------------------------------------------------------
# Metrics of one set of variables.


def evaluate_variables(model: Any, variables: Any, images: np.ndarray, labels: np.ndarray, proto: dict[str, Any],
                       settings: dict[str, Any], batch_size: int | None = None) -> dict[str, Any]:
  """Every metric of the module docstring for ``model`` with ``variables`` on ``images`` (N, *eval_size, C)."""
  rank, crop, m = proto["rank"], proto["crop"], proto["max_offset"]
  apply = jax.tree_util.Partial(functools.partial(_logits, model), variables)
  key = jax.random.key(int(settings["seed"]))
  images = jnp.asarray(images, jnp.float32)
  labels_j = jnp.asarray(labels, jnp.int32)
  centre = tuple((e - c) // 2 for e, c in zip(proto["eval_size"], crop))
  centred = S.crop_shift(images, centre, crop)
  grid_n = settings["grid_examples"] or len(labels)
  out: dict[str, Any] = {"num_examples": int(len(labels)), "skipped": {}}
  out["accuracy"] = float(M.accuracy(apply, centred, labels_j, batch_size))
  if m >= 1:
    max_off = [1] * rank
    max_off[-min(2, rank):] = [m] * min(2, rank)
    out["consistency"] = float(M.consistency(apply, images, key, crop, tuple(max_off), settings["passes"], batch_size))
    offsets = np.arange(0, m + 1, max(1, settings["diagonal_step"]))
    per, mean = M.diagonal_shift_accuracy(apply, images, labels_j, crop, _spatial_offsets(offsets, rank), batch_size)
    out["diagonal"] = {"offsets": offsets.tolist(), "accuracy": per.tolist(), "mean": float(mean)}
    out["classification_variation"] = float(M.classification_variation(
        apply, images[:grid_n], labels_j[:grid_n], crop, _spatial_offsets(offsets, rank), batch_size))
  else:
    reason = "evaluation images are not larger than the crop: no crop shifts (set a larger eval image size)"
    out["skipped"].update(consistency=reason, diagonal=reason, classification_variation=reason)
  out["circular_consistency"] = float(M.circular_consistency(apply, centred, jax.random.fold_in(key, 1),
                                                             proto["circular_max_shift"], settings["passes"],
                                                             batch_size))
  ms = list(range(proto["adversarial_max_shift"] + 1))
  adv_crop = crop if proto["adversarial_kind"] == "crop" else None
  adv_images = images[:grid_n] if adv_crop is not None else centred[:grid_n]
  if rank == 2 or adv_crop is None:
    adv = M.adversarial_shift_accuracy(apply, adv_images, labels_j[:grid_n], adv_crop, ms, batch_size)
    out["adversarial"] = {"kind": proto["adversarial_kind"], "max_shift": ms, "accuracy": adv.tolist()}
  else:
    out["skipped"]["adversarial"] = "crop-shift adversary is implemented for 2D images"
  out["equivariance"], out["equivariance_shape"] = {}, []
  em = int(settings["equivariance_max_shift"])
  if em > 0:
    sample = centred[: settings["equivariance_examples"] or len(labels)]
    names, skipped = equivariant_layers(model, variables, sample.shape)
    out["skipped"].update({f"equivariance/{k}": v for k, v in skipped.items()})
    if names:
      feats = jax.tree_util.Partial(functools.partial(_features, model, tuple(names)), variables)
      axis = np.arange(em, dtype=np.int32)
      grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
      shifts = np.zeros((len(grid), rank), np.int32)
      shifts[:, -2:] = grid
      dist = M.feature_equivariance_distance(feats, sample, shifts, batch_size)
      out["equivariance"] = {n: dist[n].reshape(em, em).tolist() for n in names}
      out["equivariance_shape"] = [em, em]
  out["filter_tv"] = M.filter_total_variation(variables["params"], spatial_dims=rank)
  return out


# ----------------------------------------------------------------------------------------------------------
# Runs of a config.


def variant_label(run_config: ml_collections.ConfigDict) -> str:
  """Table 2 column label: S / F (/ C / V ...) plus +Blur or +APS."""
  label = MODE_LABELS.get(run_config.model.get("conv_mode", "same"), str(run_config.model.get("conv_mode")))
  aa = run_config.model.get("antialias", None)
  aa = "none" if aa in (None, "none") else str(aa)
  if aa.startswith("blur"):
    label += "+Blur"
  elif aa.startswith("aps"):
    label += "+APS"
  return label


def row_label(run_config: ml_collections.ConfigDict, overrides: dict[str, Any]) -> str:
  """Table 2 row label: the architecture plus any sweep key other than the border mode / anti-aliasing."""
  extra = [f"{k.split('.')[-1]}={v}" for k, v in overrides.items()
           if k not in ("model.conv_mode", "model.antialias", "model.name")]
  return " ".join([run_config.model.name, *extra])


def evaluate_run(run_config: ml_collections.ConfigDict, run_dir: str, settings: dict[str, Any] | None = None,
                 data: tuple[np.ndarray, np.ndarray, dict[str, Any]] | None = None) -> dict[str, Any]:
  """Evaluates one trained run; writes ``<run_dir>/eval.json`` and returns its metrics."""
  settings = settings or shift_settings(run_config)
  t0 = time.time()
  if data is None:
    data = load_eval_data(run_config, settings)
  images, labels, proto = data
  variables, meta = restore_variables(run_dir)
  model = build_model(run_config)
  batch = settings["batch_size"] or run_config.eval.batch_size or None
  result = evaluate_variables(model, variables, images, labels, proto, settings, batch)
  result.update(step=meta["step"], wall_s=time.time() - t0, protocol=proto)
  with open(os.path.join(run_dir, "eval.json"), "w") as f:
    json.dump(result, f, indent=1)
  return result


def load_eval_data(config: ml_collections.ConfigDict, settings: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, dict]:
  split = eval_split_name(config, settings)
  batch = settings["batch_size"] or config.eval.batch_size or 256
  images, labels = load_arrays(config, split, settings["max_examples"], batch)
  proto = protocol(settings, train_image_shape(config), images.shape[1:])
  proto["split"] = split
  return images, labels, proto


def evaluate(config: ml_collections.ConfigDict, workdir: str, quiet: bool = False) -> dict[str, Any]:
  """Evaluates every run of ``config`` under ``workdir`` and writes eval.json / eval.md / PNGs there."""
  settings = shift_settings(config)
  # eval.shift is checked by shift_settings; the rest goes through the trainer's validation (until the schema in
  # configs/default.py lists eval.shift, the trainer itself would reject it).
  checked = ml_collections.ConfigDict(config.to_dict())
  if "shift" in checked.eval:
    del checked.eval["shift"]
  config_lib.validate(checked)
  specs = list(config_lib.iter_runs(config))
  single = len(specs) == 1
  t0 = time.time()
  runs, data_cache, missing = [], {}, []
  for overrides, seed, run_config in specs:
    run_dir = workdir if single else os.path.join(workdir, config_lib.run_name(overrides), f"seed_{seed}")
    if not has_checkpoint(run_dir):
      missing.append(run_dir)  # not trained (yet): evaluate the others, list it
      continue
    # Runs that differ only in the model share the evaluation data.
    data_key = json.dumps(run_config.data.to_dict(), sort_keys=True, default=str)
    if data_key not in data_cache:
      data_cache[data_key] = load_eval_data(run_config, settings)
    result = evaluate_run(run_config, run_dir, settings, data_cache[data_key])
    name = config_lib.run_name(overrides)
    runs.append({"name": name, "overrides": overrides, "seed": seed, "run_dir": run_dir,
                 "row": row_label(run_config, overrides), "variant": variant_label(run_config), **result})
    if not quiet:
      print(f"[{len(runs)}/{len(specs)} {name} seed {seed}] accuracy {result['accuracy']:.2f} "
            f"consistency {result.get('consistency', float('nan')):.2f} circular {result['circular_consistency']:.2f}"
            f" ({result['wall_s']:.1f} s)", flush=True)
  if not runs:
    raise FileNotFoundError(f"no checkpoints in {workdir} (looked for: {', '.join(missing)}): train the config first "
                            "(python -m train.main --config ... --workdir ...), then evaluate the same workdir.")
  if missing and not quiet:
    print(f"not trained yet, skipped: {', '.join(missing)}", flush=True)
  summary = {"runs": runs, "missing": missing, "settings": settings, "wall_s": time.time() - t0}
  with open(os.path.join(workdir, "eval.json"), "w") as f:
    json.dump(summary, f, indent=1)
  text = markdown(runs)
  with open(os.path.join(workdir, "eval.md"), "w") as f:
    f.write(text)
  plot_all(runs, workdir)
  return summary


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


# ----------------------------------------------------------------------------------------------------------
# Entry point.


def main(argv: list[str]) -> None:
  from absl import flags
  if len(argv) > 1:
    raise SystemExit(f"unexpected arguments: {argv[1:]}")
  config = flags.FLAGS.config
  workdir = flags.FLAGS.workdir
  try:
    summary = evaluate(config, workdir)
  except (ValueError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  except data_lib.DataMissingError as e:
    print(f"data missing: {e}", file=sys.stderr)
    sys.exit(4)
  print(markdown(summary["runs"]))
  print(f"eval wall time {summary['wall_s']:.1f} s; eval.json, eval.md and PNG plots in {workdir}")


if __name__ == "__main__":
  from absl import app, flags
  from ml_collections import config_flags
  config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).", lock_config=True)
  flags.DEFINE_string("workdir", None, "The workdir the config was trained in.")
  flags.mark_flags_as_required(["config", "workdir"])
  app.run(main)


__all__ = ["SHIFT_DEFAULTS", "shift_settings", "protocol", "restore_variables", "evaluate_variables", "evaluate_run",
           "evaluate", "markdown", "plot_all", "load_arrays", "variant_label", "row_label"]
