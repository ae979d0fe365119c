"""The data side of a run: its splits, one epoch of training (in memory or streamed), and evaluation.

``InMemoryEpochs`` and ``StreamingEpochs`` share one interface, ``run(run, epoch, num_steps, progress)``, so the
epoch loop in ``train/run.py`` is written once:

* in memory, the data set lives on device and an epoch is one compiled ``lax.scan`` (compiled before it is timed,
  so throughput excludes compilation);
* streamed, batches come from a ``Stream`` and each is one call of the same jitted ``train_step``; the position in
  the data is a function of (seed, step), so a run resumed from a mid-epoch checkpoint starts at the next batch.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from train import config as config_lib
from train import data as data_lib
from train import sharding as sharding_lib
from train import signals
from train.errors import ConfigError, config_errors
from train.logs import echo
from train.monitors import CheckpointCadence
from train.progress import Progress
from train.steps import Programs


@dataclasses.dataclass
class RunData:
  """A run's splits and the step counts that follow from them."""

  train: dict[str, np.ndarray] | data_lib.Stream
  evals: dict[str, dict[str, np.ndarray] | data_lib.Stream]
  image_shape: tuple[int, ...]
  steps_per_epoch: int
  total_steps: int
  num_epochs: int

  @property
  def streaming(self) -> bool:
    return isinstance(self.train, data_lib.Stream)


def load_data(config: ml_collections.ConfigDict, seed: int) -> RunData:
  """Loads every split of ``config.data`` and derives steps per epoch, total steps and epochs."""
  data_cfg = data_lib.source_config(config.data)
  source = data_lib.get_source(config.data.source)
  train = data_lib.load_split(data_cfg, "train", seed)
  evals = {s: data_lib.load_split(data_cfg, s, seed) for s in source.SPLITS if s != "train"}
  streaming = isinstance(train, data_lib.Stream)
  image_shape = tuple(train.image_shape) if streaming else tuple(train["image"].shape[1:])
  if not streaming:
    config_errors(config_lib.check_labels, config, train["label"])  # trust: labels vs model.num_classes
  n_train = train.num_examples if streaming else train["label"].shape[0]
  steps_per_epoch = n_train // config.batch_size
  if steps_per_epoch < 1:
    raise ConfigError(f"batch_size={config.batch_size} is larger than the training set ({n_train} examples).")
  total_steps = config.num_steps if config.num_steps > 0 else config.num_epochs * steps_per_epoch
  return RunData(train, evals, image_shape, steps_per_epoch, total_steps, math.ceil(total_steps / steps_per_epoch))


def _stack_to_host(per_step: list[dict[str, jax.Array]]) -> dict[str, np.ndarray]:
  return sharding_lib.to_host(jax.tree.map(lambda *v: jnp.stack(v), *per_step))


class InMemoryEpochs:
  """Epochs over a training set held on device (replicated); the order is ``epoch_order(data_key, epoch)``."""

  streaming = False

  def __init__(self, programs: Programs, train: dict[str, np.ndarray], seed: int, mesh: Any):
    self.programs = programs
    self.images = sharding_lib.put_replicated(train["image"], mesh)
    self.labels = sharding_lib.put_replicated(train["label"], mesh)
    self.data_key = jax.device_put(jax.random.fold_in(jax.random.PRNGKey(seed), 1), sharding_lib.replicated(mesh))
    self.compiled: set[int] = set()

  def first_epoch(self, run: Any, steps_per_epoch: int) -> int:
    return run.epoch  # completed epochs, from the checkpoint

  def run(self, run: Any, epoch: int, num_steps: int, progress: Progress) -> tuple[dict[str, np.ndarray], int]:
    """Trains ``num_steps`` steps of ``epoch``; returns the per-step metrics and how many were already logged (0)."""
    args = (run.state, self.images, self.labels, self.data_key, jnp.int32(epoch))
    if num_steps not in self.compiled:  # compile first (the call below reuses it) so that the timing excludes it
      self.programs.epoch.lower(*args, num_steps=num_steps).compile()
      self.compiled.add(num_steps)
    t0 = time.time()
    run.state, step_metrics = self.programs.epoch(*args, num_steps=num_steps)
    step_metrics = sharding_lib.to_host(step_metrics)
    progress.advance(num_steps, time.time() - t0)
    return step_metrics, 0


def stream_batches(stream: data_lib.Stream, epoch: int, batch_size: int, start: int) -> Any:
  """This process's share of an epoch's global batches, from step ``start`` of the epoch on."""
  args = (epoch, batch_size, jax.process_index(), jax.process_count())
  if start:
    try:
      return stream.batches(*args, start=start)  # the pipelines seek: nothing skipped is read
    except TypeError:
      pass  # a stream without ``start``: read and drop the first batches (same data, slower)
  return itertools.islice(stream.batches(*args), start, None)


