"""Progress of a run: throughput that excludes compilation, and a progress bar on interactive terminals.

The bar is drawn with tqdm (already installed with TFDS and orbax, small, no dependencies of its own): it redraws one
line in place, fits the terminal width, and lets the epoch lines print above it (``tqdm.write``). It is shown only
when stdout is a terminal, so logs and pipes get the plain epoch lines and nothing else. Its rate and ETA are ours,
not tqdm's: they count only steps timed after compilation, so the first (compiling) step does not skew them.

Example:
  >>> p = Progress(total_steps=10, done_steps=0, batch_size=4, enabled=False)
  >>> p.advance(5, seconds=1.0, timed=False)  # the compiling steps: not counted in the rate
  >>> p.advance(5, seconds=0.5, timed=True)
  >>> p.images_per_s
  40.0
  >>> p.close()
"""

from __future__ import annotations

import sys
from typing import Any

_ACTIVE: list[Any] = []  # the tqdm bar being drawn, if any (echo prints above it)


def write(line: str) -> None:
  """Prints ``line`` (above the progress bar when one is drawn)."""
  if _ACTIVE:
    _ACTIVE[-1].write(line, file=sys.stdout)
  else:
    print(line, flush=True)


def show_bar() -> bool:
  """Whether this process draws a bar: process 0 with stdout on a terminal, and not a sweep's worker process
  (several workers share the parent's terminal; their runs print their epoch lines only)."""
  import multiprocessing

  import jax
  return jax.process_index() == 0 and sys.stdout.isatty() and multiprocessing.parent_process() is None


class Progress:
  """Counts a run's steps and time; draws a bar (steps, images/s, ETA) when ``enabled``.

  Args:
    total_steps: steps of the whole run.
    done_steps: steps already done (a resumed run starts there).
    batch_size: images per step (global).
    desc: the bar's label (the run's name in a sweep).
    enabled: draw the bar (default: ``show_bar()``).
  """

  def __init__(self, total_steps: int, done_steps: int, batch_size: int, desc: str = "", enabled: bool | None = None):
    self.total_steps = total_steps
    self.batch_size = batch_size
    self.timed_steps = 0
    self.timed_s = 0.0
    self.bar = None
    if show_bar() if enabled is None else enabled:
      from tqdm import tqdm
      self.bar = tqdm(total=total_steps, initial=done_steps, desc=desc.strip() or None, unit="step", file=sys.stdout,
                      dynamic_ncols=True, leave=False,
                      bar_format="{desc}{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} steps [{elapsed}{postfix}]")
      _ACTIVE.append(self.bar)
    self.done = done_steps

  @property
  def images_per_s(self) -> float | None:
    """Images per second over the timed (post-compilation) steps; None before any."""
    return self.timed_steps * self.batch_size / self.timed_s if self.timed_steps and self.timed_s > 0 else None

  def advance(self, steps: int, seconds: float, timed: bool = True) -> None:
    """``steps`` more steps took ``seconds``; ``timed=False`` when that time includes compilation."""
    self.done += steps
    if timed:
      self.timed_steps += steps
      self.timed_s += seconds
    if self.bar is not None:
      ips = self.images_per_s
      if ips:
        eta = (self.total_steps - self.done) * self.batch_size / ips
        self.bar.set_postfix_str(f"{ips:.0f} img/s, ETA {self.bar.format_interval(eta)}", refresh=False)
      self.bar.update(steps)

  def close(self) -> None:
    if self.bar is not None:
      self.bar.close()
      _ACTIVE.remove(self.bar)
      self.bar = None


__all__ = ["Progress", "write", "show_bar"]
