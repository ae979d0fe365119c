"""Data parallelism with ``jax.jit`` over a one-axis ``Mesh`` ('data'): batch sharded, parameters replicated.

Works unchanged from one CPU device to many processes: every process holds the same replicated parameters
and feeds its share of each global batch (``jax.make_array_from_process_local_data``). BatchNorm statistics
are computed over the global batch because the batch axis is one logical axis under SPMD.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


class DistributedError(RuntimeError):
  """A multi-process job cannot start (a peer missing) or lost a peer; the message names the processes."""


def initialize_distributed(coordinator_address: str = "", num_processes: int = 0, process_id: int = -1,
                           init_timeout_s: int = 60, heartbeat_timeout_s: int = 10) -> None:
  """Calls ``jax.distributed.initialize`` when a coordinator is given (argument or env), else nothing.

  Environment fallbacks: ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``. Both timeouts
  are passed to JAX (``initialization_timeout``, ``heartbeat_timeout_seconds``; its defaults, 300 s and 100 s,
  leave a job with a missing or dead peer silent for minutes): a peer missing at start raises
  ``DistributedError`` naming the coordinator and the process ids after ``init_timeout_s``.

  Raises:
    ValueError: incomplete settings (a coordinator without a process count or id).
    DistributedError: the other processes did not join within ``init_timeout_s``.
  """
  address = coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS", "")
  num = num_processes or int(os.environ.get("JAX_NUM_PROCESSES", "0"))
  pid = process_id if process_id >= 0 else int(os.environ.get("JAX_PROCESS_ID", "-1"))
  if not address:
    if num > 1:
      raise ValueError(f"distributed.num_processes={num} needs distributed.coordinator_address ('host:port' of "
                       "process 0; flag --coordinator_address or JAX_COORDINATOR_ADDRESS).")
    return
  if num < 1 or not 0 <= pid < num:
    raise ValueError(f"distributed.coordinator_address={address!r} needs num_processes >= 1 and 0 <= process_id < "
                     f"num_processes (flags or JAX_NUM_PROCESSES / JAX_PROCESS_ID), got {num} and {pid}.")
  message = (f"process {pid} of {num} could not join the coordinator {address} within distributed.init_timeout_s="
             f"{init_timeout_s} s: processes 0..{num - 1} must all start (same --coordinator_address and "
             "--num_processes, each its own --process_id)")
  # JAX aborts the whole process (a C++ fatal error and a stack dump) when the others do not come: a watchdog
  # ends it first with one line and exit code 6 (the call releases the GIL, so the timer thread runs).
  watchdog = threading.Timer(init_timeout_s, _exit_with, args=(message,))
  watchdog.daemon = True
  watchdog.start()
  try:
    jax.distributed.initialize(coordinator_address=address, num_processes=num, process_id=pid,
                               initialization_timeout=int(init_timeout_s) + 10,
                               heartbeat_timeout_seconds=int(heartbeat_timeout_s))
  except Exception as e:  # noqa: BLE001  (XLA raises plain RuntimeErrors / XlaRuntimeErrors here)
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise DistributedError(f"{message}: {first[:300]}") from None
  finally:
    watchdog.cancel()


def _exit_with(message: str) -> None:
  print(f"error: {message}", file=sys.stderr, flush=True)
  os._exit(6)  # the exit code train.main documents for multi-process faults


def agree_on_stop(stop_signals: list[int]) -> bool:
  """Whether to stop now: a SIGTERM/SIGINT arrived here or, in a multi-process job, in any process.

  Multi-process: a collective (all processes call it at the same point of the loop), so every process stops at
  the same step, saves the same checkpoint together and exits; a stop seen by one process alone would leave it
  waiting in the checkpoint's barrier and the others in the next step's collective. The signal number is
  appended to ``stop_signals`` in the processes that did not receive it.
  """
  if jax.process_count() == 1:
    return bool(stop_signals)
  from jax.experimental import multihost_utils
  seen = np.ravel(multihost_utils.process_allgather(np.int32(stop_signals[0] if stop_signals else 0)))
  signums = [int(v) for v in seen if v]
  if signums and not stop_signals:
    stop_signals.append(signums[0])
  return bool(signums)


def adapt_microbatch(microbatch_size: int, batch_size: int, num_devices: int | None = None) -> int:
  """The microbatch size this host uses for a configured one: a multiple of the device count dividing the batch.

  ``microbatch_size`` is a speed/memory setting: any value gives the same update up to float summation order. So
  a config written for one device runs unchanged on 2, 4 or 8: the size is rounded up to the next multiple of the
  device count that divides ``batch_size`` (0, one pass, when there is none below ``batch_size``).

  Example:
    >>> adapt_microbatch(10, 200, 4), adapt_microbatch(10, 200, 1), adapt_microbatch(0, 200, 4)
    (20, 10, 0)
  """
  n = jax.device_count() if num_devices is None else num_devices
  if not microbatch_size:
    return 0
  for size in range(microbatch_size, batch_size):
    if size % n == 0 and batch_size % size == 0:
      return size
  return 0


def adapt_config(config: Any) -> Any:
  """A copy of ``config`` for this host: ``batch_size`` checked against the device count, ``microbatch_size``
  (and a swept one) adapted by ``adapt_microbatch``; a note is printed when it changed.

  Raises:
    ValueError: ``batch_size`` (or a swept one) is not divisible by the device count.
  """
  import ml_collections
  config = ml_collections.ConfigDict(config.to_dict())
  n = jax.device_count()
  batches = list(config.sweep.get("batch_size", ())) or [config.batch_size]
  for b in batches:
    check_batch_size(b)
  micro = config.microbatch_size
  adapted = adapt_microbatch(micro, min(batches), n) if len(batches) == 1 else micro
  if "microbatch_size" in config.sweep:
    config.sweep.microbatch_size = tuple(adapt_microbatch(m, config.batch_size, n) for m in config.sweep.microbatch_size)
  if adapted != micro:
    if jax.process_index() == 0:
      print(f"note: microbatch_size={micro} adapted to {adapted} for {n} device(s) (a multiple of the device count "
            f"dividing batch_size={config.batch_size}; 0 = one pass)", flush=True)
    config.microbatch_size = adapted
  return config


def make_mesh() -> Mesh:
  """A 1D mesh over every device of every process."""
  return Mesh(np.asarray(jax.devices()), (DATA_AXIS,))


def data_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over 'data'."""
  return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def put_replicated(tree: Any, mesh: Mesh) -> Any:
  """Host numpy arrays (identical in every process) -> global replicated arrays."""
  sharding = replicated(mesh)
  return jax.tree.map(lambda a: jax.make_array_from_callback(np.shape(a), sharding, lambda idx: np.asarray(a)[idx]),
                      tree)


