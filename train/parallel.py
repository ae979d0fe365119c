"""Several runs of a sweep at once on one CPU host: one single-threaded worker process per core.

Small nets (the F-Conv paper's Red-Green and patch-toy nets) cannot keep two cores busy inside one step: every
op is split across the threads and joined again, and the joins cost more than the op. Independent runs (sweep
points × seeds) have no such joins, so on a CPU host ``config.parallel_runs`` trains that many runs at once, each
in its own process pinned to one core with XLA's intra-op threading off. The runs themselves are unchanged:
each writes its own run directory exactly as ``train.run.run_one`` does in-process (same checkpoints, resume and
summary); only the scheduling differs.

SIGTERM/SIGINT to the parent is forwarded to the workers, which save a checkpoint at their next epoch end; runs
not started yet are cancelled; the parent then raises ``train.errors.Preempted``. A failing run (bad data, NaN)
stops the others the same way and its error is raised in the parent.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import signal
from collections.abc import Callable
from typing import Any

import ml_collections

# Appended to XLA_FLAGS in each worker: one thread per process (the process is pinned to one core).
WORKER_XLA_FLAGS = "--xla_cpu_multi_thread_eigen=false"


def available_cores() -> list[int]:
  """The CPU cores this process may run on (affinity, capped by a cgroup v2 CPU quota as in containers)."""
  try:
    cores = sorted(os.sched_getaffinity(0))
  except AttributeError:  # not Linux
    cores = list(range(os.cpu_count() or 1))
  try:
    with open("/sys/fs/cgroup/cpu.max") as f:
      quota, period = f.read().split()[:2]
    if quota != "max":
      cores = cores[:max(1, int(int(quota) // int(period)))]
  except (OSError, ValueError):
    pass
  return cores


def num_workers(parallel_runs: int, num_runs: int) -> int:
  """Workers for ``num_runs`` runs: ``parallel_runs`` (0 = one per available core), at most one per run/core.

  Returns 1 (train in this process) unless the default backend is the CPU and this is a single process.
  """
  import jax
  if num_runs < 2 or parallel_runs == 1 or jax.default_backend() != "cpu" or jax.process_count() > 1:
    return 1
  cores = len(available_cores())
  return max(1, min(num_runs, cores, parallel_runs or cores))


def _worker_init(cores: Any, cache_dir: str | None) -> None:
  """Runs first in every worker process, before it touches a JAX backend."""
  core = cores.get()
  if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {core})
  os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {WORKER_XLA_FLAGS}".strip()
  import jax
  if cache_dir:
    jax.config.update("jax_compilation_cache_dir", cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
  from absl import logging
  logging.set_verbosity(logging.WARNING)
  from train import signals
  signals.install_signal_handlers()


def _worker_run(run_config: dict[str, Any], run_dir: str, label: str) -> dict[str, Any]:
  from train import run, sharding, signals
  from train.errors import Preempted
  if signals.stop_requested():  # a run already queued to this worker when the stop came: do not start it
    raise Preempted(f"{label}not started: a stop signal arrived first")
  result = run.run_one(ml_collections.ConfigDict(run_config), run_dir, sharding.make_mesh(), label)
  result.pop("params", None)  # the parent reads them from run_dir (params.msgpack)
  return result


def run_all(jobs: list[tuple[ml_collections.ConfigDict, str, str]], workers: int,
            stop_requested: Callable[[], bool], on_done: Callable[[int, dict[str, Any]], None]) -> list[dict[str, Any]]:
  """Trains ``jobs`` (run config, run dir, label) on ``workers`` pinned single-threaded processes.

  Args:
    jobs: one entry per run, in sweep order.
    workers: number of worker processes (>= 2).
    stop_requested: polled by the parent; True once SIGTERM/SIGINT arrived.
    on_done: called in the parent with (job index, result) as each run finishes.

  Returns:
    The results (without ``params``) in the order of ``jobs``.

  Raises:
    The first error of a run (after the others saved and stopped), or ``train.errors.Preempted``.
  """
  import jax
  from train.errors import Preempted
  ctx = multiprocessing.get_context("spawn")  # fork would copy this process's initialised XLA runtime
  cores = ctx.SimpleQueue()
  for core in available_cores()[:workers]:
    cores.put(core)
  cache_dir = jax.config.jax_compilation_cache_dir
  results: list[dict[str, Any] | None] = [None] * len(jobs)
  errors: list[BaseException] = []
  with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init,
                                              initargs=(cores, cache_dir)) as pool:
    futures = {pool.submit(_worker_run, c.to_dict(), d, label): i for i, (c, d, label) in enumerate(jobs)}
    pending = set(futures)
    stopping = False
    while pending:
      done, pending = concurrent.futures.wait(pending, timeout=0.5, return_when=concurrent.futures.FIRST_COMPLETED)
      for f in done:
        if f.cancelled():
          continue
        if f.exception() is not None:
          errors.append(f.exception())
        else:
          results[futures[f]] = f.result()
          on_done(futures[f], f.result())
      if (errors or stop_requested()) and not stopping:
        # Stop everything: cancel runs not started, ask running workers to checkpoint and stop.
        stopping = True
        for f in pending:
          f.cancel()
        for process in list(getattr(pool, "_processes", {}).values()):
          try:
            os.kill(process.pid, signal.SIGTERM)
          except ProcessLookupError:
            pass
  failures = [e for e in errors if not isinstance(e, Preempted)]
  if failures:
    raise failures[0]
  if errors or stopping:
    raise Preempted("signal received: running runs saved a checkpoint, runs not started were cancelled; "
                            "rerun the same command to resume (finished runs are skipped).")
  return results  # type: ignore[return-value]


__all__ = ["available_cores", "num_workers", "run_all", "WORKER_XLA_FLAGS"]
