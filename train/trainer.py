"""The trainer: ``train_and_evaluate(config, workdir)`` runs every sweep point × seed of a config.

Design (see ``train/README.md`` for the config schema and how data sources and reports plug in):

* ``train_step`` is pure and module-level: ``(state, batch) -> (state, metrics)`` with the model and the
  optax transform bound as static arguments. Everything is ``jax.jit`` over a 1D 'data' mesh: batches are
  sharded, parameters replicated (``train/sharding.py``).
* In-memory sources live on device; one epoch is one jitted ``lax.scan`` of ``train_step`` over batches
  (the order is a permutation from ``fold_in(seed_key, epoch)``), evaluation of a split is one jitted call.
  Compiled programs are cached per (model, optimizer, shapes), so seeds after the first compile nothing.
* Streaming sources call the same jitted ``train_step`` per batch.
* Resume is exact: parameters, optimizer state, RNG, early-stopping and plateau counters are checkpointed;
  the data order and the dropout RNG are functions of (seed, epoch / step).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import itertools
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import flax
import flax.serialization
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from train import checkpointing
from train import config as config_lib
from train import data as data_lib
from train import parallel as parallel_lib
from train import sharding as sharding_lib


class ConfigError(ValueError):
  """The config cannot run (bad keys, values, or a model/data mismatch); raised before training."""


class NonFiniteLossError(FloatingPointError):
  """The training loss became NaN or Inf; the message names the step."""


class Preempted(Exception):
  """SIGTERM/SIGINT arrived; a checkpoint was saved and the process should exit 0."""


# ----------------------------------------------------------------------------------------------------------
# State and the pure steps.


@flax.struct.dataclass
class TrainState:
  """Everything that changes during training (a pytree of arrays, checkpointed as a whole)."""

  step: jax.Array  # int32 scalar: global step
  params: Any
  batch_stats: Any  # {} for models without BatchNorm
  opt_state: Any
  lr_scale: jax.Array  # float32 scalar: multiplies the updates (reduce-on-plateau acts here)
  rng: jax.Array  # uint32 (2,) raw PRNG key; the dropout key of step t is fold_in(rng, t)


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Per-example softmax cross-entropy (float32)."""
  return optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)


def _apply(model: Any, params: Any, batch_stats: Any, images: jax.Array, train: bool,
           rng: jax.Array | None = None) -> tuple[jax.Array, Any]:
  variables = {"params": params}
  rngs = {"dropout": rng} if rng is not None else None
  if batch_stats:
    variables["batch_stats"] = batch_stats
    if train:
      out, updated = model.apply(variables, images, train=True, mutable=["batch_stats"], rngs=rngs)
      return out, updated["batch_stats"]
  return model.apply(variables, images, train=train, rngs=rngs), batch_stats


def train_step(state: TrainState, batch: dict[str, jax.Array], *, model: Any,
               tx: optax.GradientTransformation, nan_at_step: int = -1,
               microbatch_size: int = 0) -> tuple[TrainState, dict[str, jax.Array]]:
  """One optimisation step on a (global, sharded) batch. Pure: bind ``model``/``tx`` and ``jax.jit`` it.

  Args:
    state: the current ``TrainState``.
    batch: ``{'image': (B, H, W, C) float32, 'label': (B,) int32}``.
    model: a flax module (static).
    tx: the optax transform (static).
    nan_at_step: test hook; the loss of this global step is multiplied by NaN (``-1`` off).
    microbatch_size: ``0`` (or ``B``) computes the gradient in one pass; otherwise the batch is cut into
      ``B // microbatch_size`` microbatches (global sizes; each spread over all devices) whose summed
      gradients make the same update. Saves activation memory; on CPU it also keeps a small net's activations
      in cache, which is faster than one large pass. Models with BatchNorm are rejected by the trainer (the
      statistics would be per microbatch).

  Returns:
    The new state and ``{'loss', 'accuracy'}`` of the batch (before the update).
  """
  dropout_rng = jax.random.fold_in(state.rng, state.step)
  batch_size = batch["label"].shape[0]
  nan_scale = jnp.where(state.step == nan_at_step, jnp.nan, 1.0) if nan_at_step >= 0 else 1.0

  def loss_fn(params, images, labels, rng):
    # Summed (not mean) loss over these examples, scaled by the whole batch: microbatch gradients add up.
    logits, batch_stats = _apply(model, params, state.batch_stats, images, True, rng)
    loss = jnp.sum(cross_entropy(logits, labels)) / batch_size * nan_scale
    return loss, (jnp.sum(jnp.argmax(logits, -1) == labels), batch_stats)

  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
  if not microbatch_size or microbatch_size >= batch_size:
    (loss, (correct, batch_stats)), grads = grad_fn(state.params, batch["image"], batch["label"], dropout_rng)
  else:
    num_micro = batch_size // microbatch_size
    # Example j of microbatch i is row j * num_micro + i: with the batch sharded in contiguous blocks over the
    # devices, every microbatch takes the same number of rows from each device (no data movement).
    split = lambda a: jnp.swapaxes(a.reshape(microbatch_size, num_micro, *a.shape[1:]), 0, 1)

    def body(carry, xs):
      grads, loss, correct = carry
      i, images, labels = xs
      (l, (c, _)), g = grad_fn(state.params, images, labels, jax.random.fold_in(dropout_rng, i))
      return (jax.tree.map(jnp.add, grads, g), loss + l, correct + c), None

    zeros = (jax.tree.map(jnp.zeros_like, state.params), jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32))
    xs = (jnp.arange(num_micro), split(batch["image"]), split(batch["label"]))
    (grads, loss, correct), _ = jax.lax.scan(body, zeros, xs)
    batch_stats = state.batch_stats  # BatchNorm models cannot use microbatches (checked before training)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  updates = jax.tree.map(lambda u: u * state.lr_scale.astype(u.dtype), updates)
  params = optax.apply_updates(state.params, updates)
  accuracy = correct.astype(jnp.float32) / batch_size
  new_state = state.replace(step=state.step + 1, params=params, batch_stats=batch_stats, opt_state=opt_state)
  return new_state, {"loss": loss, "accuracy": accuracy}


