"""A run is its config: every run directory records what made it, and a rerun that would change it is refused.

Each run directory holds ``config.json``: the resolved run config (after host adaptation such as
``microbatch_size``), the ``jaxborders`` version, the git commit of the checkout (with a ``dirty`` flag) and the
JAX version. A sweep's workdir also records the whole sweep config there (``"kind": "sweep"``). A rerun in the same
directory compares its config with the record:

* **result keys** (everything that changes the trained parameters: model, data, optimizer, schedule, seed, batch
  and microbatch size, precision, early stopping, ...) must match, or the rerun is refused before anything trains
  (``ConfigMismatch``, exit 2) with the differing keys and how to start fresh;
* **observing keys** (logging, checkpoint cadence, eval batch and metrics, ``parallel_runs``, the distributed
  settings, the report, the test sleep) may change freely;
* **length keys** ``num_epochs`` / ``num_steps`` may grow (not shrink): an unfinished run trains on, a finished one
  continues from its last checkpoint and ends bit-identical to one trained that long in one go. Not under the
  cosine schedule, whose learning rate at every step depends on the total length (there they are result keys).
  ``eval.every_n_epochs`` observes only when neither early stopping nor the plateau schedule reads the evaluations.

Summaries are read through ``read_summary``: an unreadable ``summary.json`` is moved aside with a warning and the
run is treated as unfinished (it resumes from its last checkpoint and writes the summary again).
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import ml_collections

from train import config as config_lib

RECORD = "config.json"
# Keys (or section prefixes ending in '.') that observe a run without changing its parameters.
OBSERVING = ("log.", "checkpoint.", "eval.batch_size", "eval.metrics", "eval.shift.", "parallel_runs", "report",
             "distributed.", "debug.step_sleep_s", "sweep", "seeds")
LENGTH_KEYS = ("num_epochs", "num_steps")


class ConfigMismatch(ValueError):
  """A rerun's config differs from the recorded one in keys that change the result."""


def _plain(value: Any) -> Any:
  """JSON-comparable form (tuples as lists, numpy scalars as Python numbers)."""
  return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


@functools.lru_cache(maxsize=1)
def code_version() -> dict[str, Any]:
  """``jaxborders`` version, git commit (``None`` outside a checkout) and whether the checkout has edits."""
  import jax

  import jaxborders
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  commit, dirty = None, None
  try:
    commit = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                            check=True).stdout.strip() or None
    status = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                            text=True, timeout=10, check=True).stdout
    dirty = bool(status.strip())
  except (OSError, subprocess.SubprocessError):
    pass
  return {"jaxborders_version": getattr(jaxborders, "__version__", None), "git_commit": commit, "git_dirty": dirty,
          "jax_version": jax.__version__}


def record(config: ml_collections.ConfigDict, kind: str = "run") -> dict[str, Any]:
  """The record written to ``config.json``: the config (nested, JSON) and the code version."""
  return {"kind": kind, "config": _plain(config.to_dict()), **code_version(), "written": time.strftime("%Y-%m-%dT%H:%M:%S")}


def load_record(directory: str) -> dict[str, Any] | None:
  """The record of ``directory`` (``None`` when there is none).

  Raises:
    ConfigMismatch: the record exists but cannot be read (the run cannot be trusted to continue).
  """
  path = os.path.join(directory, RECORD)
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      rec = json.load(f)
    if not isinstance(rec, dict) or not isinstance(rec.get("config"), dict):
      raise ValueError("not a run record")
    return rec
  except (OSError, ValueError) as e:
    raise ConfigMismatch(f"{path} is unreadable ({e}); its run cannot be checked against this config. To start "
                         f"fresh, remove {directory} or pass another --workdir.") from None


def write_record(directory: str, rec: dict[str, Any]) -> None:
  """Writes ``config.json`` atomically (a half-written record never replaces a good one)."""
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, RECORD)
  tmp = f"{path}.tmp{os.getpid()}"
  with open(tmp, "w") as f:
    json.dump(rec, f, indent=1, sort_keys=True)
  os.replace(tmp, path)


