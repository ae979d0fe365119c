"""A bundle of configs behind one command: ``train_bundle(config, workdir)`` trains every part, then one report.

A bundle (``configs/atlas.py``) is a ``ConfigDict`` with ``parts`` (name -> an ordinary trainer config),
``report`` (``train/reports/<report>.py``, whose ``report_bundle(workdir, parts, config, wall_s)`` writes the
files) and optional ``<report>``-specific sections (e.g. ``probe``). Each part trains exactly as
``train.main --config <part> --workdir <workdir>/<name>`` would: its own sweep, seeds, parallel runs, summary,
report hook and resume (a rerun skips finished runs). Every part is validated before any part trains.
"""

from __future__ import annotations

import importlib
import json
import os
import time
from typing import Any

import ml_collections

from train import config as config_lib
from train.errors import ConfigError
from train.logs import echo
from train.sweep import check_workdir, train_and_evaluate


def is_bundle(config: ml_collections.ConfigDict) -> bool:
  """Whether ``config`` is a bundle of parts (rather than one trainer config)."""
  return "parts" in config


def validate_bundle(config: ml_collections.ConfigDict) -> None:
  """Every part is a valid trainer config and the report has ``report_bundle``; raises ``ConfigError``."""
  if not isinstance(config.get("parts"), ml_collections.ConfigDict) or not config.parts:
    raise ConfigError("parts must be a non-empty ConfigDict of trainer configs (name -> config).")
  for name, part in config.parts.items():
    try:
      config_lib.validate(part)
    except ValueError as e:
      raise ConfigError(f"parts.{name}: {e}") from None
  report = config.get("report", "")
  if report:
    try:
      module = importlib.import_module(f"train.reports.{report}")
    except ModuleNotFoundError:
      raise ConfigError(f"report={report!r} has no module train/reports/{report}.py; available: "
                        f"{', '.join(config_lib.available_reports())}.") from None
    if not hasattr(module, "report_bundle"):
      raise ConfigError(f"report={report!r} has no report_bundle(workdir, parts, config, wall_s) for a bundle.")


def train_bundle(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Trains every part of ``config`` under ``workdir/<name>``, then runs the bundle's report.

  Returns:
    A dict with ``parts`` (name -> the part's summary from ``train.sweep.train_and_evaluate``), ``part_wall_s``
    (name -> seconds) and ``wall_s`` (seconds in all); the timings also go to ``workdir/bundle_summary.json``.
  """
  validate_bundle(config)
  check_workdir(workdir)
  t0 = time.time()
  parts, part_wall = {}, {}
  for name, part in config.parts.items():
    echo(f"== part {name} ({workdir}/{name})")
    t = time.time()
    parts[name] = train_and_evaluate(part, os.path.join(workdir, name))
    part_wall[name] = time.time() - t
  result = {"parts": parts, "part_wall_s": part_wall, "wall_s": time.time() - t0}
  if config.get("report", ""):
    module = importlib.import_module(f"train.reports.{config.report}")
    text = module.report_bundle(workdir, parts, config, wall_s=result["wall_s"], part_wall_s=part_wall)
    result["wall_s"] = time.time() - t0
    echo(f"\n{text}")
  with open(os.path.join(workdir, "bundle_summary.json"), "w") as f:
    json.dump({"part_wall_s": part_wall, "wall_s": result["wall_s"], "parts": list(parts)}, f, indent=1)
  echo(f"bundle wall time: {result['wall_s']:.1f} s ({', '.join(f'{k} {v:.0f} s' for k, v in part_wall.items())}); "
       f"results in {workdir}")
  return result


__all__ = ["is_bundle", "validate_bundle", "train_bundle"]
