"""Early stopping, reduce-on-plateau and the checkpoint cadence: small objects the epoch loop consults.

The state of early stopping and plateau is saved in every checkpoint's ``meta`` (keys ``best_value``,
``best_epoch``, ``bad_evals``, ``stopped``, ``plateau_best``, ``plateau_bad``), so a resumed run continues with the
same counters.

Example:
  >>> stop = EarlyStopping(metric='val/loss', mode='min', patience=1)
  >>> [stop.update({'val/loss': v}, epoch) for epoch, v in enumerate([1.0, 0.5, 0.7, 0.6], 1)]
  [True, True, False, False]
  >>> stop.stopped, stop.best_epoch
  (True, 2)
"""

from __future__ import annotations

import dataclasses
from typing import Any


def is_better(value: float, best: float | None, mode: str) -> bool:
  """Whether ``value`` improves on ``best`` (None: nothing yet) for ``mode`` 'min' or 'max'."""
  if best is None:
    return True
  return value < best if mode == "min" else value > best


@dataclasses.dataclass
class EarlyStopping:
  """Stops after ``patience`` evaluations in a row without improving ``metric`` ('' disables it)."""

  metric: str
  mode: str = "min"
  patience: int = 0
  best_value: float | None = None
  best_epoch: int = 0
  bad_evals: int = 0
  stopped: bool = False

  def update(self, val: dict[str, float], epoch: int) -> bool:
    """Records an evaluation; returns whether it is the best so far (then keep these parameters)."""
    value = val[self.metric]
    if is_better(value, self.best_value, self.mode):
      self.best_value, self.best_epoch, self.bad_evals = value, epoch, 0
      return True
    self.bad_evals += 1
    if self.bad_evals > self.patience:
      self.stopped = True
    return False

  def state(self) -> dict[str, Any]:
    return dict(best_value=self.best_value, best_epoch=self.best_epoch, bad_evals=self.bad_evals, stopped=self.stopped)

  def load(self, meta: dict[str, Any]) -> None:
    self.best_value, self.best_epoch = meta["best_value"], int(meta["best_epoch"])
    self.bad_evals, self.stopped = int(meta["bad_evals"]), bool(meta["stopped"])


@dataclasses.dataclass
class Plateau:
  """Reduce-on-plateau: after ``patience`` evaluations without a lower ``metric``, the lr scale is multiplied by
  ``factor`` (as PyTorch's ``ReduceLROnPlateau`` in 'min' mode with threshold 0)."""

  metric: str
  patience: int
  factor: float
  best: float | None = None
  bad: int = 0

  def update(self, val: dict[str, float]) -> float:
    """Records an evaluation; returns the factor to apply to the lr scale now (1.0: none)."""
    value = val[self.metric]
    if is_better(value, self.best, "min"):
      self.best, self.bad = value, 0
      return 1.0
    self.bad += 1
    if self.bad > self.patience:
      self.bad = 0
      return self.factor
    return 1.0

  def state(self) -> dict[str, Any]:
    return dict(plateau_best=self.best, plateau_bad=self.bad)

  def load(self, meta: dict[str, Any]) -> None:
    self.best, self.bad = meta["plateau_best"], int(meta["plateau_bad"])


@dataclasses.dataclass(frozen=True)
class CheckpointCadence:
  """When to save: every ``every_n_epochs`` epochs and/or every ``every_n_steps`` steps (0 disables either)."""

  every_n_epochs: int
  every_n_steps: int

  def inside_epoch(self, step: int, steps_into_epoch: int, epoch_steps: int) -> bool:
    """Streams: save after ``step`` (not the epoch's last step: the epoch end saves through ``at_epoch_end``)."""
    return self.every_n_steps > 0 and step % self.every_n_steps == 0 and steps_into_epoch < epoch_steps

  def at_epoch_end(self, epoch: int, first_step: int, step: int, streaming: bool) -> bool:
    """Whether to save after ``epoch`` (steps ``first_step + 1 .. step``).

    In memory an epoch is one program, so a multiple of ``every_n_steps`` crossed inside it saves at its end;
    streams saved such multiples inside the epoch already and save here only one that ends the epoch.
    """
    if self.every_n_epochs > 0 and epoch % self.every_n_epochs == 0:
      return True
    if self.every_n_steps <= 0:
      return False
    if streaming:
      return step % self.every_n_steps == 0
    return step // self.every_n_steps > first_step // self.every_n_steps


__all__ = ["EarlyStopping", "Plateau", "CheckpointCadence", "is_better"]
