"""Config validation: every key must exist in the schema (``configs/default.py``); values are checked early.

``validate(config)`` runs before anything is built or allocated, so a typo or an unsupported value fails
at start with a message naming the key and listing what is accepted.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import itertools
import math
from collections.abc import Iterator, Sequence
from typing import Any

import ml_collections
import numpy as np

from configs import default as default_config
from train import data as data_lib

OPTIMIZERS = ("sgd", "adadelta", "adamw")
SCHEDULES = ("constant", "step", "cosine", "plateau")
DTYPES = ("float32", "bfloat16")
MODES = ("min", "max")
METRICS = ("loss", "accuracy")
OPEN_SECTIONS = ("model", "data")  # their extra keys are checked against the model / the data source
FREE_SECTIONS = ("sweep",)  # mirrors the rest of the tree


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
  """Dotted key -> leaf value of a (nested) ConfigDict or dict."""
  out = {}
  items = config.items() if hasattr(config, "items") else []
  for key, value in items:
    path = f"{prefix}{key}"
    if isinstance(value, (ml_collections.ConfigDict, dict)) and len(value):
      out.update(flatten(value, path + "."))
    elif isinstance(value, (ml_collections.ConfigDict, dict)):
      out[path] = {}
    else:
      out[path] = value
  return out


def _unknown(kind: str, keys: Sequence[str], valid: Sequence[str]) -> ValueError:
  return ValueError(f"unknown {kind} key(s) {', '.join(map(repr, keys))}; valid keys: {', '.join(sorted(valid))}.")


def model_kwargs_names(name: str) -> list[str]:
  """Constructor kwargs a registered model accepts."""
  from jaxborders.models import get_model, list_models  # noqa: F401  (imports register the families)
  from jaxborders.models import registry

  if name not in registry._REGISTRY:  # pylint: disable=protected-access
    raise ValueError(f"model.name={name!r} is not registered; accepted values: {', '.join(list_models())}.")
  return list(inspect.signature(registry._REGISTRY[name]).parameters)  # pylint: disable=protected-access


def schema_keys() -> dict[str, Any]:
  """Dotted keys of the default schema (the model/data sections' own keys are listed there too)."""
  return flatten(default_config.get_config())


def check_keys(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming unknown keys (and listing valid ones) anywhere in ``config``."""
  valid = schema_keys()
  flat = flatten(config)
  fixed = [k for k in flat if k.split(".")[0] not in OPEN_SECTIONS + FREE_SECTIONS]
  unknown = [k for k in fixed if k not in valid]
  if unknown:
    raise _unknown("config", unknown, [k for k in valid if k.split(".")[0] not in OPEN_SECTIONS + FREE_SECTIONS]
                   + [f"{s}.*" for s in OPEN_SECTIONS] + ["sweep.<any key>"])
  model_valid = ["name", "pretrained"] + model_kwargs_names(config.model.name)
  bad = [f"model.{k}" for k in config.model.keys() if k not in model_valid]
  if bad:
    raise _unknown("model", bad, [f"model.{k}" for k in model_valid])
  source = data_lib.get_source(config.data.source)
  data_valid = ["source", "shuffle"] + list(source.DEFAULTS)
  bad = [f"data.{k}" for k in config.data.keys() if k not in data_valid]
  if bad:
    raise _unknown("data", bad, [f"data.{k}" for k in data_valid])


def check_override_paths(config: ml_collections.ConfigDict, paths: Sequence[str]) -> None:
  """Command-line ``--config.a.b=`` paths must exist in ``config`` (a clearer error than config_flags')."""
  flat = flatten(config)
  prefixes = {".".join(k.split(".")[:i]) for k in flat for i in range(1, k.count(".") + 2)}
  bad = [p for p in paths if p not in prefixes]
  if bad:
    hint = ""
    if any(p.split(".")[0] in OPEN_SECTIONS for p in bad):
      hint = (f" (model kwargs of {config.model.name!r}: {', '.join(model_kwargs_names(config.model.name))}; "
              f"add a model/data key to the config file before overriding it)")
    raise ValueError(f"unknown command-line config key(s) {', '.join(map(repr, bad))}; valid keys: "
                     f"{', '.join(sorted(flat))}{hint}.")


def _choice(key: str, value: Any, choices: Sequence[Any]) -> None:
  if value not in choices:
    raise ValueError(f"{key}={value!r} is not supported; accepted values: {', '.join(map(repr, choices))}.")


def sweep_points(config: ml_collections.ConfigDict) -> list[dict[str, Any]]:
  """The grid of ``config.sweep``: a list of {dotted key: value} (one empty dict when there is no sweep)."""
  leaves = flatten(config.sweep)
  leaves = {k: v for k, v in leaves.items() if v != {}}
  for key, values in leaves.items():
    if not isinstance(values, (tuple, list)) or not values:
      raise ValueError(f"sweep.{key} must be a non-empty tuple of values, got {values!r}.")
  keys = list(leaves)
  return [dict(zip(keys, combo)) for combo in itertools.product(*(leaves[k] for k in keys))]


def apply_overrides(config: ml_collections.ConfigDict, overrides: dict[str, Any]) -> ml_collections.ConfigDict:
  """A copy of ``config`` with dotted-key overrides applied (sweep emptied)."""
  config = ml_collections.ConfigDict(config.to_dict())
  for key, value in overrides.items():
    *parents, leaf = key.split(".")
    node = config
    for p in parents:
      node = node[p]
    node[leaf] = value
  config.sweep = ml_collections.ConfigDict()
  return config


def _is_int(value: Any) -> bool:
  return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def seeds_of(config: ml_collections.ConfigDict) -> list[int]:
  """The run seeds: ``seeds`` when non-empty, else ``(seed,)``; a non-integer seed is refused (never truncated)."""
  seeds = config.seeds
  seeds = [seeds] if not isinstance(seeds, (tuple, list)) else list(seeds)
  if not seeds:
    seeds = [config.seed]
  bad = [s for s in seeds if not _is_int(s) or s < 0]
  if bad:
    key = "seeds" if len(config.seeds) else "seed"
    raise ValueError(f"{key} must be integers >= 0 (a tuple of them for 'seeds'), got {config[key]!r}.")
  return [int(s) for s in seeds]


def validate(config: ml_collections.ConfigDict) -> None:
  """Checks keys and values of ``config`` and of every sweep point; raises ValueError on the first problem."""
  check_keys(config)
  points = sweep_points(config)
  valid = schema_keys()
  for key in points[0] if points else {}:
    if key.split(".")[0] not in OPEN_SECTIONS and key not in valid:
      raise _unknown("sweep", [f"sweep.{key}"], [f"sweep.{k}" for k in valid if not k.startswith("sweep")])
  for point in points:
    _validate_values(apply_overrides(config, point))
  seeds = seeds_of(config)
  if len(set(seeds)) != len(seeds):
    raise ValueError(f"seeds must be distinct, got {tuple(seeds)}.")


def _require(key: str, value: Any, ok: bool, accepted: str) -> None:
  if not ok:
    raise ValueError(f"{key}={value!r} is not accepted; accepted values: {accepted}.")


def _int_at_least(c: ml_collections.ConfigDict, key: str, low: int, meaning: str = "") -> None:
  value = c[key] if "." not in key else _get(c, key)
  _require(key, value, _is_int(value) and value >= low, f"an integer >= {low}{meaning}")


def _finite(c: ml_collections.ConfigDict, key: str, low: float, strict: bool = False) -> None:
  value = _get(c, key)
  ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and math.isfinite(value) and (
      value > low if strict else value >= low)
  _require(key, value, ok, f"a finite number {'>' if strict else '>='} {low}")


def _get(c: ml_collections.ConfigDict, key: str) -> Any:
  node = c
  for part in key.split("."):
    node = node[part]
  return node


# Integer keys and their lowest accepted value (with what the boundary means).
INT_RANGES: dict[str, tuple[int, str]] = {
    "num_epochs": (0, ""), "num_steps": (0, " (0: use num_epochs)"),
    "eval.every_n_epochs": (1, ""), "eval.batch_size": (0, " (0: batch_size)"),
    "checkpoint.every_n_steps": (0, " (0: off)"), "checkpoint.every_n_epochs": (0, " (0: off)"),
    "checkpoint.keep": (1, ""), "log.every_n_epochs": (1, ""), "log.every_n_steps": (0, " (0: off)"),
    "early_stopping.patience": (0, ""), "schedule.plateau_patience": (0, ""),
    "distributed.num_processes": (0, " (0: from the environment)"),
    "distributed.process_id": (-1, " (-1: from the environment)"),
    "distributed.init_timeout_s": (1, ""), "distributed.heartbeat_timeout_s": (1, ""),
}
# Float keys: (lowest value, strictly greater).
FLOAT_RANGES: dict[str, tuple[float, bool]] = {
    "optimizer.learning_rate": (0.0, True), "optimizer.weight_decay": (0.0, False), "optimizer.momentum": (0.0, False),
    "optimizer.rho": (0.0, False), "optimizer.eps": (0.0, False), "optimizer.b1": (0.0, False),
    "optimizer.b2": (0.0, False), "optimizer.grad_clip_norm": (0.0, False), "schedule.step_factor": (0.0, False),
    "schedule.warmup_epochs": (0.0, False), "schedule.plateau_factor": (0.0, True), "debug.step_sleep_s": (0.0, False),
}


def check_ranges(c: ml_collections.ConfigDict) -> None:
  """Types and ranges of the schema's numeric keys, the data sizes, ``num_classes`` and the distributed settings."""
  flat = flatten(c)
  for key, (low, meaning) in INT_RANGES.items():
    if key in flat:
      _int_at_least(c, key, low, meaning)
  for key, (low, strict) in FLOAT_RANGES.items():
    if key in flat:
      _finite(c, key, low, strict)
  for key in ("seed",):
    _int_at_least(c, key, 0)
  for key, value in flat.items():  # split sizes must hold examples; other data sizes may be 0 ("derive")
    if key.startswith("data.") and (key.endswith("_size") or key.endswith("_per_class")) and isinstance(
        value, (int, float)) and not isinstance(value, bool):
      split_size = key.split(".")[-1].split("_")[0] in ("train", "val", "test")
      _int_at_least(c, key, 1 if split_size else 0)
  if "num_classes" in c.model:
    _int_at_least(c, "model.num_classes", 2, " (a classifier needs two classes)")
  for s in c.schedule.step_epochs:
    _require("schedule.step_epochs", tuple(c.schedule.step_epochs), isinstance(s, (int, float)) and s >= 0,
             "a tuple of epochs >= 0")
  check_distributed(c.distributed)


def check_distributed(d: ml_collections.ConfigDict) -> None:
  """Multi-process settings are complete: a coordinator with both a process count and an id, or none of them."""
  if d.num_processes > 1 and not d.coordinator_address:
    raise ValueError(f"distributed.num_processes={d.num_processes} needs distributed.coordinator_address "
                     "('host:port' of process 0; or --coordinator_address / JAX_COORDINATOR_ADDRESS).")
  if d.coordinator_address:
    if ":" not in d.coordinator_address:
      raise ValueError(f"distributed.coordinator_address={d.coordinator_address!r} is not accepted; accepted "
                       "values: 'host:port'.")
  if d.num_processes >= 1 and d.process_id >= d.num_processes:
    raise ValueError(f"distributed.process_id={d.process_id} is not accepted; accepted values: 0 .. "
                     f"{d.num_processes - 1} (num_processes={d.num_processes}).")


def check_labels(config: ml_collections.ConfigDict, labels: Any) -> None:
  """The training labels fit ``model.num_classes`` (else the loss is silently wrong or non-finite)."""
  num_classes = config.model.get("num_classes")
  if num_classes is None or labels is None:
    return
  labels = np.asarray(labels)
  if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
    raise ValueError(f"model.num_classes={num_classes} does not fit the labels of data.source="
                     f"{config.data.source!r} (range {int(labels.min())}..{int(labels.max())}); set "
                     f"model.num_classes >= {int(labels.max()) + 1}.")


def _validate_values(c: ml_collections.ConfigDict) -> None:
  check_keys(c)
  check_ranges(c)
  if not isinstance(c.batch_size, int) or c.batch_size < 1:
    raise ValueError(f"batch_size must be an int >= 1, got {c.batch_size!r}.")
  if not isinstance(c.microbatch_size, int) or c.microbatch_size < 0 or (
      c.microbatch_size and c.batch_size % c.microbatch_size):
    raise ValueError(f"microbatch_size must be 0 (off) or an int that divides batch_size={c.batch_size}, got "
                     f"{c.microbatch_size!r}.")
  if not isinstance(c.parallel_runs, int) or c.parallel_runs < 0:
    raise ValueError(f"parallel_runs must be an int >= 0 (0: one per CPU core, 1: one run at a time), got "
                     f"{c.parallel_runs!r}.")
  if c.num_steps < 0 or c.num_epochs < 0 or (c.num_steps == 0 and c.num_epochs == 0):
    raise ValueError(f"num_steps={c.num_steps} / num_epochs={c.num_epochs}: one must be > 0 (num_steps "
                     "overrides num_epochs when > 0), neither negative.")
  _choice("optimizer.name", c.optimizer.name, OPTIMIZERS)
  _choice("schedule.name", c.schedule.name, SCHEDULES)
  _choice("precision.compute_dtype", c.precision.compute_dtype, DTYPES)
  _choice("early_stopping.mode", c.early_stopping.mode, MODES)
  for m in c.eval.metrics:
    _choice("eval.metrics entry", m, METRICS)
  if c.eval.every_n_epochs < 1:
    raise ValueError(f"eval.every_n_epochs must be >= 1, got {c.eval.every_n_epochs}.")
  metric_names = [f"val/{m}" for m in c.eval.metrics]
  if c.early_stopping.metric:
    _choice("early_stopping.metric", c.early_stopping.metric, metric_names)
  if c.schedule.name == "plateau":
    _choice("schedule.plateau_metric", c.schedule.plateau_metric, metric_names)
  if c.optimizer.learning_rate <= 0:
    raise ValueError(f"optimizer.learning_rate must be > 0, got {c.optimizer.learning_rate}.")
  if c.report:
    if importlib.util.find_spec(f"train.reports.{c.report}") is None:
      raise ValueError(f"report={c.report!r} has no module train/reports/{c.report}.py; available: "
                       f"{', '.join(available_reports())}.")
  # Model kwargs: building the module runs its own checks (conv_mode, antialias, ...) without allocating.
  from jaxborders.models import get_model
  get_model(c.model.name, **model_kwargs(c))


def available_reports() -> list[str]:
  import pkgutil
  from train import reports
  return sorted(m.name for m in pkgutil.iter_modules(reports.__path__))


def model_kwargs(c: ml_collections.ConfigDict) -> dict[str, Any]:
  """Constructor kwargs of the model from the config (``dtype`` from ``precision`` when accepted)."""
  import jax.numpy as jnp
  kwargs = {k: v for k, v in c.model.items() if k not in ("name", "pretrained")}  # pretrained: loaded by train.run
  for k, v in kwargs.items():
    if isinstance(v, (list, tuple)):
      kwargs[k] = tuple(v)
  if "dtype" in model_kwargs_names(c.model.name) and "dtype" not in kwargs:
    kwargs["dtype"] = jnp.bfloat16 if c.precision.compute_dtype == "bfloat16" else jnp.float32
  return kwargs


def run_name(overrides: dict[str, Any]) -> str:
  """Sub-workdir name of a sweep point, e.g. ``conv_mode=full`` (last key component, filesystem-safe)."""
  if not overrides:
    return "base"
  parts = [f"{k.split('.')[-1]}={v}" for k, v in overrides.items()]
  return ",".join(parts).replace("/", "_").replace(" ", "")


def iter_runs(config: ml_collections.ConfigDict) -> Iterator[tuple[dict[str, Any], int, ml_collections.ConfigDict]]:
  """(overrides, seed, run config) for every sweep point × seed, in order."""
  for point in sweep_points(config):
    base = apply_overrides(config, point)
    for seed in seeds_of(config):
      run = ml_collections.ConfigDict(base.to_dict())
      run.seed = seed
      run.seeds = ()
      yield point, seed, run