class StreamingEpochs:
  """Epochs over a ``Stream``, batch by batch, with checkpoints inside the epoch (``checkpoint.every_n_steps``)."""

  streaming = True

  def __init__(self, config: ml_collections.ConfigDict, programs: Programs, train: data_lib.Stream, mesh: Any):
    self.config, self.programs, self.train, self.mesh = config, programs, train, mesh
    self.cadence = CheckpointCadence(config.checkpoint.every_n_epochs, config.checkpoint.every_n_steps)
    self.compiled = False

  def first_epoch(self, run: Any, steps_per_epoch: int) -> int:
    # The epoch (and the batch within it) follows from the step; this also covers a run stopped inside an epoch
    # by num_steps and resumed with a larger one.
    return int(run.state.step) // steps_per_epoch

  def run(self, run: Any, epoch: int, num_steps: int, progress: Progress) -> tuple[dict[str, np.ndarray], int]:
    """Trains the rest of ``epoch`` (up to ``num_steps`` steps in all); returns the per-step metrics of this call and
    how many of them were already written to the metric log (at mid-epoch checkpoints)."""
    config = self.config
    step0 = int(run.state.step)
    offset = step0 - epoch * run.steps_per_epoch  # steps of this epoch done before a mid-epoch resume
    per_step: list[dict[str, jax.Array]] = []
    written = 0
    t_prev = time.time()
    for batch in itertools.islice(stream_batches(self.train, epoch, config.batch_size, offset), num_steps - offset):
      global_batch = sharding_lib.put_batch({"image": batch["image"], "label": batch["label"]}, self.mesh)
      run.state, m = self.programs.batch_step(run.state, global_batch)
      per_step.append(m)
      step = step0 + len(per_step)  # host-side count: no device sync per step
      progress.advance(1, time.time() - t_prev, timed=self.compiled)  # the first call compiles
      self.compiled = True
      if config.log.every_n_steps > 0 and step % config.log.every_n_steps == 0:
        echo(f"{run.label}epoch {epoch + 1} step {step} loss {float(sharding_lib.to_host(m['loss'])):.4f}")
      if self.cadence.inside_epoch(step, offset + len(per_step), num_steps):
        written = self._flush(run, per_step, written, step0, epoch)  # never save a NaN state
        run.save()
      if config.debug.step_sleep_s:
        time.sleep(config.debug.step_sleep_s)
      t_prev = time.time()
      if sharding_lib.agree_on_stop(signals._STOP_SIGNAL):  # trust: every process stops at the same step
        break
    if offset + len(per_step) < num_steps:
      if not signals.stop_requested():
        raise ValueError(f"data.source={config.data.source!r}: the training stream ended after "
                         f"{offset + len(per_step)} of {num_steps} steps of epoch {epoch}.")
      self._flush(run, per_step, written, step0, epoch)
      run.preempt()  # stopped inside the epoch: the checkpoint's epoch still counts completed epochs only
    return _stack_to_host(per_step), written

  @staticmethod
  def _flush(run: Any, per_step: list[dict[str, jax.Array]], written: int, step0: int, epoch: int) -> int:
    """Checks and logs the steps not logged yet; returns the new count of logged steps."""
    if per_step[written:]:
      done = _stack_to_host(per_step[written:])
      run.check_finite(done["loss"], step0 + written, epoch)
      run.writer.write_steps(step0 + written, done, epoch + 1)
    return len(per_step)


def _pad_split(split: dict[str, np.ndarray], eval_batch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  n = split["label"].shape[0]
  padded = math.ceil(n / eval_batch) * eval_batch
  image = np.zeros((padded, *split["image"].shape[1:]), np.float32)
  image[:n] = split["image"]
  label = np.zeros((padded,), np.int32)
  label[:n] = split["label"]
  mask = np.zeros((padded,), np.float32)
  mask[:n] = 1.0
  return image, label, mask


def _round_up(n: int, k: int) -> int:
  return math.ceil(n / k) * k


class Evaluator:
  """Mean loss and accuracy of parameters on the evaluation splits (padded in memory, or streamed with masks)."""

  def __init__(self, config: ml_collections.ConfigDict, evals: dict[str, Any], programs: Programs, mesh: Any):
    self.config, self.evals, self.programs, self.mesh = config, evals, programs, mesh
    eval_batch = config.eval.batch_size or config.batch_size
    self.eval_batch = math.ceil(eval_batch / jax.device_count()) * jax.device_count()
    in_memory = {s: d for s, d in evals.items() if not isinstance(d, data_lib.Stream)}
    self.batches = {s: min(self.eval_batch, _round_up(d["label"].shape[0], jax.device_count()))
                    for s, d in in_memory.items()}
    self.arrays = {s: sharding_lib.put_replicated(_pad_split(d, self.batches[s]), mesh) for s, d in in_memory.items()}

  def __call__(self, params: Any, batch_stats: Any, splits: list[str]) -> dict[str, float]:
    """``{'<split>/<metric>': value}`` for every split in ``splits`` and metric in ``eval.metrics``."""
    out = {}
    for s in splits:
      if isinstance(self.evals[s], data_lib.Stream):
        m = self._stream(params, batch_stats, self.evals[s])
      else:
        image, label, mask = self.arrays[s]
        m = self.programs.evaluate(params, batch_stats, image, label, mask, eval_batch=self.batches[s])
      out.update({f"{s}/{k}": float(v) for k, v in sharding_lib.to_host(m).items() if k in self.config.eval.metrics})
    return out

  def _stream(self, params: Any, batch_stats: Any, stream: data_lib.Stream) -> dict[str, float]:
    sums = None
    for batch in stream.batches(0, self.eval_batch, jax.process_index(), jax.process_count()):
      global_batch = sharding_lib.put_batch({k: batch[k] for k in ("image", "label", "mask") if k in batch}, self.mesh)
      out = self.programs.eval_sums(params, batch_stats, global_batch)
      sums = out if sums is None else jax.tree.map(jnp.add, sums, out)  # stays on device: no sync per batch
    if sums is None:
      raise ValueError(f"data.source={self.config.data.source!r}: an evaluation stream yielded no batches.")
    sums = sharding_lib.to_host(sums)
    count = float(sums["count"])
    return {"loss": float(sums["loss"]) / count, "accuracy": float(sums["correct"]) / count}


__all__ = ["RunData", "load_data", "InMemoryEpochs", "StreamingEpochs", "Evaluator", "stream_batches"]
