"""A deterministic, sharded, resumable grain pipeline over any random-access source of records.

Used by the TFDS data sets (``jaxborders.data.tfds_source``) and the video data sets (``jaxborders.data.video``):

  source (selected record keys, padded for evaluation)
  -> shuffle, a new order each epoch (training)  -> repeat(num_epochs)
  -> preprocess(global index, record)             (pure: augmentation rng from (seed, epoch, index))
  -> drop to a whole number of global batches     (every process gets the same number of steps)
  -> shard: process p takes global positions p, p + P, ...
  -> batch -> [start_step:]                       (batches are indexable, so resuming is exact)
  -> ``read_threads`` threads per process, worker processes (grain ``mp_prefetch``) when ``worker_count > 0``.

``stream_from_pipelines`` turns a pipeline factory into the trainer's ``Stream``. grain is imported only when a
pipeline is built.

Example:
  >>> import numpy as np
  >>> records = list(range(10))
  >>> pipe = build_pipeline(records, lambda i, r: {'x': np.int64(r), 'corrupt': np.int32(0)}, batch_size=4,
  ...                       seed=0, train=False, num_epochs=1, shard_index=0, shard_count=1)
  >>> [b['x'].tolist() for b in pipe]
  [[0, 1, 2, 3], [4, 5, 6, 7]]
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from jaxborders.data.stream import Stream

_log = logging.getLogger(__name__)


class CorruptRecordError(RuntimeError):
  """A record could not be decoded; the message names the data set, split and record key."""


def _log_throughput(step: int, metrics: dict[str, float]) -> None:
  _log.info("data step %d: %s", step, ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))


class Pipeline(Iterator[dict[str, np.ndarray]]):
  """Iterator over batches with exact resume, corrupt-record counting and a throughput hook.

  ``get_state()`` is a small JSON-serialisable dict; ``set_state(state)`` (or ``set_state(step)``) moves the
  iterator to that step. Batches are indexable by step, so this is exact with or without worker processes,
  and a state saved with one worker count restores with another.

  Every ``log_every`` batches ``log_fn(step, {'data/images_per_sec': ..., 'data/num_corrupt': ...})`` is
  called (default: ``logging.info``); ``images_per_sec`` holds the last measurement.
  """

  def __init__(self, batches: Any, *, batch_size: int, steps_per_epoch: int, worker_count: int = 0,
               worker_buffer_size: int = 2, read_threads: int = 2, prefetch_batches: int = 2, start_step: int = 0,
               log_every: int = 100, log_fn: Callable[[int, dict[str, float]], None] | None = None,
               description: str = ""):
    self._batches = batches  # grain.MapDataset of batches, indexed by step.
    self.batch_size = batch_size
    self.steps_per_epoch = steps_per_epoch
    self.worker_count = worker_count
    self.worker_buffer_size = worker_buffer_size
    self.read_threads = read_threads
    self.prefetch_batches = prefetch_batches
    self.log_every = log_every
    self.log_fn = log_fn or _log_throughput
    self.description = description
    self.step = int(start_step)
    self.num_corrupt = 0
    self.num_records: int | None = None  # real (unpadded) records of the split, set by make_pipeline
    self.images_per_sec = float("nan")
    self._iterator: Iterator[dict[str, np.ndarray]] | None = None
    self._window_start = (self.step, time.perf_counter())

  def __len__(self) -> int:
    """Total number of batches (steps) of this process, from step 0."""
    return len(self._batches)

  def _make_iterator(self) -> Iterator[dict[str, np.ndarray]]:
    import grain
    # Elements here are whole batches: grain's default read-ahead (500 elements on 16 threads, sized for
    # records of a few KiB) would hold hundreds of batches, so threads and read-ahead are counted in batches.
    ds = self._batches[self.step:].to_iter_dataset(
        grain.ReadOptions(num_threads=self.read_threads, prefetch_buffer_size=self.prefetch_batches))
    if self.worker_count > 0:
      from absl import flags
      # grain's worker processes read absl flags; outside an absl app (pytest, notebooks) nothing parsed
      # them, so accept their defaults (an absl app parses its command line before this point anyway).
      if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
      ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=self.worker_count,
                                                       per_worker_buffer_size=self.worker_buffer_size))
    return iter(ds)

  def __iter__(self) -> Pipeline:
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    if self._iterator is None:
      self._iterator = self._make_iterator()
      self._window_start = (self.step, time.perf_counter())
    batch = next(self._iterator)
    self.step += 1
    self.num_corrupt += int(batch["corrupt"].sum())
    start_step, start_time = self._window_start
    if self.log_every and self.step - start_step >= self.log_every:
      elapsed = time.perf_counter() - start_time
      self.images_per_sec = (self.step - start_step) * self.batch_size / max(elapsed, 1e-9)
      self.log_fn(self.step, {"data/images_per_sec": self.images_per_sec, "data/num_corrupt": self.num_corrupt})
      self._window_start = (self.step, time.perf_counter())
    return batch

  def get_state(self) -> dict[str, int]:
    """``{'step': next step, 'num_corrupt': corrupt records so far}`` (JSON-serialisable)."""
    return {"step": self.step, "num_corrupt": self.num_corrupt}

  def set_state(self, state: dict[str, int] | int) -> None:
    """Continues from ``state`` (a ``get_state()`` dict or a step number)."""
    state = {"step": state} if isinstance(state, (int, np.integer)) else dict(state)
    if not 0 <= int(state["step"]) <= len(self):
      raise ValueError(f"state step={state['step']} is outside [0, {len(self)}] for {self.description}.")
    self.close()
    self.step = int(state["step"])
    self.num_corrupt = int(state.get("num_corrupt", 0))

  def close(self) -> None:
    """Stops worker processes (a later ``next`` restarts them at the current step)."""
    iterator, self._iterator = self._iterator, None
    if iterator is not None and hasattr(iterator, "close"):
      iterator.close()


def build_pipeline(source: Sequence[Any], preprocess: Callable[[int, Any], dict[str, np.ndarray]], *,
                   batch_size: int, seed: int, train: bool, num_epochs: int | None, shard_index: int,
                   shard_count: int, worker_count: int = 0, worker_buffer_size: int = 2, read_threads: int = 2,
                   prefetch_batches: int = 2, start_step: int = 0, log_every: int = 100,
                   log_fn: Callable[[int, dict[str, float]], None] | None = None, description: str = "") -> Pipeline:
  """The grain pipeline of any random-access ``source`` (TFDS records, video clips, ...).

  Training shuffles each epoch (grain's index shuffle, a new permutation per epoch) and drops the last partial
  global batch; evaluation keeps the order and expects ``source`` padded to a multiple of
  ``batch_size * shard_count`` (``eval_length``). ``preprocess(global_index, record)`` must be a pure function.
  ``batch_size`` is per process. Each process (and each of its ``worker_count`` workers) prepares
  ``read_threads`` batches in parallel threads and holds up to ``prefetch_batches`` (+ ``worker_buffer_size``
  per worker) ready batches: host memory ~ max(worker_count, 1) x (prefetch_batches + worker_buffer_size) x
  batch bytes (a 256 x 224 x 224 x 3 float32 batch is 154 MB).
  """
  import grain
  for arg, value in (("batch_size", batch_size), ("shard_count", shard_count),
                     ("prefetch_batches", prefetch_batches)):
    if value < 1:
      raise ValueError(f"{arg}={value} must be >= 1.")
  if not 0 <= shard_index < shard_count:
    raise ValueError(f"shard_index={shard_index} must be in [0, shard_count={shard_count}).")
  if worker_count < 0:
    raise ValueError(f"worker_count={worker_count} must be >= 0 (0 reads in the calling process).")
  if read_threads < 0:
    raise ValueError(f"read_threads={read_threads} must be >= 0 (0 prepares batches in the iterating thread).")
  if num_epochs is not None and num_epochs < 1:
    raise ValueError(f"num_epochs={num_epochs} must be >= 1 or None (repeat forever).")
  if not 0 <= seed < 2**32:
    raise ValueError(f"seed={seed} must be in [0, 2**32).")
  epoch_length = len(source)
  global_batch = batch_size * shard_count
  if epoch_length < global_batch and train:
    raise ValueError(f"{description}: {epoch_length} records cannot fill one global batch of "
                     f"{batch_size} x {shard_count} processes.")
  ds = grain.MapDataset.source(source)
  if train:
    # grain reshuffles epoch e with seed + e, so seeds s and s + 1 would share orders one epoch apart; a hashed
    # seed keeps the runs of a seed sweep independent.
    ds = ds.shuffle(seed=int(np.random.SeedSequence([seed, 0x5A0FF1E]).generate_state(1)[0]))
  ds = ds.repeat(num_epochs) if (num_epochs or 0) != 1 else ds
  ds = ds.map_with_index(preprocess)
  if num_epochs is not None:
    # Every process must run the same number of steps (collectives would hang otherwise).
    ds = ds[:len(ds) // global_batch * global_batch]
  ds = ds[shard_index::shard_count]
  ds = ds.batch(batch_size, drop_remainder=True)
  steps_per_epoch = max(epoch_length // global_batch, 1)
  return Pipeline(ds, batch_size=batch_size, steps_per_epoch=steps_per_epoch, worker_count=worker_count,
                  worker_buffer_size=worker_buffer_size, read_threads=read_threads, prefetch_batches=prefetch_batches,
                  start_step=start_step, log_every=log_every, log_fn=log_fn,
                  description=description)


def eval_length(num_records: int, batch_size: int, shard_count: int) -> int:
  """Records after padding so that every process gets the same whole number of batches."""
  global_batch = batch_size * shard_count
  return -(-num_records // global_batch) * global_batch


def process_shard(shard_index: int | None, shard_count: int | None) -> tuple[int, int]:
  """``(shard_index, shard_count)``, each defaulting to this process's index / the process count."""
  if shard_index is None or shard_count is None:
    import jax
    shard_index = jax.process_index() if shard_index is None else shard_index
    shard_count = jax.process_count() if shard_count is None else shard_count
  return int(shard_index), int(shard_count)


def stream_from_pipelines(make: Callable[..., Pipeline], split: str, seed: int, num_examples: int,
                          image_shape: tuple[int, ...]) -> Any:
  """A ``Stream`` over ``make(train=..., seed=..., batch_size=..., shard_index=..., shard_count=...,
  num_epochs=...)``: epoch e of training is steps [e * steps_per_epoch, (e + 1) * steps_per_epoch) of one
  endless pipeline (exact resume from any step: ``batches(..., start=k)`` begins at step k of the epoch);
  evaluation splits are one padded pass with ``mask``."""
  train = split == "train"
  cache: dict[tuple[int, int, int], Pipeline] = {}

  def batches(epoch: int, batch_size: int, process_index: int, process_count: int, start: int = 0):
    # ``start``: first step within the epoch (the trainer resumes mid-epoch without reading skipped batches).
    if batch_size % process_count:
      raise ValueError(f"batch_size={batch_size} must be divisible by the process count {process_count}.")
    key = (batch_size, process_index, process_count)
    if key not in cache:
      cache[key] = make(train=train, seed=seed, batch_size=batch_size // process_count, shard_index=process_index,
                        shard_count=process_count, num_epochs=None if train else 1)
    pipe = cache[key]
    steps = pipe.steps_per_epoch if train else len(pipe)
    start = start if train else 0
    pipe.set_state(epoch * steps + start if train else 0)
    for _ in range(start, steps):
      batch = next(pipe)
      yield {"image": batch["image"], "label": batch["label"], "mask": batch["mask"]}

  return Stream(batches=batches, num_examples=num_examples, image_shape=image_shape)


__all__ = ["CorruptRecordError", "Pipeline", "build_pipeline", "eval_length", "process_shard", "stream_from_pipelines"]
