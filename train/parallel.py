"""Several runs of a sweep at once on one CPU host: one single-threaded worker process per core.

Small nets (the F-Conv paper's Red-Green and patch-toy nets) cannot keep two cores busy inside one step: every
op is split across the threads and joined again, and the joins cost more than the op. Independent runs (sweep
points × seeds) have no such joins, so on a CPU host ``config.parallel_runs`` trains that many runs at once, each
in its own process pinned to one core with XLA's intra-op threading off. The runs themselves are unchanged:
each writes its own run directory exactly as ``train.run.run_one`` does in-process (same checkpoints, resume and
summary); only the scheduling differs.

SIGTERM/SIGINT to the parent is forwarded to the workers, which save a checkpoint at their next epoch end; runs
not started yet are cancelled; the parent then raises ``train.errors.Preempted``. A failing run (bad data, NaN)
stops the others the same way and its error is raised in the parent, its message prefixed with the run's label
(a worker that died names the runs it held).

Nothing outlives its run: each worker asks the kernel for SIGTERM when its parent dies (Linux
``prctl(PR_SET_PDEATHSIG)``, with a thread polling the parent id as a fallback elsewhere), and a SIGTERM/SIGINT that
finds a worker idle (between runs) ends it at once; a worker inside a run saves at its next epoch end and exits.

Bits do not depend on scheduling: with ``parallel_runs != 1`` every run trains in a single-threaded worker, even
when only one run is left (a resumed sweep), because XLA's multi-threaded CPU code sums in another order.
"""

from __future__ import annotations

import concurrent.futures
import concurrent.futures.process
import ctypes
import multiprocessing
import os
import signal
import threading
import time
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
  """Workers for ``num_runs`` unfinished runs: ``parallel_runs`` (0 = one per core), at most one per run/core.

  Returns 0 (train in this process) when ``parallel_runs == 1``, nothing is left to train, the default backend is
  not the CPU, or this is one process of several. Otherwise at least 1: a single remaining run still trains in a
  single-threaded worker, so its bits are those of the uninterrupted sweep.
  """
  import jax
  if num_runs < 1 or parallel_runs == 1 or jax.default_backend() != "cpu" or jax.process_count() > 1:
    return 0
  cores = len(available_cores())
  return max(1, min(num_runs, cores, parallel_runs or cores))


class WorkerDied(RuntimeError):
  """A sweep's worker process died (killed, out of memory) before its run ended; the message names the run."""


_PR_SET_PDEATHSIG = 1
_BUSY: list[bool] = []  # non-empty while this worker trains a run
_PARENT: list[int] = []  # the parent's pid, set in the worker


def _die_with_parent(parent: int) -> None:
  """SIGTERM to this worker when ``parent`` dies: prctl on Linux, plus a polling thread (any OS, and a race guard)."""
  try:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
  except (OSError, AttributeError):
    pass
  if os.getppid() != parent:  # the parent died before prctl took effect
    os.kill(os.getpid(), signal.SIGTERM)

  def watch() -> None:
    while os.getppid() == parent:
      time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)

  threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def _worker_signal(signum: int, frame: Any) -> None:
  """Orphaned and idle: exit now. Otherwise set the trainer's stop flag (a run saves at its next epoch end)."""
  from train import signals
  if not _BUSY and _PARENT and os.getppid() != _PARENT[0]:
    os._exit(128 + signum)  # orphaned and idle: nothing to save, and the call queue would block forever
  # Inside a run, or idle under a live parent (which stops the pool in order): queued runs will not start.
  signals._on_signal(signum, frame)  # pylint: disable=protected-access


def _worker_init(cores: Any, cache_dir: str | None, parent: int) -> None:
  """Runs first in every worker process, before it touches a JAX backend."""
  _PARENT.append(parent)
  for sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(sig, _worker_signal)
  _die_with_parent(parent)
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


def _worker_run(run_config: dict[str, Any], run_dir: str, label: str, parent: int) -> dict[str, Any]:
  from train import run, sharding, signals
  from train.errors import Preempted
  if signals.stop_requested() or os.getppid() != parent:  # queued when the stop came (or orphaned): do not start it
    raise Preempted(f"{label}not started: a stop signal arrived first")
  _BUSY.append(True)
  try:
    result = run.run_one(ml_collections.ConfigDict(run_config), run_dir, sharding.make_mesh(), label)
  finally:
    _BUSY.clear()
    if os.getppid() != parent:  # orphaned: the run saved (or finished); nobody collects results
      os._exit(0)
  result.pop("params", None)  # the parent reads them from run_dir (params.msgpack)
  return result


def labelled_call(label: str, fn: Callable[..., Any], *args: Any) -> Any:
  """``fn(*args)``; an error it raises is re-raised with ``label`` in front of its message (same type)."""
  try:
    return fn(*args)
  except Exception as e:  # noqa: BLE001
    if not label:
      raise
    raise _labelled(e, label) from None


def _labelled(error: BaseException, label: str) -> BaseException:
  """The run's error with its label in front (same type when it takes one message), so a sweep names it."""
  if isinstance(error, concurrent.futures.process.BrokenProcessPool):
    return WorkerDied(f"{label}not finished: a worker process of the sweep died (killed, or out of memory); rerun "
                      "the same command to resume")
  try:
    labelled = type(error)(f"{label}{error}")
  except Exception:  # noqa: BLE001  (an exception type with other constructor arguments)
    return RuntimeError(f"{label}{type(error).__name__}: {error}")
  return labelled.with_traceback(error.__traceback__)


def run_all(jobs: list[tuple[ml_collections.ConfigDict, str, str]], workers: int,
            stop_requested: Callable[[], bool], on_done: Callable[[int, dict[str, Any]], None]) -> list[dict[str, Any]]:
  """Trains ``jobs`` (run config, run dir, label) on ``workers`` pinned single-threaded processes.

  Args:
    jobs: one entry per run, in sweep order.
    workers: number of worker processes (>= 1).
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
  parent = os.getpid()
  with concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init,
                                              initargs=(cores, cache_dir, parent)) as pool:
    futures = {pool.submit(_worker_run, c.to_dict(), d, label, parent): i for i, (c, d, label) in enumerate(jobs)}
    pending = set(futures)
    stopping = False
    while pending:
      done, pending = concurrent.futures.wait(pending, timeout=0.5, return_when=concurrent.futures.FIRST_COMPLETED)
      for f in done:
        if f.cancelled():
          continue
        if stopping and isinstance(f.exception(), concurrent.futures.process.BrokenProcessPool):
          errors.append(Preempted("stopped"))  # a worker that ended on the stop signal broke the pool
        elif f.exception() is not None:
          errors.append(_labelled(f.exception(), jobs[futures[f]][2] or f"{jobs[futures[f]][1]}: "))
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


__all__ = ["WorkerDied", "available_cores", "num_workers", "run_all", "labelled_call", "WORKER_XLA_FLAGS"]
