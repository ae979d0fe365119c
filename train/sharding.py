"""Data parallelism with ``jax.jit`` over a one-axis ``Mesh`` ('data'): batch sharded, parameters replicated.

Works unchanged from one CPU device to many processes: every process holds the same replicated parameters
and feeds its share of each global batch (``jax.make_array_from_process_local_data``). BatchNorm statistics
are computed over the global batch because the batch axis is one logical axis under SPMD.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def initialize_distributed(coordinator_address: str = "", num_processes: int = 0, process_id: int = -1) -> None:
  """Calls ``jax.distributed.initialize`` when a coordinator is given (argument or env), else nothing.

  Environment fallbacks: ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``.
  """
  address = coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS", "")
  if not address:
    return
  num = num_processes or int(os.environ.get("JAX_NUM_PROCESSES", "0"))
  pid = process_id if process_id >= 0 else int(os.environ.get("JAX_PROCESS_ID", "-1"))
  if num < 1 or pid < 0:
    raise ValueError(f"distributed: coordinator_address={address!r} needs num_processes >= 1 and process_id >= 0 "
                     f"(flags or JAX_NUM_PROCESSES / JAX_PROCESS_ID), got {num} and {pid}.")
  jax.distributed.initialize(coordinator_address=address, num_processes=num, process_id=pid)


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
    raise ValueError(f"{name}={batch_size} must be divisible by the number of devices ({n}) for data parallelism.")


def to_host(tree: Any) -> Any:
  """Fully replicated global arrays -> numpy (works in every process)."""
  return jax.tree.map(lambda a: np.asarray(a.addressable_data(0)) if isinstance(a, jax.Array) else np.asarray(a), tree)


__all__ = ["DATA_AXIS", "initialize_distributed", "make_mesh", "data_sharding", "replicated", "put_replicated",
           "put_batch", "process_slice", "check_batch_size", "to_host"]