def epoch_order(data_key: jax.Array, epoch: jax.Array, n: int, batch_size: int, num_steps: int,
                shuffle: bool) -> jax.Array:
  """Example indices of an epoch's batches, ``(num_steps, batch_size)``: a function of (seed, epoch) only.

  The order is ``permutation(fold_in(data_key, epoch))`` (the stored order when not ``shuffle``); the last
  partial batch is dropped (like PyTorch's ``drop_last``).
  """
  order = jax.random.permutation(jax.random.fold_in(data_key, epoch), n) if shuffle else jnp.arange(n)
  return order[: num_steps * batch_size].reshape(num_steps, batch_size)


def indexed_step(state: TrainState, images: jax.Array, labels: jax.Array, ix: jax.Array, *, model: Any,
                 tx: optax.GradientTransformation, batch_sharding: Any, nan_at_step: int = -1,
                 microbatch_size: int = 0):
  """``train_step`` on the batch ``ix`` of an on-device data set (gathered on device, sharded over 'data')."""
  batch = {"image": images[ix], "label": labels[ix]}
  batch = jax.lax.with_sharding_constraint(batch, batch_sharding)
  return train_step(state, batch, model=model, tx=tx, nan_at_step=nan_at_step, microbatch_size=microbatch_size)


def train_epoch(state: TrainState, images: jax.Array, labels: jax.Array, data_key: jax.Array, epoch: jax.Array, *,
                model: Any, tx: optax.GradientTransformation, batch_size: int, num_steps: int, shuffle: bool,
                batch_sharding: Any, nan_at_step: int = -1,
                microbatch_size: int = 0) -> tuple[TrainState, dict[str, jax.Array]]:
  """``num_steps`` steps of ``train_step`` over an on-device data set, as one ``lax.scan``.

  Returns the new state and per-step metrics (arrays of ``num_steps``).
  """
  index = epoch_order(data_key, epoch, images.shape[0], batch_size, num_steps, shuffle)
  body = functools.partial(indexed_step, images=images, labels=labels, model=model, tx=tx,
                           batch_sharding=batch_sharding, nan_at_step=nan_at_step, microbatch_size=microbatch_size)
  return jax.lax.scan(lambda s, ix: body(s, ix=ix), state, index)


def evaluate(params: Any, batch_stats: Any, images: jax.Array, labels: jax.Array, mask: jax.Array, *, model: Any,
             eval_batch: int, batch_sharding: Any) -> dict[str, jax.Array]:
  """Mean loss and accuracy over the real (``mask``) examples of a padded split, as one ``lax.scan``."""
  nb = images.shape[0] // eval_batch

  def body(carry, xs):
    im, lb, m = jax.lax.with_sharding_constraint(xs, batch_sharding)
    logits, _ = _apply(model, params, batch_stats, im, False)
    loss = jnp.sum(cross_entropy(logits, lb) * m)
    correct = jnp.sum((jnp.argmax(logits, -1) == lb) * m)
    return carry, (loss, correct)

  xs = (images.reshape(nb, eval_batch, *images.shape[1:]), labels.reshape(nb, eval_batch),
        mask.reshape(nb, eval_batch))
  _, (loss, correct) = jax.lax.scan(body, None, xs)
  count = jnp.sum(mask)
  return {"loss": jnp.sum(loss) / count, "accuracy": jnp.sum(correct) / count}


def eval_batch_sums(params: Any, batch_stats: Any, batch: dict[str, jax.Array], *, model: Any) -> dict[str, jax.Array]:
  """Summed loss, correct count and example count of one (global, sharded) streamed eval batch.

  Sums rather than means so that batches of any padding combine exactly; ``mask`` (1 real, 0 padding or a
  skipped record) defaults to all ones.
  """
  logits, _ = _apply(model, params, batch_stats, batch["image"], False)
  mask = batch["mask"] if "mask" in batch else jnp.ones(batch["label"].shape, jnp.float32)
  return {"loss": jnp.sum(cross_entropy(logits, batch["label"]) * mask),
          "correct": jnp.sum((jnp.argmax(logits, -1) == batch["label"]) * mask), "count": jnp.sum(mask)}


