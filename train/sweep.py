"""A whole config: every sweep point x seed, in process or on parallel workers, then the summary and the report.

``train_and_evaluate(config, workdir)`` validates the config, lays out one run directory per (sweep point, seed)
(``workdir`` itself for a single run), trains each with ``train.run.run_one`` (or ``train.parallel.run_all``),
then writes ``summary.json`` / ``summary.md`` and the config's report (``train/reports/<config.report>.py``).
"""

from __future__ import annotations

import importlib
import json
import os
import time
from typing import Any

import jax
import ml_collections
import numpy as np

from train import config as config_lib
from train import parallel as parallel_lib
from train import provenance
from train import sharding as sharding_lib
from train import signals
from train.errors import ConfigError, config_errors
from train.logs import echo
from train.run import is_finished, load_params, run_one


def check_workdir(workdir: str) -> None:
  """Creates ``workdir`` and proves it writable, before anything trains."""
  try:
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, f".write_probe_{os.getpid()}")
    with open(probe, "w") as f:
      f.write("ok")
    os.remove(probe)
  except OSError as e:
    raise ConfigError(f"workdir {workdir!r} is not writable ({e.strerror}); pass --workdir to a writable directory.") from None


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
  """Mean ± std (population, as the reference) of every metric per sweep point."""
  groups: dict[str, list[dict[str, Any]]] = {}
  for r in runs:
    groups.setdefault(json.dumps(r["overrides"], sort_keys=True), []).append(r)
  out = []
  for key, rs in groups.items():
    metrics = {}
    for name in rs[0]["metrics"]:
      vals = np.asarray([r["metrics"][name] for r in rs], np.float64)
      metrics[name] = {"mean": float(vals.mean()), "std": float(vals.std()), "n": len(vals)}
    out.append({"overrides": json.loads(key), "metrics": metrics, "seeds": [r["seed"] for r in rs],
                "wall_s_mean": float(np.mean([r["wall_s"] for r in rs])), "epochs_mean": float(np.mean([r["epochs"] for r in rs]))})
  return out


def summary_markdown(groups: list[dict[str, Any]]) -> str:
  """The summary table: one row per sweep point, mean ± std over seeds (accuracy in %)."""
  names = [n for n in groups[0]["metrics"] if not n.startswith("val/")] + [n for n in groups[0]["metrics"] if n.startswith("val/")]
  head = "| run | seeds | " + " | ".join(names) + " | epochs | s/run |"
  lines = [head, "|" + "---|" * (len(names) + 4)]
  for g in groups:
    cells = []
    for n in names:
      m = g["metrics"][n]
      scale = 100.0 if n.endswith("accuracy") else 1.0
      cells.append(f"{m['mean'] * scale:.2f} ± {m['std'] * scale:.2f}" if m["n"] > 1 else f"{m['mean'] * scale:.4g}")
    name = config_lib.run_name(g["overrides"])
    lines.append(f"| {name} | {len(g['seeds'])} | " + " | ".join(cells) + f" | {g['epochs_mean']:.1f} | {g['wall_s_mean']:.1f} |")
  return "\n".join(lines) + "\n\n(accuracy in %; ± is the std over seeds)\n"


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Runs every sweep point × seed of ``config`` under ``workdir``; returns the combined summary.

  Raises:
    ConfigError: bad config, workdir, or config/model mismatch (before training).
    NonFiniteLossError: NaN/Inf loss (the message names the step).
    Preempted: SIGTERM/SIGINT (a checkpoint was saved).
  """
  try:
    config_lib.validate(config)
  except ValueError as e:
    raise ConfigError(str(e)) from None
  config = config_errors(sharding_lib.adapt_config, config)  # trust: batch vs devices; microbatch adapted
  check_workdir(workdir)
  mesh = sharding_lib.make_mesh()
  runs_spec = list(config_lib.iter_runs(config))
  single = len(runs_spec) == 1
  t0 = time.time()
  jobs = []
  for i, (overrides, seed, run_config) in enumerate(runs_spec):
    run_dir = workdir if single else os.path.join(workdir, config_lib.run_name(overrides), f"seed_{seed}")
    label = "" if single else f"[{i + 1}/{len(runs_spec)} {config_lib.run_name(overrides)} seed {seed}] "
    jobs.append((run_config, run_dir, label))
  provenance.check_and_record(config, workdir, jobs, write=jax.process_index() == 0)  # trust: refuse a changed config

  def done(i: int, result: dict[str, Any]) -> None:
    result["overrides"] = runs_spec[i][0]
    if not single:
      echo(f"{jobs[i][2]}done in {result['wall_s']:.1f} s: " +
             ", ".join(f"{k} {v:.4f}" for k, v in result["metrics"].items()))

  unfinished = sum(not is_finished(run_dir, c) for c, run_dir, _ in jobs)
  workers = parallel_lib.num_workers(config.parallel_runs, unfinished)
  if workers > 0:  # trust: parallel_runs != 1 always trains in single-threaded workers (same bits, resumed or not)
    echo(f"training {len(jobs)} runs, {workers} at a time (parallel_runs: one single-threaded process per core)")
    runs = parallel_lib.run_all(jobs, workers, signals.stop_requested, done)
    for result, (_, run_dir, _) in zip(runs, jobs):
      params_path = os.path.join(run_dir, "params.msgpack")
      result["params"] = load_params(run_dir) if os.path.exists(params_path) else None
  else:
    runs = []
    for i, (run_config, run_dir, label) in enumerate(jobs):
      runs.append(parallel_lib.labelled_call(label, run_one, run_config, run_dir, mesh, label))  # trust: name the run
      done(i, runs[-1])
  groups = summarize(runs)
  table = summary_markdown(groups)
  summary = {"runs": [{k: v for k, v in r.items() if k != "params"} for r in runs], "groups": groups,
             "wall_s": time.time() - t0, "num_runs": len(runs), "devices": jax.device_count(),
             "processes": jax.process_count()}
  provenance.stamp(summary)  # trust: package version and git commit of the whole sweep
  if single:
    summary.update({k: v for k, v in runs[0].items() if k != "params"})
  text = table
  if jax.process_index() == 0:
    with open(os.path.join(workdir, "summary.md"), "w") as f:
      f.write(table)
    with open(os.path.join(workdir, "summary.json"), "w") as f:
      json.dump(summary, f, indent=1)
    if config.report:
      report = importlib.import_module(f"train.reports.{config.report}")
      text = table + "\n" + report.report(workdir, runs, config, wall_s=time.time() - t0, workers=workers)
  echo(f"\n{text}\nwall time: {summary['wall_s']:.1f} s for {len(runs)} run(s); results in {workdir}")
  return summary


__all__ = ["train_and_evaluate", "summarize", "summary_markdown", "check_workdir"]
