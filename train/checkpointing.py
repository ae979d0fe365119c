"""Orbax checkpoints of a run: the train state, the best parameters so far, and a JSON of host counters.

One ``CheckpointManager`` in ``<run_dir>/checkpoints``; each step holds items ``state`` (the ``TrainState``
plus ``best_params``) and ``meta`` (epoch, early-stopping and plateau counters). Restoring gives everything
the loop needs to continue bit-identically.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp


class Checkpointer:
  """Saves and restores ``(tree, meta)`` pairs keyed by the global step."""

  def __init__(self, directory: str, keep: int = 2):
    self.directory = os.path.abspath(directory)
    options = ocp.CheckpointManagerOptions(max_to_keep=max(1, keep), create=True)
    self.manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "meta"))

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, tree: Any, meta: dict[str, Any], wait: bool = False) -> None:
    """Saves (asynchronously unless ``wait``); a second save of the same step is skipped."""
    if self.manager.latest_step() == step:
      if wait:
        self.manager.wait_until_finished()
      return
    self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(tree), meta=ocp.args.JsonSave(meta)),
                      force=True)
    if wait:
      self.manager.wait_until_finished()

  def restore(self, abstract_tree: Any, step: int | None = None) -> tuple[Any, dict[str, Any]]:
    """Restores into the structure/shardings of ``abstract_tree`` (``jax.ShapeDtypeStruct`` leaves)."""
    step = self.manager.latest_step() if step is None else step
    out = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_tree),
                                                             meta=ocp.args.JsonRestore()))
    return out.state, dict(out.meta)

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()


def abstract_like(tree: Any) -> Any:
  """ShapeDtypeStructs (with shardings) of a tree of arrays, as restore targets."""
  return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=getattr(a, "sharding", None)), tree)


__all__ = ["Checkpointer", "abstract_like"]
