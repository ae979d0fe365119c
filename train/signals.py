"""SIGTERM/SIGINT: a flag that the training loop polls; it saves a checkpoint and raises ``Preempted``.

The handler only records the signal: saving happens in the loop, at the next epoch end (in memory) or step
(streams), where the state is consistent.
"""

from __future__ import annotations

import signal
from typing import Any

# Signals received so far, in order (a list, mutated in place, so that every importer sees the same object).
_STOP_SIGNAL: list[int] = []


def _on_signal(signum: int, frame: Any) -> None:
  del frame
  _STOP_SIGNAL.append(signum)


def install_signal_handlers() -> None:
  """SIGTERM/SIGINT set a flag; the loop saves a checkpoint at the next epoch (or step) end and exits."""
  for sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(sig, _on_signal)


def stop_requested() -> bool:
  """Whether SIGTERM or SIGINT has arrived."""
  return bool(_STOP_SIGNAL)


def stop_signal() -> int | None:
  """The first stop signal received (its number), or None."""
  return _STOP_SIGNAL[0] if _STOP_SIGNAL else None


__all__ = ["install_signal_handlers", "stop_requested", "stop_signal"]
