"""Shared benchmark helpers: interleaved timing, environment description, markdown tables, JSON output."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax


def cpu_cores() -> int:
  """Cores this process may run on (the affinity mask, not the machine's total)."""
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:  # not Linux
    return os.cpu_count() or 1


def environment(torch_threads: int | None = None) -> dict[str, Any]:
  dev = jax.devices()[0]
  env: dict[str, Any] = {
      "jax": jax.__version__, "backend": jax.default_backend(), "device": f"{dev.platform}:{dev.device_kind}",
      "device_count": jax.device_count(), "cpu_cores": cpu_cores(), "python": platform.python_version(),
      "machine": platform.machine(), "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
  }
  try:
    env["load_avg_1m"] = round(os.getloadavg()[0], 2)  # other processes on a shared CPU skew timings
  except OSError:
    pass
  try:
    import flax
    env["flax"] = flax.__version__
  except ImportError:
    pass
  try:
    import torch
    env["torch"] = torch.__version__
    env["torch_threads"] = torch.get_num_threads() if torch_threads is None else torch_threads
  except ImportError:
    env["torch"] = None
  return env


def env_line(env: dict[str, Any]) -> str:
  keys = ("jax", "flax", "device", "device_count", "cpu_cores", "torch", "torch_threads", "load_avg_1m", "time_utc")
  return "Environment: " + ", ".join(f"{k}={env[k]}" for k in keys if k in env)


def time_interleaved(fns: dict[str, Callable[[], Any]], repeats: int, warmup: int = 2) -> dict[str, dict[str, float]]:
  """Median and min wall time (ms) of each zero-argument function, calls interleaved round-robin.

  Interleaving makes side-by-side numbers comparable on a shared, noisy machine: a burst of load hits every
  variant in the same round instead of one variant's whole series. Each function must block until done.
  """
  for fn in fns.values():
    for _ in range(warmup):
      fn()
  times: dict[str, list[float]] = {k: [] for k in fns}
  for _ in range(repeats):
    for name, fn in fns.items():
      start = time.perf_counter()
      fn()
      times[name].append((time.perf_counter() - start) * 1e3)
  return {k: {"median_ms": statistics.median(v), "min_ms": min(v), "repeats": len(v)} for k, v in times.items()}


def fmt_ms(v: float | None) -> str:
  if v is None:
    return "—"
  return f"{v:.1f}" if v < 1000 else f"{v:.0f}"


def fmt_ratio(a: float | None, b: float | None) -> str:
  return "—" if a is None or b is None or b == 0 else f"{a / b:.2f}×"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
  lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
  lines += ["| " + " | ".join(r) + " |" for r in rows]
  return "\n".join(lines)


def write_json(path: str | Path, payload: dict[str, Any]) -> Path:
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
  return path
