"""Entry point: ``python -m train.main --config configs/X.py [--config.key=value ...] [--workdir DIR]``.

Flags only; the work is ``train.trainer.train_and_evaluate``. Every failure ends with one line on stderr naming
the key, file or process at fault, and one of these exit codes (``EXIT_CODES``):

==  =====================================================================================================
0   done, or preempted (SIGTERM/SIGINT) after saving a checkpoint: rerun the same command to resume
1   an unexpected error (a bug: the traceback is printed)
2   bad command line or config (unknown flag or key, wrong type or range, missing/broken config file, a rerun
    whose config differs from the run it would continue in result keys)
3   non-finite training loss (the last good checkpoint is kept)
4   missing data
5   storage fault: the run directory is not writable or the disk is full (the last good checkpoint is kept)
6   multi-process: a peer did not join within ``distributed.init_timeout_s`` or was lost during the run
7   a sweep's worker process died (killed, out of memory); the line names the run; rerun to resume
==  =====================================================================================================

On a terminal a progress bar shows the steps, images/s (compilation excluded) and the time left; logs and
pipes get one line per logged epoch.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import Any

from absl import app, flags
from ml_collections import config_flags

from train import cli
from train.cli import EXIT_CODES, fail, parse_flags  # noqa: F401  (EXIT_CODES: the documented codes)

_CONFIG = config_flags.DEFINE_config_file("config", None, "Config file (configs/*.py).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (default: runs/<config name>).")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "Multi-process: host:port of process 0.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Multi-process: number of processes.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "Multi-process: this process's id.")

STORAGE_ERRNOS = (errno.EROFS, errno.ENOSPC, errno.EACCES, errno.EDQUOT, errno.EPERM, errno.EIO)
STORAGE_MESSAGES = ("No space left", "Read-only file system", "Permission denied", "Disk quota exceeded")


def storage_fault(error: BaseException) -> bool:
  """Whether an error (or one it wraps) is an unwritable directory or a full disk."""
  seen = 0
  while error is not None and seen < 8:
    if isinstance(error, OSError) and error.errno in STORAGE_ERRNOS:
      return True
    if any(m in str(error) for m in STORAGE_MESSAGES):
      return True
    error = error.__cause__ or error.__context__
    seen += 1
  return False


def run(config: Any, workdir: str) -> None:
  """Trains ``config`` in ``workdir`` and maps every known failure to its exit code and one line."""
  from train import data as data_lib
  from train import parallel, provenance, sharding, trainer
  d = config.distributed
  try:
    sharding.initialize_distributed(_COORDINATOR.value or d.coordinator_address, _NUM_PROCESSES.value or d.num_processes,
                                    _PROCESS_ID.value if _PROCESS_ID.value is not None else d.process_id,
                                    d.init_timeout_s, d.heartbeat_timeout_s)
  except ValueError as e:
    fail("config", f"config: {e}")
  except sharding.DistributedError as e:
    fail("distributed", e)
  trainer.install_signal_handlers()
  try:
    from train import bundle  # a config that bundles several sweeps (configs/atlas.py): each part, one report
    (bundle.train_bundle if bundle.is_bundle(config) else trainer.train_and_evaluate)(config, workdir)
  except (trainer.ConfigError, provenance.ConfigMismatch) as e:
    fail("config", f"config: {e}")
  except trainer.NonFiniteLossError as e:
    fail("nonfinite", e)
  except data_lib.DataMissingError as e:
    fail("data", f"data missing: {e}")
  except trainer.Preempted as e:
    fail("done", e)
  except parallel.WorkerDied as e:
    fail("worker", e)
  except Exception as e:  # noqa: BLE001
    if storage_fault(e):
      fail("storage", f"storage: {type(e).__name__}: {e} (workdir {workdir}; the last good checkpoint is kept)")
    if _peer_lost(e):
      fail("distributed", f"a peer process was lost ({type(e).__name__}: {e}); every process stops.")
    raise


def _peer_lost(error: BaseException) -> bool:
  import jax
  text = str(error)
  return jax.process_count() > 1 and any(m in text for m in ("Gloo", "heartbeat", "oordination service", "DEADLINE_EXCEEDED",
                                                             "UNAVAILABLE", "Connection reset", "Connection closed"))


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    fail("config", f"unexpected arguments {argv[1:]}; accepted: --config FILE [--config.key=value ...] "
         "[--workdir DIR]")
  if _WORKDIR.value is not None and not _WORKDIR.value.strip():
    fail("config", "--workdir='' is not accepted; accepted values: a directory path (default: runs/<config name>).")
  config = _CONFIG.value
  cli.quiet_library_logs()  # orbax logs every save at INFO
  import jax
  # Compiled programs persist across processes: a rerun or a resumed run skips compilation.
  cache = os.environ.get("JAXBORDERS_XLA_CACHE", os.path.expanduser("~/.cache/jaxborders/xla"))
  if cache:
    jax.config.update("jax_compilation_cache_dir", cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
  workdir = _WORKDIR.value or os.path.join("runs", os.path.splitext(os.path.basename(flags.FLAGS["config"].config_filename))[0])
  run(config, workdir)


if __name__ == "__main__":
  cli.exit_on_help(sys.argv, __doc__)
  flags.mark_flags_as_required(["config"])
  app.run(main, flags_parser=parse_flags)