# ----------------------------------------------------------------------------------------------------------
# Optimizer and schedule.


def make_schedule(config: ml_collections.ConfigDict, steps_per_epoch: int, total_steps: int) -> optax.Schedule:
  """Per-step learning rate (the plateau schedule is constant here and acts through ``lr_scale``)."""
  lr, s = config.optimizer.learning_rate, config.schedule
  if s.name in ("constant", "plateau"):
    return optax.constant_schedule(lr)
  if s.name == "step":
    return optax.piecewise_constant_schedule(lr, {int(e * steps_per_epoch): s.step_factor for e in s.step_epochs})
  warmup = int(round(s.warmup_epochs * steps_per_epoch))
  return optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(total_steps, warmup + 1))


def make_optimizer(config: ml_collections.ConfigDict, steps_per_epoch: int, total_steps: int) -> optax.GradientTransformation:
  """The optax transform. sgd/adadelta: L2 added to the gradient first (PyTorch's ``weight_decay``)."""
  o = config.optimizer
  lr = make_schedule(config, steps_per_epoch, total_steps)
  parts = [optax.clip_by_global_norm(o.grad_clip_norm)] if o.grad_clip_norm > 0 else []
  if o.name == "adamw":
    parts.append(optax.adamw(lr, b1=o.b1, b2=o.b2, eps=o.eps, weight_decay=o.weight_decay))
  else:
    if o.weight_decay:
      parts.append(optax.add_decayed_weights(o.weight_decay))
    if o.name == "sgd":
      parts.append(optax.sgd(lr, momentum=o.momentum or None, nesterov=o.nesterov))
    else:
      parts.append(optax.adadelta(lr, rho=o.rho, eps=o.eps))
  return optax.chain(*parts)


# ----------------------------------------------------------------------------------------------------------
# Compiled programs, cached so that repeated runs (seeds, resumed sweeps) compile nothing.


@dataclasses.dataclass
class Programs:
  init: Callable[[jax.Array], TrainState]
  epoch: Callable[..., Any]
  evaluate: Callable[..., Any]
  batch_step: Callable[..., Any]  # streams: train_step on a host-fed global batch
  eval_sums: Callable[..., Any]  # streams: eval_batch_sums


_PROGRAMS: dict[str, Programs] = {}


def _program_key(config: ml_collections.ConfigDict, *extra: Any) -> str:
  sections = {k: config[k].to_dict() for k in ("model", "optimizer", "schedule", "precision")}
  return json.dumps([sections, config.batch_size, config.microbatch_size, config.data.shuffle, config.debug.nan_at_step,
                     *map(str, extra)],
                    sort_keys=True, default=str)


def build_programs(config: ml_collections.ConfigDict, model: Any, tx: optax.GradientTransformation,
                   image_shape: tuple[int, ...], steps_per_epoch: int, total_steps: int, mesh: Any) -> Programs:
  key = _program_key(config, image_shape, steps_per_epoch, total_steps, mesh.devices.shape, jax.process_count())
  if key in _PROGRAMS:
    return _PROGRAMS[key]
  rep = sharding_lib.replicated(mesh)
  batch_sharding = sharding_lib.data_sharding(mesh)

  def init(rng):
    variables = model.init({"params": jax.random.fold_in(rng, 0), "dropout": jax.random.fold_in(rng, 1)},
                           jnp.zeros((1, *image_shape), jnp.float32), train=False)
    params = variables["params"]
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, batch_stats=variables.get("batch_stats", {}),
                      opt_state=tx.init(params), lr_scale=jnp.ones((), jnp.float32),
                      rng=jax.random.fold_in(rng, 2))

  nan = config.debug.nan_at_step
  micro = config.microbatch_size
  epoch = functools.partial(train_epoch, model=model, tx=tx, batch_size=config.batch_size, shuffle=config.data.shuffle,
                            batch_sharding=batch_sharding, nan_at_step=nan, microbatch_size=micro)
  programs = Programs(
      init=jax.jit(init, out_shardings=rep),
      # num_steps is static: the full epoch length, and at most one shorter last epoch, compile.
      epoch=jax.jit(epoch, static_argnames=("num_steps",), donate_argnums=(0,), out_shardings=(rep, rep)),
      evaluate=jax.jit(functools.partial(evaluate, model=model, batch_sharding=batch_sharding),
                       static_argnames=("eval_batch",), out_shardings=rep),
      # jit traces lazily: in-memory runs never compile these two.
      batch_step=jax.jit(functools.partial(train_step, model=model, tx=tx, nan_at_step=nan, microbatch_size=micro),
                         donate_argnums=(0,),
                         out_shardings=(rep, rep)),
      eval_sums=jax.jit(functools.partial(eval_batch_sums, model=model), out_shardings=rep),
  )
  _PROGRAMS[key] = programs
  return programs


