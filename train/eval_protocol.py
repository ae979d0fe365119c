"""The shift-robustness evaluation protocol: settings, data, restoring a run, and every metric of one run.

Importable without the command line (``train/eval.py``) or the report (``train/eval_report.py``); see
``train/eval.py`` for the metrics and the files written.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import re
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from configs import default as default_config
from jaxborders.ops import metrics as M
from jaxborders.ops import shifts as S
from train import config as config_lib
from train import data as data_lib


# Every ``config.eval.shift`` key with its default, as the schema (configs/default.py, where each is commented)
# defines them: a value of 0 / -1 / '' means "derive from the data".
def _shift_defaults() -> dict[str, Any]:
  """``config.eval.shift`` of the schema, keys in the order the schema sets them (ConfigDict sorts them)."""
  shift = default_config.get_config().eval.shift
  order = re.findall(r"config\.eval\.shift\.(\w+) =", inspect.getsource(default_config.get_config))
  return {k: shift[k] for k in order if k in shift} | {k: shift[k] for k in shift.keys() if k not in order}


SHIFT_DEFAULTS: dict[str, Any] = _shift_defaults()

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
              circular_max_shift=int(circular), subpixel_max_shift=float(settings["subpixel_max_shift"]), adversarial_max_shift=int(adv_crop if max_offset else (8 if adv < 0 else adv)),
              adversarial_kind="crop" if max_offset else "circular", eval_size=tuple(int(e) for e in eval_shape[:-1]))


def _spatial_shifts(values: Sequence[float], rank: int) -> np.ndarray:
  """(K,) real shifts of the last two spatial dims as float32 (K, rank) (time, in 3D, stays 0)."""
  out = np.zeros((len(values), rank), np.float32)
  out[:, -min(2, rank):] = np.asarray(values, np.float32)[:, None]
  return out


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
  from train import checkpointing

  directory = os.path.abspath(os.path.join(run_dir, "checkpoints"))
  if not os.path.isdir(directory):
    raise FileNotFoundError(f"no checkpoints in {directory}: train the run first (python -m train.main --config ... "
                            f"--workdir ...), then evaluate the same workdir.")
  step, tree, meta = checkpointing.restore_latest_readable(directory)  # trust: damaged newer steps are skipped
  variables = {"params": tree["best_params"]}
  if tree["state"].get("batch_stats"):
    variables["batch_stats"] = tree["state"]["batch_stats"]
  return variables, {**meta, "step": int(step)}


def has_checkpoint(run_dir: str) -> bool:
  """Whether ``run_dir`` holds at least one saved step (orbax step directories are named by the step)."""
  directory = os.path.join(run_dir, "checkpoints")
  return os.path.isdir(directory) and any(d.isdigit() for d in os.listdir(directory))


def build_model(config: ml_collections.ConfigDict) -> Any:
  from jaxborders.models import get_model
  return get_model(config.model.name, **config_lib.model_kwargs(config))


def _logits(model: Any, variables: Any, x: jax.Array) -> jax.Array:
  return model.apply(variables, x, train=False)


def _features(model: Any, names: tuple[str, ...], variables: Any, x: jax.Array) -> dict[str, jax.Array]:
  from jaxborders.models import intermediates
  feats = intermediates(model, variables, x)
  return {n: feats[n] for n in names}


def equivariant_layers(model: Any, variables: Any, input_shape: Sequence[int]) -> tuple[list[str], dict[str, str]]:
  """Intermediate names, in network order, whose maps have a circular equivariance (size = input / integer
  stride, or no space)."""
  from jaxborders.models import intermediates
  shapes = jax.eval_shape(lambda v, x: intermediates(model, v, x), variables,
                          jax.ShapeDtypeStruct(tuple(input_shape), jnp.float32))  # an OrderedDict: network order
  if not shapes:
    return [], {"*": f"{type(model).__name__} sows no intermediates"}
  spatial = input_shape[1:-1]
  keep, skipped = [], {}
  for name, s in shapes.items():
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
  _subpixel(out, apply, centred, labels_j, jax.random.fold_in(key, 2), rank, settings, batch_size)
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
  out["filter_tv"] = _in_layer_order(model, (1, *crop, images.shape[-1]),
                                     M.filter_total_variation(variables["params"], spatial_dims=rank))
  return out


def _subpixel(out: dict[str, Any], apply: Any, centred: jax.Array, labels: jax.Array, key: jax.Array, rank: int,
              settings: dict[str, Any], batch_size: int | None) -> None:
  """Sub-pixel (Fourier) shifts of the centre window: ``subpixel_consistency`` (percent) and ``subpixel_accuracy``
  ({"shifts", "accuracy", "mean"}, the layout of the diagonal curve), or the reason each was skipped."""
  max_shift = float(settings["subpixel_max_shift"])
  if max_shift > 0:
    out["subpixel_consistency"] = float(M.subpixel_consistency(apply, centred, key, max_shift, settings["passes"],
                                                               batch_size))
  else:
    out["skipped"]["subpixel_consistency"] = "eval.shift.subpixel_max_shift = 0"
  shifts = [float(s) for s in settings["subpixel_shifts"]]
  if shifts:
    per = M.fractional_shift_accuracy(apply, centred, labels, _spatial_shifts(shifts, rank), batch_size)
    out["subpixel_accuracy"] = {"shifts": shifts, "accuracy": per.tolist(), "mean": float(np.mean(per))}
  else:
    out["skipped"]["subpixel_accuracy"] = "eval.shift.subpixel_shifts is empty"


def _in_layer_order(model: Any, input_shape: Sequence[int], values: dict[str, Any]) -> dict[str, Any]:
  """``values`` keyed by parameter path, reordered to the order the network creates its layers."""
  from jaxborders.models import parameter_order
  order = {name: i for i, name in enumerate(parameter_order(model, input_shape))}
  return dict(sorted(values.items(), key=lambda kv: order.get(kv[0], len(order))))


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
