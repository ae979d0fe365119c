"""Shift-robustness evaluation of trained runs: ``python -m train.eval --config configs/X.py --workdir DIR``.

Restores the tested parameters of every run of the config (all sweep points × seeds, the trainer's layout:
``DIR`` itself for a single run, ``DIR/<sweep point>/seed_<s>/`` otherwise) from its orbax checkpoint and
computes on the evaluation split (docs/experiments.md, ``jaxborders.ops.metrics``):

============================  ==============================================================================
``accuracy``                  top-1 on the centre ``crop`` window of each evaluation image
``consistency``               same argmax for two ``crop`` windows at random offsets in [0, max_offset)
``circular_consistency``      same argmax for two rolls in [-m, m) of the centre window (APS paper)
``subpixel_consistency``      same argmax for two band-limited (Fourier) shifts in [-m, m) per axis of the centre
                              window (sub-pixel; ``eval.shift.subpixel_max_shift``)
``subpixel_accuracy``         accuracy of the centre window at each diagonal Fourier shift (s, s) of
                              ``eval.shift.subpixel_shifts``: ``{"shifts", "accuracy", "mean"}``
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
``config.eval.shift`` (every key with its default and meaning is in ``configs/default.py``). Metrics that
the data cannot support (no margin: no crop shifts) are listed under
``skipped`` with the reason.

Writes into ``DIR``: ``eval.json`` (everything, per run, plus the settings), ``eval.md`` (the F-Conv paper's
Table 2 layout — rows: architecture, columns: S / F / S+Blur / F+Blur — and a table of every metric), and PNG
plots: ``diagonal_shift.png`` (accuracy vs diagonal offset), ``subpixel_shift.png`` (accuracy vs sub-pixel
shift), ``adversarial_shift.png`` (BlurPool Fig. 9),
``consistency_accuracy.png`` (BlurPool Fig. 1/6 scatter), ``filter_tv.png`` (Fig. 7) and
``equivariance_<run>.png`` (Fig. 4 heat maps, one panel per layer).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import jax
import ml_collections

from train import config as config_lib
from train import data as data_lib
from train import provenance
from train.eval_protocol import (SHIFT_DEFAULTS, equivariant_layers, evaluate_run, evaluate_variables,  # noqa: F401
                                 has_checkpoint, load_arrays, load_eval_data, protocol, restore_variables, row_label,
                                 shift_settings, variant_label)
from train.eval_report import _get, markdown, plot_all  # noqa: F401  (_get: tests read metrics through it)


def evaluate(config: ml_collections.ConfigDict, workdir: str, quiet: bool = False,
             allow_unfinished: bool = False) -> dict[str, Any]:
  """Evaluates every run of ``config`` under ``workdir`` and writes eval.json / eval.md / PNGs there.

  Unfinished runs (no finished ``summary.json``) are skipped and listed unless ``allow_unfinished``; each run's
  result says the checkpoint ``step`` it evaluated and whether the run had ``finished``.
  """
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
  runs, data_cache, missing, unfinished = [], {}, [], []
  for overrides, seed, run_config in specs:
    run_dir = workdir if single else os.path.join(workdir, config_lib.run_name(overrides), f"seed_{seed}")
    if not has_checkpoint(run_dir):
      missing.append(run_dir)  # not trained (yet): evaluate the others, list it
      continue
    if not allow_unfinished and not provenance.is_finished(run_dir):  # trust: a middle checkpoint only when asked
      unfinished.append(run_dir)
      continue
    # Runs that differ only in the model share the evaluation data.
    data_key = json.dumps(run_config.data.to_dict(), sort_keys=True, default=str)
    if data_key not in data_cache:
      data_cache[data_key] = load_eval_data(run_config, settings)
    result = evaluate_run(run_config, run_dir, settings, data_cache[data_key])
    # Each run compiles its own programs; XLA:CPU maps every executable's code into memory and a long sweep
    # (the atlas: ~25 nets x ~20 programs) exhausts the kernel's map count (vm.max_map_count, 65530) unless the
    # finished run's executables are freed.
    jax.clear_caches()
    result["finished"] = provenance.is_finished(run_dir)  # trust: the report says which step, finished or not
    name = config_lib.run_name(overrides)
    runs.append({"name": name, "overrides": overrides, "seed": seed, "run_dir": run_dir,
                 "row": row_label(run_config, overrides), "variant": variant_label(run_config), **result})
    if not quiet:
      print(f"[{len(runs)}/{len(specs)} {name} seed {seed}]{'' if result['finished'] else ' UNFINISHED'} step "
            f"{result['step']}: accuracy {result['accuracy']:.2f} "
            f"consistency {result.get('consistency', float('nan')):.2f} circular {result['circular_consistency']:.2f}"
            f" ({result['wall_s']:.1f} s)", flush=True)
  if unfinished and (not quiet or not runs):  # trust: name the unfinished runs and the flag
    print(f"unfinished, skipped (pass --allow_unfinished to evaluate their latest checkpoint): "
          f"{', '.join(unfinished)}", file=sys.stderr, flush=True)
  if not runs:
    raise FileNotFoundError(f"no {'finished runs' if unfinished else 'checkpoints'} in {workdir} (looked for: "
                            f"{', '.join(missing + unfinished)}): train the config first "
                            "(python -m train.main --config ... --workdir ...), then evaluate the same workdir.")
  if missing and not quiet:
    print(f"not trained yet, skipped: {', '.join(missing)}", flush=True)
  summary = {"runs": runs, "missing": missing, "unfinished": unfinished, "settings": settings,
             "wall_s": time.time() - t0}
  with open(os.path.join(workdir, "eval.json"), "w") as f:
    json.dump(summary, f, indent=1)
  text = markdown(runs)
  with open(os.path.join(workdir, "eval.md"), "w") as f:
    f.write(text)
  plot_all(runs, workdir)
  return summary


# ----------------------------------------------------------------------------------------------------------
# Entry point.


def main(argv: list[str]) -> None:
  from absl import flags
  if len(argv) > 1:
    raise SystemExit(f"unexpected arguments: {argv[1:]}")
  workdir = flags.FLAGS.workdir
  try:
    config = provenance.config_for_eval(flags.FLAGS.config, workdir)  # trust: the recorded config, or an agreeing one
    summary = evaluate(config, workdir, allow_unfinished=flags.FLAGS.allow_unfinished)
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
  config_flags.DEFINE_config_file("config", None, "Config file (default: the one recorded in --workdir).",
                                  lock_config=True)
  flags.DEFINE_string("workdir", None, "The workdir the config was trained in.")
  flags.DEFINE_bool("allow_unfinished", False, "Also evaluate unfinished runs (their latest checkpoint; the report "
                    "says which step).")
  from train import cli
  cli.exit_on_help(sys.argv, __doc__)
  cli.quiet_library_logs()
  flags.mark_flags_as_required(["workdir"])
  app.run(main, flags_parser=cli.optional_config_parser())  # trust: CLI mistakes exit 2 in one line


__all__ = ["SHIFT_DEFAULTS", "shift_settings", "protocol", "restore_variables", "evaluate_variables", "evaluate_run",
           "evaluate", "markdown", "plot_all", "load_arrays", "variant_label", "row_label", "equivariant_layers",
           "has_checkpoint", "load_eval_data"]