# ----------------------------------------------------------------------------------------------------------
# Logging.


class MetricWriter:
  """JSONL + TensorBoard (tensorboardX) in the run dir; only process 0 writes."""

  def __init__(self, run_dir: str, tensorboard: bool, resume_step: int | None):
    self.enabled = jax.process_index() == 0
    self.path = os.path.join(run_dir, "metrics.jsonl")
    self.tb = None
    if not self.enabled:
      return
    if resume_step is not None and os.path.exists(self.path):
      # Drop lines past the checkpoint we resume from, so the log reads like an uninterrupted run.
      with open(self.path) as f:
        keep = [line for line in f if line.strip() and json.loads(line).get("step", 0) <= resume_step]
      with open(self.path, "w") as f:
        f.writelines(keep)
    elif os.path.exists(self.path):
      os.remove(self.path)
    if tensorboard:
      from tensorboardX import SummaryWriter
      self.tb = SummaryWriter(os.path.join(run_dir, "tb"))

  def write(self, step: int, values: dict[str, float], **extra: Any) -> None:
    if not self.enabled:
      return
    with open(self.path, "a") as f:
      f.write(json.dumps({"step": int(step), **extra, **{k: float(v) for k, v in values.items()}}) + "\n")
    if self.tb is not None:
      for k, v in values.items():
        self.tb.add_scalar(k, float(v), int(step))

  def write_steps(self, first_step: int, values: dict[str, np.ndarray], epoch: int) -> None:
    if not self.enabled:
      return
    n = len(next(iter(values.values())))
    with open(self.path, "a") as f:
      for i in range(n):
        row = {"step": first_step + i + 1, "epoch": epoch, **{f"train/{k}": float(v[i]) for k, v in values.items()}}
        f.write(json.dumps(row) + "\n")
    if self.tb is not None:
      for k, v in values.items():
        for i in range(n):
          self.tb.add_scalar(f"train/{k}", float(v[i]), first_step + i + 1)

  def close(self) -> None:
    if self.tb is not None:
      self.tb.close()


def _print(*args: Any) -> None:
  if jax.process_index() == 0:
    print(*args, flush=True)


def params_fingerprint(params: Any) -> str:
  """sha256 over the parameters' paths, dtypes, shapes and bytes: equal iff bit-identical."""
  h = hashlib.sha256()
  for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
    a = np.asarray(leaf)
    h.update(f"{jax.tree_util.keystr(path)}:{a.dtype}:{a.shape}".encode())
    h.update(np.ascontiguousarray(a).tobytes())
  return h.hexdigest()


# ----------------------------------------------------------------------------------------------------------
# Signals.

_STOP_SIGNAL: list[int] = []


def _on_signal(signum: int, frame: Any) -> None:
  del frame
  _STOP_SIGNAL.append(signum)


def install_signal_handlers() -> None:
  """SIGTERM/SIGINT set a flag; the loop saves a checkpoint at the next epoch (or step) end and exits."""
  for sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(sig, _on_signal)


# ----------------------------------------------------------------------------------------------------------
# One run.


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


def check_model_fits(model: Any, image_shape: tuple[int, ...], model_name: str) -> None:
  """``jax.eval_shape`` of init + forward: a model/data mismatch fails here, before anything is allocated."""
  try:
    jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, *image_shape), jnp.float32), train=False))
  except (ValueError, TypeError) as e:
    raise ConfigError(f"the config does not fit the model: model {model_name!r} cannot take images of shape "
                      f"{tuple(image_shape)} (H, W, C): {e}") from None


def _better(value: float, best: float | None, mode: str) -> bool:
  if best is None:
    return True
  return value < best if mode == "min" else value > best


def _stream_batches(stream: data_lib.Stream, epoch: int, batch_size: int, start: int) -> Any:
  """This process's share of an epoch's global batches, from step ``start`` of the epoch on."""
  args = (epoch, batch_size, jax.process_index(), jax.process_count())
  if start:
    try:
      return stream.batches(*args, start=start)  # the pipelines seek: nothing skipped is read
    except TypeError:
      pass  # a stream without ``start``: read and drop the first batches (same data, slower)
  return itertools.islice(stream.batches(*args), start, None)


def _is_finished(run_dir: str) -> bool:
  try:
    with open(os.path.join(run_dir, "summary.json")) as f:
      return json.load(f).get("status") == "finished"
  except (OSError, ValueError):
    return False