def _observes(key: str, config: dict[str, Any]) -> bool:
  if key == "eval.every_n_epochs":
    return not config.get("early_stopping.metric") and config.get("schedule.name") != "plateau"
  return any(key == k or (k.endswith(".") and key.startswith(k)) or key.startswith(k + ".") for k in OBSERVING)


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
  """Result-changing differences between two (nested, JSON) run configs, as ``'key: old -> new'`` lines.

  Example:
    >>> differences({"seed": 0, "num_epochs": 5, "log": {"every_n_epochs": 1}},
    ...             {"seed": 1, "num_epochs": 9, "log": {"every_n_epochs": 3}})
    ['seed: 0 -> 1']
  """
  flat_old, flat_new = config_lib.flatten(old), config_lib.flatten(new)
  out = []
  for key in sorted(set(flat_old) | set(flat_new)):
    a, b = flat_old.get(key, "<absent>"), flat_new.get(key, "<absent>")
    if a == b or _observes(key, flat_new):
      continue
    if key in LENGTH_KEYS and flat_new.get("schedule.name") != "cosine" and isinstance(a, int) and isinstance(b, int) \
        and b >= a and (key == "num_epochs" or a > 0):
      continue  # a longer run continues this one
    out.append(f"{key}: {a!r} -> {b!r}")
  return out


def check_and_record(config: ml_collections.ConfigDict, workdir: str,
                     jobs: Sequence[tuple[ml_collections.ConfigDict, str, str]], write: bool = True) -> None:
  """Refuses a rerun whose result keys differ from any run's record; then records every run's config.

  Called before anything trains. ``jobs`` are (run config, run dir, label) as the trainer builds them; a sweep
  (more than one job) also records ``config`` in ``workdir``.

  Raises:
    ConfigMismatch: naming each differing run, its keys (old -> new) and how to start fresh.
  """
  if not workdir:
    raise ConfigMismatch("--workdir='' is not accepted; accepted values: a directory path (default: "
                         "runs/<config name>).")
  kind = "run" if len(jobs) == 1 else "sweep"
  top = load_record(workdir)
  if top is not None and top.get("kind", "run") != kind and not (kind == "run" and jobs[0][1] != workdir):
    raise ConfigMismatch(f"{workdir} holds a {top.get('kind', 'run')}, this config is a {kind}. To start fresh, "
                         "pass another --workdir (or remove it).")
  problems = []
  for run_config, run_dir, label in jobs:
    rec = load_record(run_dir)
    if rec is None:
      continue
    diff = differences(rec["config"], _plain(run_config.to_dict()))
    if diff:
      problems.append(f"{label or run_dir + ': '}{'; '.join(diff)}")
  if problems:
    raise ConfigMismatch(f"this config would change the result of runs already in {workdir} (recorded in "
                         f"{RECORD}): {' | '.join(problems)}. Keys that change the result must match to resume or "
                         "extend a run; to start fresh, pass another --workdir or remove the run directory.")
  if not write:
    return
  for run_config, run_dir, _ in jobs:
    check_writable(run_dir)
    write_record(run_dir, record(run_config))
    if run_config.log.tensorboard:
      write_tensorboard_text(run_dir, record(run_config))
  if kind == "sweep":
    write_record(workdir, record(config, "sweep"))


def write_tensorboard_text(run_dir: str, rec: dict[str, Any]) -> None:
  """The record as a TensorBoard text summary ('config', in ``<run_dir>/tb``): key | value rows and the version."""
  from tensorboardX import SummaryWriter
  rows = "\n".join(f"| {k} | {v!r} |" for k, v in sorted(config_lib.flatten(rec["config"]).items()))
  version = ", ".join(f"{k}: {rec.get(k)}" for k in ("jaxborders_version", "git_commit", "git_dirty", "jax_version"))
  with SummaryWriter(os.path.join(run_dir, "tb")) as writer:
    writer.add_text("config", f"{version}\n\n| key | value |\n|---|---|\n{rows}", 0)


def check_writable(run_dir: str) -> None:
  """Proves ``run_dir`` and its ``checkpoints`` directory (when there is one) writable before anything trains.

  Raises:
    OSError: with the errno of the failure (read-only file system, permission, full disk) and the path.
  """
  for directory in (run_dir, os.path.join(run_dir, "checkpoints")):
    if directory != run_dir and not os.path.isdir(directory):
      continue
    os.makedirs(directory, exist_ok=True)
    probe = os.path.join(directory, f".write_probe_{os.getpid()}")
    try:
      with open(probe, "w") as f:
        f.write("ok")
      os.remove(probe)
    except OSError as e:
      raise OSError(e.errno, f"{directory} is not writable ({e.strerror}); the last good checkpoint is kept") from None


