"""Orbax checkpoints of a run: the train state, the best parameters so far, and a JSON of host counters.

One ``CheckpointManager`` in ``<run_dir>/checkpoints``; each step holds items ``state`` (the ``TrainState``
plus ``best_params``) and ``meta`` (epoch, early-stopping and plateau counters, and a sha256 of the saved tree).
Restoring gives everything the loop needs to continue bit-identically.

A checkpoint that cannot be restored (a truncated or zeroed data file, a missing ``_METADATA``, an empty or
half-written step directory, an unreadable ``meta``) or whose restored bytes do not match the recorded sha256 is
moved to ``<run_dir>/checkpoints_corrupt/`` with a warning naming it, and the next older one is tried. At least
two periodic checkpoints are kept so that there is one to fall back to.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

MIN_KEEP = 2  # periodic checkpoints kept at least: a corrupt latest one falls back to the previous one


def tree_sha256(tree: Any) -> str:
  """sha256 over the leaves' paths, dtypes, shapes and bytes (fully replicated or host arrays)."""
  h = hashlib.sha256()
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    a = np.asarray(leaf.addressable_data(0)) if isinstance(leaf, jax.Array) else np.asarray(leaf)
    h.update(f"{jax.tree_util.keystr(path)}:{a.dtype}:{a.shape}".encode())
    h.update(np.ascontiguousarray(a).tobytes())
  return h.hexdigest()


class Checkpointer:
  """Saves and restores ``(tree, meta)`` pairs keyed by the global step."""

  def __init__(self, directory: str, keep: int = 2):
    self.directory = os.path.abspath(directory)
    self.keep = max(MIN_KEEP, keep)
    self.manager = self._open()

  def _open(self) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=self.keep, create=True)
    return ocp.CheckpointManager(self.directory, options=options, item_names=("state", "meta"))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, tree: Any, meta: dict[str, Any], wait: bool = False) -> None:
    """Saves (asynchronously unless ``wait``); a second save of the same step is skipped."""
    if self.manager.latest_step() == step:
      if wait:
        self.manager.wait_until_finished()
      return
    meta = {**meta, "sha256": tree_sha256(tree)}
    self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(tree), meta=ocp.args.JsonSave(meta)),
                      force=True)
    if wait:
      self.manager.wait_until_finished()

  def restore(self, abstract_tree: Any, step: int | None = None) -> tuple[Any, dict[str, Any]]:
    """Restores into the structure/shardings of ``abstract_tree`` (``jax.ShapeDtypeStruct`` leaves).

    Raises ValueError when the restored tree does not match the sha256 recorded at save time.
    """
    step = self.manager.latest_step() if step is None else step
    out = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_tree),
                                                             meta=ocp.args.JsonRestore()))
    meta = dict(out.meta)
    expected = meta.pop("sha256", None)
    if expected is not None and tree_sha256(out.state) != expected:
      raise ValueError(f"step {step}: the restored arrays do not match the sha256 recorded when it was saved")
    return out.state, meta

  def step_dirs(self) -> list[int]:
    """Steps present on disk, newest first: orbax's, plus integer-named directories orbax does not list (empty)."""
    steps = set(self.manager.all_steps())
    if os.path.isdir(self.directory):
      steps |= {int(d) for d in os.listdir(self.directory) if d.isdigit()}
    return sorted(steps, reverse=True)

  def restore_latest_good(self, abstract_tree: Any) -> tuple[int, Any, dict[str, Any]] | None:
    """``(step, tree, meta)`` of the newest checkpoint that restores intact; ``None`` when there is none.

    Every newer checkpoint that fails is set aside (``set_aside``) with a warning on stderr naming it.
    """
    for step in self.step_dirs():
      try:
        tree, meta = self.restore(abstract_tree, step)
        return step, tree, meta
      except Exception as e:  # noqa: BLE001  (orbax/tensorstore/json raise many types for a damaged step)
        self.set_aside(step, e)
    return None

  def set_aside(self, step: int, error: BaseException) -> str:
    """Moves a damaged step directory to ``<run_dir>/checkpoints_corrupt/`` and reopens the manager."""
    source = os.path.join(self.directory, str(step))
    aside_root = os.path.join(os.path.dirname(self.directory), "checkpoints_corrupt")
    target = os.path.join(aside_root, f"{step}_{time.strftime('%Y%m%dT%H%M%S')}_{os.getpid()}")
    reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
    if jax.process_index() == 0 and os.path.exists(source):
      os.makedirs(aside_root, exist_ok=True)
      shutil.move(source, target)
    print(f"warning: checkpoint {source} is damaged ({type(error).__name__}: {reason}); moved to {target}; "
          "falling back to the previous checkpoint.", file=sys.stderr, flush=True)
    self.manager.close()
    self.manager = self._open()
    return target

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()


def restore_latest_readable(directory: str) -> tuple[int, Any, dict[str, Any]]:
  """Read-only restore (no target structure) of the newest checkpoint in ``directory`` that restores intact.

  For evaluation: damaged newer checkpoints are skipped with a warning on stderr naming them, never moved.

  Raises:
    FileNotFoundError: no step restores (the message names the directory and each step's error).
  """
  manager = ocp.CheckpointManager(os.path.abspath(directory), item_names=("state", "meta"))
  failures = []
  try:
    steps = sorted(set(manager.all_steps()) | {int(d) for d in os.listdir(directory) if d.isdigit()}, reverse=True)
    for step in steps:
      try:
        out = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(),
                                                            meta=ocp.args.JsonRestore()))
        return step, out.state, dict(out.meta)
      except Exception as e:  # noqa: BLE001  (orbax/tensorstore/json raise many types for a damaged step)
        reason = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        failures.append(f"step {step}: {type(e).__name__}: {reason}")
        print(f"warning: checkpoint {os.path.join(directory, str(step))} is damaged ({failures[-1]}); trying the "
              "previous one.", file=sys.stderr, flush=True)
  finally:
    manager.close()
  raise FileNotFoundError(f"no checkpoint in {directory} restores ({'; '.join(failures) or 'no steps'}).")


def abstract_like(tree: Any) -> Any:
  """ShapeDtypeStructs (with shardings) of a tree of arrays, as restore targets."""
  return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=getattr(a, "sharding", None)), tree)


__all__ = ["Checkpointer", "abstract_like", "tree_sha256", "MIN_KEEP", "restore_latest_readable"]