def run_one(config: ml_collections.ConfigDict, run_dir: str, mesh: Any, label: str = "") -> dict[str, Any]:
  """Trains and tests one run (one config, one seed) in ``run_dir``; resumes from its checkpoints."""
  from jaxborders.models import get_model

  os.makedirs(run_dir, exist_ok=True)
  summary_path = os.path.join(run_dir, "summary.json")
  if os.path.exists(summary_path):
    with open(summary_path) as f:
      done = json.load(f)
    if done.get("status") == "finished":
      _print(f"{label}already finished ({summary_path}); skipping")
      params_path = os.path.join(run_dir, "params.msgpack")
      done["params"] = load_params(run_dir) if os.path.exists(params_path) else None
      return done

  t_start = time.time()
  data_cfg = data_lib.source_config(config.data)
  source = data_lib.get_source(config.data.source)
  seed = int(config.seed)
  train = data_lib.load_split(data_cfg, "train", seed)
  streaming = isinstance(train, data_lib.Stream)
  evals = {s: data_lib.load_split(data_cfg, s, seed) for s in source.SPLITS if s != "train"}
  image_shape = tuple(train.image_shape) if streaming else tuple(train["image"].shape[1:])
  model = get_model(config.model.name, **config_lib.model_kwargs(config))
  check_model_fits(model, image_shape, config.model.name)
  n_train = train.num_examples if streaming else train["label"].shape[0]
  steps_per_epoch = n_train // config.batch_size
  if steps_per_epoch < 1:
    raise ConfigError(f"batch_size={config.batch_size} is larger than the training set ({n_train} examples).")
  total_steps = config.num_steps if config.num_steps > 0 else config.num_epochs * steps_per_epoch
  num_epochs = math.ceil(total_steps / steps_per_epoch)
  eval_batch = config.eval.batch_size or config.batch_size
  eval_batch = math.ceil(eval_batch / jax.device_count()) * jax.device_count()

  tx = make_optimizer(config, steps_per_epoch, total_steps)
  programs = build_programs(config, model, tx, image_shape, steps_per_epoch, total_steps, mesh)
  rep = sharding_lib.replicated(mesh)
  images = None if streaming else sharding_lib.put_replicated(train["image"], mesh)
  labels = None if streaming else sharding_lib.put_replicated(train["label"], mesh)
  in_memory_evals = {s: d for s, d in evals.items() if not isinstance(d, data_lib.Stream)}
  eval_arrays = {s: sharding_lib.put_replicated(_pad_split(d, min(eval_batch, _round_up(d["label"].shape[0], jax.device_count()))), mesh)
                 for s, d in in_memory_evals.items()}
  eval_batches = {s: min(eval_batch, _round_up(d["label"].shape[0], jax.device_count())) for s, d in in_memory_evals.items()}
  seed_key = jax.random.PRNGKey(seed)
  data_key = jax.device_put(jax.random.fold_in(seed_key, 1), rep)

  state = programs.init(jax.device_put(jax.random.fold_in(seed_key, 0), rep))
  if config.microbatch_size and config.microbatch_size < config.batch_size and state.batch_stats:
    raise ConfigError(f"microbatch_size={config.microbatch_size}: model {config.model.name!r} has BatchNorm, whose "
                      "batch statistics would be per microbatch; set microbatch_size=0.")
  ckpt = checkpointing.Checkpointer(os.path.join(run_dir, "checkpoints"), keep=config.checkpoint.keep)
  es = config.early_stopping
  meta: dict[str, Any] = dict(epoch=0, best_value=None, best_epoch=0, bad_evals=0, stopped=False,
                              plateau_best=None, plateau_bad=0)
  best_params = state.params
  resume_step = ckpt.latest_step()
  if resume_step is not None:
    tree = {"state": state, "best_params": state.params}
    restored, meta = ckpt.restore(checkpointing.abstract_like(tree))
    state, best_params = restored["state"], restored["best_params"]
    _print(f"{label}resumed from step {resume_step} (epoch {meta['epoch']}) in {ckpt.directory}")
  writer = MetricWriter(run_dir, config.log.tensorboard, resume_step)
  train_images_per_epoch = steps_per_epoch * config.batch_size

  def save(wait: bool = False) -> None:
    best = best_params if es.metric else state.params
    ckpt.save(int(state.step), {"state": state, "best_params": best}, meta, wait=wait)

  def stream_eval(params, batch_stats, stream: data_lib.Stream) -> dict[str, jax.Array]:
    sums = None
    for batch in stream.batches(0, eval_batch, jax.process_index(), jax.process_count()):
      global_batch = sharding_lib.put_batch({k: batch[k] for k in ("image", "label", "mask") if k in batch}, mesh)
      out = programs.eval_sums(params, batch_stats, global_batch)
      sums = out if sums is None else jax.tree.map(jnp.add, sums, out)  # stays on device: no sync per batch
    if sums is None:
      raise ValueError(f"data.source={config.data.source!r}: an evaluation stream yielded no batches.")
    sums = sharding_lib.to_host(sums)
    count = float(sums["count"])
    return {"loss": float(sums["loss"]) / count, "accuracy": float(sums["correct"]) / count}

  def run_eval(params, batch_stats, splits) -> dict[str, float]:
    out = {}
    for s in splits:
      if isinstance(evals[s], data_lib.Stream):
        m = stream_eval(params, batch_stats, evals[s])
      else:
        image, label_arr, mask = eval_arrays[s]
        m = programs.evaluate(params, batch_stats, image, label_arr, mask, eval_batch=eval_batches[s])
      out.update({f"{s}/{k}": float(v) for k, v in sharding_lib.to_host(m).items() if k in config.eval.metrics})
    return out

  def check_finite(losses: np.ndarray, first_step: int) -> None:
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
      step_bad = first_step + int(bad[0])
      ckpt.wait()
      last = ckpt.latest_step()
      raise NonFiniteLossError(
          f"non-finite training loss ({losses[bad[0]]}) at step {step_bad} (epoch {epoch}); stopped. The last good "
          f"checkpoint is step {last} in {ckpt.directory}." if last is not None else
          f"non-finite training loss ({losses[bad[0]]}) at step {step_bad} (epoch {epoch}); stopped (no checkpoint "
          "saved yet).")

  def preempt() -> None:
    save(wait=True)
    raise Preempted(f"signal {_STOP_SIGNAL[0]} received: checkpoint saved at step {int(state.step)} in "
                    f"{ckpt.directory}; rerun the same command to resume.")

  ck = config.checkpoint
  epoch_times = []
  train_time = 0.0
  # Streams: the epoch (and the batch within it) follows from the step, which also covers a run stopped inside
  # an epoch by num_steps and resumed with a larger one.
  epoch = int(state.step) // steps_per_epoch if streaming else int(meta["epoch"])
  last_log: dict[str, float] = {}
  try:
    while epoch < num_epochs and not meta["stopped"]:
      step0 = int(state.step)
      n_steps = min(steps_per_epoch, total_steps - epoch * steps_per_epoch)
      t0 = time.time()
      written = 0  # steps of this epoch already in metrics.jsonl (streams flush at mid-epoch checkpoints)
      if streaming:
        # Batch by batch with the same train_step; the position in the data is a function of (seed, step), so
        # a run resumed from a mid-epoch checkpoint starts at the batch after it.
        offset = step0 - epoch * steps_per_epoch
        per_step = []
        for batch in itertools.islice(_stream_batches(train, epoch, config.batch_size, offset), n_steps - offset):
          state, m = programs.batch_step(state, sharding_lib.put_batch({"image": batch["image"], "label": batch["label"]}, mesh))
          per_step.append(m)
          step = step0 + len(per_step)  # host-side count: no device sync per step
          if config.log.every_n_steps > 0 and step % config.log.every_n_steps == 0:
            _print(f"{label}epoch {epoch + 1} step {step} loss {float(sharding_lib.to_host(m['loss'])):.4f}")
          if ck.every_n_steps > 0 and step % ck.every_n_steps == 0 and offset + len(per_step) < n_steps:
            # Mid-epoch checkpoint (the epoch end saves through the common path below): never save a NaN state.
            done = sharding_lib.to_host(jax.tree.map(lambda *v: jnp.stack(v), *per_step[written:]))
            check_finite(done["loss"], step0 + written)
            writer.write_steps(step0 + written, done, epoch + 1)
            written = len(per_step)
            save()
          if config.debug.step_sleep_s:
            time.sleep(config.debug.step_sleep_s)
          if _STOP_SIGNAL:
            break
        if offset + len(per_step) < n_steps:
          if not _STOP_SIGNAL:
            raise ValueError(f"data.source={config.data.source!r}: the training stream ended after "
                             f"{offset + len(per_step)} of {n_steps} steps of epoch {epoch}.")
          if per_step[written:]:
            rest = sharding_lib.to_host(jax.tree.map(lambda *v: jnp.stack(v), *per_step[written:]))
            check_finite(rest["loss"], step0 + written)
            writer.write_steps(step0 + written, rest, epoch + 1)
          preempt()  # stopped inside the epoch: meta['epoch'] still counts completed epochs only
        step_metrics = jax.tree.map(lambda *v: jnp.stack(v), *per_step)
      else:
        state, step_metrics = programs.epoch(state, images, labels, data_key, jnp.int32(epoch), num_steps=n_steps)
      step_metrics = sharding_lib.to_host(step_metrics)
      dt = time.time() - t0
      epoch_times.append(dt)
      train_time += dt
      losses = step_metrics["loss"]
      check_finite(losses, step0)
      epoch += 1
      meta["epoch"] = epoch
      writer.write_steps(step0 + written, {k: v[written:] for k, v in step_metrics.items()}, epoch)
      log = {"train/loss": float(np.mean(losses)), "train/accuracy": float(np.mean(step_metrics["accuracy"])),
             "train/images_per_s": len(losses) * config.batch_size / dt, "lr_scale": float(sharding_lib.to_host(state.lr_scale))}
      if epoch % config.eval.every_n_epochs == 0 or epoch == num_epochs:
        val = run_eval(state.params, state.batch_stats, ["val"])
        log.update(val)
        if es.metric:
          value = val[es.metric]
          if _better(value, meta["best_value"], es.mode):
            meta.update(best_value=value, best_epoch=epoch, bad_evals=0)
            best_params = jax.tree.map(jnp.copy, state.params)
          else:
            meta["bad_evals"] += 1
            if meta["bad_evals"] > es.patience:
              meta["stopped"] = True
        if config.schedule.name == "plateau":
          value = val[config.schedule.plateau_metric]
          if _better(value, meta["plateau_best"], "min"):
            meta.update(plateau_best=value, plateau_bad=0)
          else:
            meta["plateau_bad"] += 1
            if meta["plateau_bad"] > config.schedule.plateau_patience:
              new_scale = float(sharding_lib.to_host(state.lr_scale)) * config.schedule.plateau_factor
              state = state.replace(lr_scale=jax.device_put(jnp.float32(new_scale), rep))
              meta["plateau_bad"] = 0
      writer.write(int(state.step), log, epoch=epoch)
      last_log = log
      if jax.process_index() == 0 and (epoch % config.log.every_n_epochs == 0 or epoch == num_epochs or meta["stopped"]):
        val_txt = " ".join(f"{k} {v:.4f}" for k, v in log.items() if k.startswith("val/"))
        _print(f"{label}epoch {epoch}/{num_epochs} step {int(state.step)} loss {log['train/loss']:.4f} {val_txt} "
               f"{log['train/images_per_s']:.0f} img/s")
      if streaming:  # multiples inside the epoch were saved in the step loop; here only one ending the epoch
        crossed_steps = ck.every_n_steps > 0 and int(state.step) % ck.every_n_steps == 0
      else:
        crossed_steps = ck.every_n_steps > 0 and int(state.step) // ck.every_n_steps > step0 // ck.every_n_steps
      if (ck.every_n_epochs > 0 and epoch % ck.every_n_epochs == 0) or crossed_steps:
        save()  # in memory, every_n_steps: at the end of the epoch that crossed the multiple (one program)
      if _STOP_SIGNAL:
        preempt()
      if config.debug.step_sleep_s:
        time.sleep(config.debug.step_sleep_s)
    save(wait=True)
  finally:
    writer.close()
    ckpt.close()

  tested = best_params if es.metric else state.params
  metrics = run_eval(tested, state.batch_stats, list(evals))
  host_params = sharding_lib.to_host(tested)
  result = {
      "status": "finished",
      "seed": seed,
      "metrics": metrics,
      "epochs": epoch,
      "steps": int(state.step),
      "best_epoch": int(meta["best_epoch"]) if es.metric else epoch,
      "stopped_early": bool(meta["stopped"]),
      "train_wall_s": train_time,
      "wall_s": time.time() - t_start,
      "images_per_s": (train_images_per_epoch * len(epoch_times[1:]) / sum(epoch_times[1:])) if len(epoch_times) > 1 else None,
      "first_epoch_s": epoch_times[0] if epoch_times else None,  # includes compilation
      "epoch_s": float(np.median(epoch_times[1:])) if len(epoch_times) > 1 else None,  # steady state, train only
      "final_train_loss": last_log.get("train/loss"),
      "params_fingerprint": params_fingerprint(host_params),
      "workdir": run_dir,
  }
  if jax.process_index() == 0:
    with open(os.path.join(run_dir, "params.msgpack"), "wb") as f:
      f.write(flax.serialization.msgpack_serialize(jax.tree.map(np.asarray, flax.serialization.to_state_dict(host_params))))
    with open(summary_path, "w") as f:
      json.dump(result, f, indent=1)
  result["params"] = host_params
  return result


