"""One run: one config and one seed in one directory, resumed from its checkpoints if any.

``run_one`` reads top to bottom: load the data, build the model and its compiled programs, restore or start the
mutable ``Run`` (train state, best parameters, early-stopping and plateau counters, checkpoints, metric log), then
one loop over epochs (``train/epochs.py`` trains an epoch in memory or streamed), then test and write the summary.
Resume is exact: everything that changes is checkpointed and the data order and dropout keys are functions of
(seed, epoch / step).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import flax.serialization
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from train import checkpointing
from train import config as config_lib
from train import provenance
from train import sharding as sharding_lib
from train import signals
from train.epochs import Evaluator, InMemoryEpochs, RunData, StreamingEpochs, load_data
from train.errors import ConfigError, NonFiniteLossError, Preempted
from train.logs import MetricWriter, echo, params_fingerprint
from train.monitors import CheckpointCadence, EarlyStopping, Plateau
from train.progress import Progress
from train.steps import TrainState, build_programs, make_optimizer


class Run:
  """The mutable side of one run: train state, best parameters, counters, checkpoints and the metric log.

  ``meta`` (saved with every checkpoint) holds ``epoch`` (completed epochs) and the early-stopping and plateau
  counters; a restored run continues with them.
  """

  def __init__(self, config: ml_collections.ConfigDict, run_dir: str, state: TrainState, data: RunData, label: str):
    es, sched = config.early_stopping, config.schedule
    self.config, self.label, self.state = config, label, state
    self.steps_per_epoch, self.num_epochs, self.streaming = data.steps_per_epoch, data.num_epochs, data.streaming
    self.best_params = state.params
    self.epoch = 0
    self.early = EarlyStopping(es.metric, es.mode, es.patience)
    self.plateau = Plateau(sched.plateau_metric, sched.plateau_patience, sched.plateau_factor)
    self.cadence = CheckpointCadence(config.checkpoint.every_n_epochs, config.checkpoint.every_n_steps)
    self.ckpt = checkpointing.Checkpointer(os.path.join(run_dir, "checkpoints"), keep=config.checkpoint.keep)
    self.resume_step = None
    self._restore()
    self.writer = MetricWriter(run_dir, config.log.tensorboard, self.resume_step)
    self.last_log: dict[str, float] = {}

  def meta(self) -> dict[str, Any]:
    return dict(epoch=self.epoch, **self.early.state(), **self.plateau.state())

  def _restore(self) -> None:
    # trust: the newest checkpoint that restores intact (damaged newer ones are set aside with a warning)
    resumed = self.ckpt.restore_latest_good(checkpointing.abstract_like({"state": self.state,
                                                                          "best_params": self.state.params}))
    if not resumed:
      return
    self.resume_step, restored, meta = resumed
    self.state, self.best_params = restored["state"], restored["best_params"]
    self.epoch = int(meta["epoch"])
    self.early.load(meta)
    self.plateau.load(meta)
    echo(f"{self.label}resumed from step {self.resume_step} (epoch {self.epoch}) in {self.ckpt.directory}")

  @property
  def tested_params(self) -> Any:
    """The parameters a run is tested with: the best so far under early stopping, else the latest."""
    return self.best_params if self.early.metric else self.state.params

  def save(self, wait: bool = False) -> None:
    self.ckpt.save(int(self.state.step), {"state": self.state, "best_params": self.tested_params}, self.meta(),
                   wait=wait)

  def preempt(self) -> None:
    """Saves and raises ``Preempted`` (a stop signal arrived)."""
    self.save(wait=True)
    raise Preempted(f"signal {signals.stop_signal()} received: checkpoint saved at step {int(self.state.step)} in "
                    f"{self.ckpt.directory}; rerun the same command to resume.")

  def check_finite(self, losses: np.ndarray, first_step: int, epoch: int) -> None:
    """NonFiniteLossError naming the first non-finite step and the last good checkpoint."""
    bad = np.flatnonzero(~np.isfinite(losses))
    if not bad.size:
      return
    step_bad = first_step + int(bad[0])
    self.ckpt.wait()
    last = self.ckpt.latest_step()
    where = (f"stopped. The last good checkpoint is step {last} in {self.ckpt.directory}." if last is not None else
             "stopped (no checkpoint saved yet).")
    raise NonFiniteLossError(f"non-finite training loss ({losses[bad[0]]}) at step {step_bad} (epoch {epoch}); {where}")

  def end_epoch(self, step_metrics: dict[str, np.ndarray], first_step: int, written: int, seconds: float,
                evaluate: Evaluator, images_per_s: float | None) -> None:
    """Checks and logs an epoch, evaluates when due, updates early stopping and plateau, saves when due."""
    config = self.config
    losses = step_metrics["loss"]
    self.check_finite(losses, first_step, self.epoch)
    self.epoch += 1
    epoch = self.epoch
    self.writer.write_steps(first_step + written, {k: v[written:] for k, v in step_metrics.items()}, epoch)
    log = {"train/loss": float(np.mean(losses)), "train/accuracy": float(np.mean(step_metrics["accuracy"])),
           "train/images_per_s": len(losses) * config.batch_size / seconds,
           "lr_scale": float(sharding_lib.to_host(self.state.lr_scale))}
    if epoch % config.eval.every_n_epochs == 0 or epoch == self.num_epochs:
      val = evaluate(self.state.params, self.state.batch_stats, ["val"])
      log.update(val)
      self._monitor(val, epoch)
    self.writer.write(int(self.state.step), log, epoch=epoch)
    self.last_log = log
    if epoch % config.log.every_n_epochs == 0 or epoch == self.num_epochs or self.early.stopped:
      self._print_epoch(log, images_per_s)
    if self.cadence.at_epoch_end(epoch, first_step, int(self.state.step), self.streaming):
      self.save()  # in memory, every_n_steps: at the end of the epoch that crossed the multiple (one program)

  def _monitor(self, val: dict[str, float], epoch: int) -> None:
    if self.early.metric and self.early.update(val, epoch):
      self.best_params = jax.tree.map(jnp.copy, self.state.params)
    if self.config.schedule.name == "plateau":
      factor = self.plateau.update(val)
      if factor != 1.0:
        new_scale = float(sharding_lib.to_host(self.state.lr_scale)) * factor
        self.state = self.state.replace(lr_scale=jax.device_put(jnp.float32(new_scale), self.state.lr_scale.sharding))

  def _print_epoch(self, log: dict[str, float], images_per_s: float | None) -> None:
    """One line per logged epoch; step-based runs (``num_steps``) count steps, not epochs."""
    step = int(self.state.step)
    where = (f"step {step}/{self.config.num_steps}" if self.config.num_steps > 0 else
             f"epoch {self.epoch}/{self.num_epochs} step {step}")
    val = " ".join(f"{k} {v:.4f}" for k, v in log.items() if k.startswith("val/"))
    speed = f" {images_per_s:.0f} img/s" if images_per_s else ""
    echo(f"{self.label}{where} loss {log['train/loss']:.4f} {val}".rstrip() + speed)

  def close(self) -> None:
    self.writer.close()
    self.ckpt.close()


def check_model_fits(model: Any, image_shape: tuple[int, ...], model_name: str) -> None:
  """``jax.eval_shape`` of init + forward: a model/data mismatch fails here, before anything is allocated."""
  try:
    jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, *image_shape), jnp.float32), train=False))
  except (ValueError, TypeError) as e:
    raise ConfigError(f"the config does not fit the model: model {model_name!r} cannot take images of shape "
                      f"{tuple(image_shape)} (H, W, C): {e}") from None


def load_params(run_dir: str) -> Any:
  """The tested parameters of a finished run (a nested dict of numpy arrays)."""
  with open(os.path.join(run_dir, "params.msgpack"), "rb") as f:
    return flax.serialization.msgpack_restore(f.read())


def is_finished(run_dir: str, config: ml_collections.ConfigDict | None = None) -> bool:
  """Whether ``run_dir`` holds a finished run that ``config`` (if given) does not ask to train longer."""
  try:
    with open(os.path.join(run_dir, "summary.json")) as f:
      summary = json.load(f)
    # trust: a finished run asked to train longer is unfinished
    return summary.get("status") == "finished" and not (config is not None and provenance.extends(summary, config))
  except (OSError, ValueError, AttributeError):
    return False


def finished_result(run_dir: str, config: ml_collections.ConfigDict) -> dict[str, Any] | None:
  """The summary (with ``params``) of a run already finished in ``run_dir``, or None (also when ``config`` asks
  for a longer run, which continues from the checkpoints)."""
  # trust: an unreadable summary is set aside and the run resumes; a longer run continues
  done = provenance.read_summary(os.path.join(run_dir, "summary.json"))
  if done is None or done.get("status") != "finished" or provenance.extends(done, config):
    return None
  done["params"] = load_params(run_dir) if os.path.exists(os.path.join(run_dir, "params.msgpack")) else None
  return done


def run_one(config: ml_collections.ConfigDict, run_dir: str, mesh: Any, label: str = "") -> dict[str, Any]:
  """Trains and tests one run (one config, one seed) in ``run_dir``; resumes from its checkpoints."""
  from jaxborders.models import get_model

  done = finished_result(run_dir, config)
  if done is not None:
    echo(f"{label}already finished ({os.path.join(run_dir, 'summary.json')}); skipping")
    return done
  t_start = time.time()
  os.makedirs(run_dir, exist_ok=True)
  seed = int(config.seed)
  data = load_data(config, seed)
  model = get_model(config.model.name, **config_lib.model_kwargs(config))
  check_model_fits(model, data.image_shape, config.model.name)
  tx = make_optimizer(config, data.steps_per_epoch, data.total_steps)
  programs = build_programs(config, model, tx, data.image_shape, data.steps_per_epoch, data.total_steps, mesh)
  epochs = (StreamingEpochs(config, programs, data.train, mesh) if data.streaming else
            InMemoryEpochs(programs, data.train, seed, mesh))
  evaluate = Evaluator(config, data.evals, programs, mesh)
  state = programs.init(jax.device_put(jax.random.fold_in(jax.random.PRNGKey(seed), 0), sharding_lib.replicated(mesh)))
  if config.microbatch_size and config.microbatch_size < config.batch_size and state.batch_stats:
    raise ConfigError(f"microbatch_size={config.microbatch_size}: model {config.model.name!r} has BatchNorm, whose "
                      "batch statistics would be per microbatch; set microbatch_size=0.")

  run = Run(config, run_dir, state, data, label)
  if run.resume_step is None and config.model.get("pretrained"):
    run.state = _with_pretrained(run.state, model, config)  # a fresh run starts from the named weights
  progress = Progress(data.total_steps, int(run.state.step), config.batch_size, label)
  epoch_times = []
  epoch = epochs.first_epoch(run, data.steps_per_epoch)
  try:
    while epoch < data.num_epochs and not run.early.stopped:
      first_step, t0 = int(run.state.step), time.time()
      num_steps = min(data.steps_per_epoch, data.total_steps - epoch * data.steps_per_epoch)
      step_metrics, written = epochs.run(run, epoch, num_steps, progress)
      epoch_times.append(time.time() - t0)
      run.epoch = epoch
      run.end_epoch(step_metrics, first_step, written, epoch_times[-1], evaluate, progress.images_per_s)
      epoch = run.epoch
      if sharding_lib.agree_on_stop(signals._STOP_SIGNAL):  # trust: every process stops at the same epoch
        run.preempt()
      if config.debug.step_sleep_s:
        time.sleep(config.debug.step_sleep_s)
    run.save(wait=True)
  finally:
    progress.close()
    run.close()
  run.epoch = epoch  # (streams resumed at their last step never enter the loop: the epoch follows from the step)
  return _finish(run, run_dir, evaluate, seed, epoch_times, progress, t_start)


def _with_pretrained(state: TrainState, model: Any, config: ml_collections.ConfigDict) -> TrainState:
  """``state`` with the parameters (and BatchNorm statistics) of ``config.model.pretrained``; a head of another
  class count stays freshly initialised (``jaxborders.models.pretrained.load_pretrained``)."""
  from jaxborders.models.pretrained import load_pretrained
  fresh = {"params": sharding_lib.to_host(state.params), "batch_stats": sharding_lib.to_host(state.batch_stats)}
  try:
    loaded = load_pretrained(model, config.model.pretrained, model_name=config.model.name, variables=fresh,
                             progress=False)
  except ValueError as e:
    raise ConfigError(f"model.pretrained={config.model.pretrained!r}: {e}") from None
  put = lambda new, old: jax.tree.map(lambda n, o: jax.device_put(jnp.asarray(n, o.dtype), o.sharding), new, old)
  return state.replace(params=put(loaded["params"], state.params),
                       batch_stats=put(loaded.get("batch_stats", {}), state.batch_stats) if state.batch_stats else
                       state.batch_stats)


def _finish(run: Run, run_dir: str, evaluate: Evaluator, seed: int, epoch_times: list[float], progress: Progress,
            t_start: float) -> dict[str, Any]:
  """Tests the run's parameters on every evaluation split and writes ``summary.json`` and ``params.msgpack``."""
  tested = run.tested_params
  metrics = evaluate(tested, run.state.batch_stats, list(evaluate.evals))
  host_params = sharding_lib.to_host(tested)
  result = {
      "status": "finished",
      "seed": seed,
      "metrics": metrics,
      "epochs": run.epoch,
      "steps": int(run.state.step),
      "best_epoch": int(run.early.best_epoch) if run.early.metric else run.epoch,
      "stopped_early": bool(run.early.stopped),
      "train_wall_s": float(sum(epoch_times)),
      "wall_s": time.time() - t_start,
      "images_per_s": progress.images_per_s,  # training throughput, compilation excluded
      "first_epoch_s": epoch_times[0] if epoch_times else None,  # includes compilation
      "epoch_s": float(np.median(epoch_times[1:])) if len(epoch_times) > 1 else None,  # steady state, train only
      "final_train_loss": run.last_log.get("train/loss"),
      "params_fingerprint": params_fingerprint(host_params),
      "workdir": run_dir,
  }
  provenance.stamp(result)  # trust: package version and git commit
  if jax.process_index() == 0:
    with open(os.path.join(run_dir, "params.msgpack"), "wb") as f:
      f.write(flax.serialization.msgpack_serialize(jax.tree.map(np.asarray, flax.serialization.to_state_dict(host_params))))
    with open(os.path.join(run_dir, "summary.json"), "w") as f:
      json.dump(result, f, indent=1)
  result["params"] = host_params
  return result


__all__ = ["run_one", "Run", "load_params", "check_model_fits", "is_finished", "finished_result"]
