"""What a run writes as it goes: ``metrics.jsonl`` + TensorBoard, console lines, the parameters' fingerprint."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import jax
import numpy as np

from train import progress as progress_lib


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


def echo(*args: Any) -> None:
  """``print`` on process 0 only, flushed (and above a progress bar when one is shown)."""
  if jax.process_index() == 0:
    progress_lib.write(" ".join(map(str, args)))


def params_fingerprint(params: Any) -> str:
  """sha256 over the parameters' paths, dtypes, shapes and bytes: equal iff bit-identical."""
  h = hashlib.sha256()
  for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
    a = np.asarray(leaf)
    h.update(f"{jax.tree_util.keystr(path)}:{a.dtype}:{a.shape}".encode())
    h.update(np.ascontiguousarray(a).tobytes())
  return h.hexdigest()


__all__ = ["MetricWriter", "echo", "params_fingerprint"]