def _round_up(n: int, k: int) -> int:
  return math.ceil(n / k) * k


def load_params(run_dir: str) -> Any:
  """The tested parameters of a finished run (a nested dict of numpy arrays)."""
  with open(os.path.join(run_dir, "params.msgpack"), "rb") as f:
    return flax.serialization.msgpack_restore(f.read())


# ----------------------------------------------------------------------------------------------------------
# A whole config: sweep × seeds, summary, report.


def check_workdir(workdir: str) -> None:
  """Creates ``workdir`` and proves it writable, before anything trains."""
  try:
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, f".write_probe_{os.getpid()}")
    with open(probe, "w") as f:
      f.write("ok")
    os.remove(probe)
  except OSError as e:
    raise ConfigError(f"workdir {workdir!r} is not writable ({e.strerror}); pass --workdir to a writable directory.") from None


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
  """Mean ± std (population, as the reference) of every metric per sweep point."""
  groups: dict[str, list[dict[str, Any]]] = {}
  for r in runs:
    groups.setdefault(json.dumps(r["overrides"], sort_keys=True), []).append(r)
  out = []
  for key, rs in groups.items():
    metrics = {}
    for name in rs[0]["metrics"]:
      vals = np.asarray([r["metrics"][name] for r in rs], np.float64)
      metrics[name] = {"mean": float(vals.mean()), "std": float(vals.std()), "n": len(vals)}
    out.append({"overrides": json.loads(key), "metrics": metrics, "seeds": [r["seed"] for r in rs],
                "wall_s_mean": float(np.mean([r["wall_s"] for r in rs])), "epochs_mean": float(np.mean([r["epochs"] for r in rs]))})
  return out