def put_batch(batch: Any, mesh: Mesh) -> Any:
  """This process's slice of a global batch -> a global array sharded over 'data'."""
  sharding = data_sharding(mesh)
  return jax.tree.map(lambda a: jax.make_array_from_process_local_data(sharding, np.asarray(a)), batch)


def process_slice(global_batch_size: int) -> slice:
  """Rows of a global batch this process feeds."""
  per = global_batch_size // jax.process_count()
  return slice(jax.process_index() * per, (jax.process_index() + 1) * per)


def check_batch_size(batch_size: int, name: str = "batch_size") -> None:
  n = jax.device_count()
  if batch_size % n:
    raise ValueError(f"{name}={batch_size} is not accepted on {n} devices; accepted values: multiples of {n} (the "
                     "batch is split evenly over the devices).")


def to_host(tree: Any) -> Any:
  """Fully replicated global arrays -> numpy (works in every process)."""
  return jax.tree.map(lambda a: np.asarray(a.addressable_data(0)) if isinstance(a, jax.Array) else np.asarray(a), tree)


__all__ = ["DATA_AXIS", "DistributedError", "agree_on_stop", "initialize_distributed", "adapt_microbatch", "make_mesh", "data_sharding", "replicated", "put_replicated",
           "put_batch", "process_slice", "check_batch_size", "to_host", "adapt_config"]