def recorded_config(workdir: str) -> ml_collections.ConfigDict | None:
  """The config recorded in ``workdir`` (a single run's or a sweep's), or ``None``."""
  rec = load_record(workdir)
  return None if rec is None else ml_collections.ConfigDict(rec["config"])


def read_summary(path: str) -> dict[str, Any] | None:
  """A run's ``summary.json``; an unreadable one is moved aside (``.corrupt``) with a warning and ``None`` returned.

  The run then counts as unfinished: it resumes from its newest good checkpoint and writes the summary anew.
  """
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      summary = json.load(f)
    if not isinstance(summary, dict):
      raise ValueError("not a JSON object")
    return summary
  except (OSError, ValueError) as e:
    aside = path + ".corrupt"
    os.replace(path, aside)
    print(f"warning: {path} is unreadable ({e}); moved to {aside}; the run resumes from its last checkpoint and "
          "writes it again.", file=sys.stderr, flush=True)
    return None


def extends(summary: dict[str, Any], config: ml_collections.ConfigDict) -> bool:
  """Whether a finished run (its ``summary``) must train on: the config asks for more steps/epochs than it ran.

  A run stopped early by early stopping is complete whatever the length.
  """
  if summary.get("stopped_early"):
    return False
  if config.num_steps > 0:
    return int(summary.get("steps", 0)) < config.num_steps
  return int(summary.get("epochs", 0)) < config.num_epochs


def is_finished(run_dir: str) -> bool:
  """Whether ``run_dir`` holds a finished run (read-only: an unreadable summary counts as unfinished)."""
  try:
    with open(os.path.join(run_dir, "summary.json")) as f:
      return json.load(f).get("status") == "finished"
  except (OSError, ValueError, AttributeError):
    return False


def config_for_eval(given: ml_collections.ConfigDict | None, workdir: str) -> ml_collections.ConfigDict:
  """The config ``train.eval`` evaluates ``workdir`` with: the recorded one, or ``given`` when it agrees with it.

  ``given`` may differ from the record only in keys that do not change the trained parameters (evaluation
  settings such as ``eval.shift.*``, logging, ...) and in ``microbatch_size`` (a training speed setting).

  Raises:
    ConfigMismatch: ``given`` contradicts the record (the message lists the keys), or there is neither.
  """
  recorded = recorded_config(workdir)
  if given is None:
    if recorded is None:
      raise ConfigMismatch(f"{workdir} has no {RECORD} (trained before runs recorded their config, or not a run "
                           "directory); pass --config with the config it was trained with.")
    return recorded
  if recorded is not None:
    top = load_record(workdir)
    specs = list(config_lib.iter_runs(given))
    if top.get("kind", "run") != ("run" if len(specs) == 1 else "sweep"):
      raise ConfigMismatch(f"{workdir} holds a {top.get('kind', 'run')}; --config is not one. Leave out --config to "
                           "use the recorded one.")
    diff = []
    for overrides, seed, run_config in specs:
      run_dir = workdir if len(specs) == 1 else os.path.join(workdir, config_lib.run_name(overrides), f"seed_{seed}")
      rec = load_record(run_dir)
      if rec is not None:
        old, new = rec["config"], _plain(run_config.to_dict())
        old.pop("microbatch_size", None)
        new.pop("microbatch_size", None)
        diff += [f"{'' if run_dir == workdir else run_dir + ': '}{d}" for d in differences(old, new)]
    if diff:
      raise ConfigMismatch(f"--config contradicts the config {workdir} was trained with ({RECORD}): "
                           f"{'; '.join(diff)}. Leave out --config to evaluate with the recorded one.")
  return given


def stamp(summary: dict[str, Any]) -> dict[str, Any]:
  """Adds the code version (package, git commit) to a summary dict (in place) and returns it."""
  summary.update(code_version())
  return summary


__all__ = ["ConfigMismatch", "RECORD", "check_and_record", "differences", "extends", "read_summary", "record",
           "recorded_config", "stamp", "code_version", "load_record", "write_record", "is_finished",
           "config_for_eval", "check_writable"]
