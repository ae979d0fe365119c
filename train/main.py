"""Entry point: ``python -m train.main --config configs/X.py [--config.key=value ...] [--workdir DIR]``.

Flags only; the work is ``train.trainer.train_and_evaluate``. Exit codes: 0 done (or preempted after saving
a checkpoint), 2 bad config, 3 non-finite loss, 4 missing data. On a terminal a progress bar shows the steps,
images/s (compilation excluded) and the time left; logs and pipes get one line per logged epoch.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags
from ml_collections import config_flags

from train import cli

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (default: runs/<config name>).")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "Multi-process: host:port of process 0.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Multi-process: number of processes.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "Multi-process: this process's id.")


def _precheck_overrides(argv: list[str]) -> None:
  """Names unknown ``--config.x=`` keys with the list of valid ones (config_flags only says 'x')."""
  import importlib.util
  path = None
  paths = []
  for i, arg in enumerate(argv):
    if arg == "--config" and i + 1 < len(argv):
      path = argv[i + 1]
    elif arg.startswith("--config="):
      path = arg.split("=", 1)[1]
    elif arg.startswith("--config."):
      paths.append(arg[len("--config."):].split("=", 1)[0])
  if not path or not paths or not os.path.exists(path.split(":")[0]):
    return
  spec = importlib.util.spec_from_file_location("_config_precheck", path.split(":")[0])
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  from train import config as config_lib
  try:
    config_lib.check_override_paths(module.get_config(), paths)
  except ValueError as e:
    print(f"config error: {e}", file=sys.stderr)
    sys.exit(2)


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  config = _CONFIG.value
  cli.quiet_library_logs()  # orbax logs every save at INFO
  import jax
  # Compiled programs persist across processes: a rerun or a resumed run skips compilation.
  cache = os.environ.get("JAXBORDERS_XLA_CACHE", os.path.expanduser("~/.cache/jaxborders/xla"))
  if cache:
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
  from train import sharding
  d = config.distributed
  sharding.initialize_distributed(_COORDINATOR.value or d.coordinator_address, _NUM_PROCESSES.value or d.num_processes,
                                  _PROCESS_ID.value if _PROCESS_ID.value is not None else d.process_id)
  from train import data as data_lib
  from train import trainer
  workdir = _WORKDIR.value or os.path.join("runs", os.path.splitext(os.path.basename(flags.FLAGS["config"].config_filename))[0])
  trainer.install_signal_handlers()
  try:
    trainer.train_and_evaluate(config, workdir)
  except trainer.ConfigError as e:
    print(f"config error: {e}", file=sys.stderr)
    sys.exit(2)
  except trainer.NonFiniteLossError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(3)
  except data_lib.DataMissingError as e:
    print(f"data missing: {e}", file=sys.stderr)
    sys.exit(4)
  except trainer.Preempted as e:
    print(f"preempted: {e}", file=sys.stderr)
    sys.exit(0)


if __name__ == "__main__":
  cli.exit_on_help(sys.argv, __doc__)
  _precheck_overrides(sys.argv)
  flags.mark_flags_as_required(["config"])
  app.run(main)
