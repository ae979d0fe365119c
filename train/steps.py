"""The pure training and evaluation steps, the optimizer, and their compiled programs.

* ``train_step`` is pure and module-level: ``(state, batch) -> (state, metrics)`` with the model and the optax
  transform bound as static arguments. Everything is ``jax.jit`` over a 1D 'data' mesh: batches are sharded,
  parameters replicated (``train/sharding.py``).
* In-memory data lives on device; one epoch is one jitted ``lax.scan`` of ``train_step`` over batches (the order
  is a permutation from ``fold_in(data_key, epoch)``), evaluation of a split is one jitted call. Streams call the
  same jitted ``train_step`` per batch.
* ``build_programs`` caches the compiled programs per (model, optimizer, shapes), so seeds after the first compile
  nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

from train import sharding as sharding_lib


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


__all__ = ["TrainState", "cross_entropy", "train_step", "epoch_order", "train_epoch", "evaluate", "eval_batch_sums",
           "make_schedule", "make_optimizer", "Programs", "build_programs"]