def summary_markdown(groups: list[dict[str, Any]]) -> str:
  names = [n for n in groups[0]["metrics"] if not n.startswith("val/")] + [n for n in groups[0]["metrics"] if n.startswith("val/")]
  head = "| run | seeds | " + " | ".join(names) + " | epochs | s/run |"
  lines = [head, "|" + "---|" * (len(names) + 4)]
  for g in groups:
    cells = []
    for n in names:
      m = g["metrics"][n]
      scale = 100.0 if n.endswith("accuracy") else 1.0
      cells.append(f"{m['mean'] * scale:.2f} ± {m['std'] * scale:.2f}" if m["n"] > 1 else f"{m['mean'] * scale:.4g}")
    name = config_lib.run_name(g["overrides"])
    lines.append(f"| {name} | {len(g['seeds'])} | " + " | ".join(cells) + f" | {g['epochs_mean']:.1f} | {g['wall_s_mean']:.1f} |")
  return "\n".join(lines) + "\n\n(accuracy in %; ± is the std over seeds)\n"


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Runs every sweep point × seed of ``config`` under ``workdir``; returns the combined summary.

  Raises:
    ConfigError: bad config, workdir, or config/model mismatch (before training).
    NonFiniteLossError: NaN/Inf loss (the message names the step).
    Preempted: SIGTERM/SIGINT (a checkpoint was saved).
  """
  try:
    config_lib.validate(config)
  except ValueError as e:
    raise ConfigError(str(e)) from None
  check_workdir(workdir)
  sharding_lib.check_batch_size(config.batch_size)
  for point in config_lib.sweep_points(config):
    micro = config_lib.apply_overrides(config, point).microbatch_size
    if micro:
      sharding_lib.check_batch_size(micro, "microbatch_size")
  mesh = sharding_lib.make_mesh()
  runs_spec = list(config_lib.iter_runs(config))
  single = len(runs_spec) == 1
  t0 = time.time()
  jobs = []
  for i, (overrides, seed, run_config) in enumerate(runs_spec):
    run_dir = workdir if single else os.path.join(workdir, config_lib.run_name(overrides), f"seed_{seed}")
    label = "" if single else f"[{i + 1}/{len(runs_spec)} {config_lib.run_name(overrides)} seed {seed}] "
    jobs.append((run_config, run_dir, label))

  def done(i: int, result: dict[str, Any]) -> None:
    result["overrides"] = runs_spec[i][0]
    if not single:
      _print(f"{jobs[i][2]}done in {result['wall_s']:.1f} s: " +
             ", ".join(f"{k} {v:.4f}" for k, v in result["metrics"].items()))

  unfinished = sum(not _is_finished(run_dir) for _, run_dir, _ in jobs)
  workers = parallel_lib.num_workers(config.parallel_runs, unfinished)
  if workers > 1:
    _print(f"training {len(jobs)} runs, {workers} at a time (parallel_runs: one single-threaded process per core)")
    runs = parallel_lib.run_all(jobs, workers, lambda: bool(_STOP_SIGNAL), done)
    for result, (_, run_dir, _) in zip(runs, jobs):
      params_path = os.path.join(run_dir, "params.msgpack")
      result["params"] = load_params(run_dir) if os.path.exists(params_path) else None
  else:
    runs = []
    for i, (run_config, run_dir, label) in enumerate(jobs):
      runs.append(run_one(run_config, run_dir, mesh, label))
      done(i, runs[-1])
  groups = summarize(runs)
  table = summary_markdown(groups)
  summary = {"runs": [{k: v for k, v in r.items() if k != "params"} for r in runs], "groups": groups,
             "wall_s": time.time() - t0, "num_runs": len(runs), "devices": jax.device_count(),
             "processes": jax.process_count()}
  if single:
    summary.update({k: v for k, v in runs[0].items() if k != "params"})
  text = table
  if jax.process_index() == 0:
    with open(os.path.join(workdir, "summary.md"), "w") as f:
      f.write(table)
    with open(os.path.join(workdir, "summary.json"), "w") as f:
      json.dump(summary, f, indent=1)
    if config.report:
      report = importlib.import_module(f"train.reports.{config.report}")
      text = table + "\n" + report.report(workdir, runs, config, wall_s=time.time() - t0, workers=workers)
  _print(f"\n{text}\nwall time: {summary['wall_s']:.1f} s for {len(runs)} run(s); results in {workdir}")
  return summary


__all__ = ["TrainState", "train_step", "train_epoch", "evaluate", "make_optimizer", "make_schedule",
           "train_and_evaluate", "run_one", "params_fingerprint", "load_params", "ConfigError", "NonFiniteLossError",
           "Preempted", "install_signal_handlers"]
