"""The trainer's errors; ``train/main.py`` maps each to an exit code (2, 3, 0)."""

from __future__ import annotations


class ConfigError(ValueError):
  """The config cannot run (bad keys, values, or a model/data mismatch); raised before training."""


class NonFiniteLossError(FloatingPointError):
  """The training loss became NaN or Inf; the message names the step."""


class Preempted(Exception):
  """SIGTERM/SIGINT arrived; a checkpoint was saved and the process should exit 0."""


def config_errors(fn, *args):
  """``fn(*args)`` with its ValueError raised as a ConfigError (exit 2)."""
  try:
    return fn(*args)
  except ValueError as e:
    raise ConfigError(str(e)) from None


__all__ = ["ConfigError", "NonFiniteLossError", "Preempted", "config_errors"]
