"""The Red-Green data set of the F-Conv paper (Exp 2, docs/experiments.md), generated in memory.

32×32×3 black images with two 4×4 boxes of value 1, one in channel 0 (red), one in channel 1 (green).
Class 0: red left of green, rows near the top (offset 7); class 1: green left of red, rows near the bottom
(offset 23). Each box's row is ``offset + randint(-4, 3)``; the left box's column is in [0, 9]; the right box's
column (and row) are redrawn in [left, 27] until the columns differ by at least 5. Labels alternate 0, 1, 0, ...

The *dissimilar* test set holds the same images as the similar one with both boxes moved 16 rows (class 0
down, class 1 up), labels unchanged: a network that reads absolute position gets it wrong.

Splits: ``train`` (2000), ``val`` (1000), ``test_similar`` and ``test_dissimilar`` (1000 each). By default the
three draws are independent (seeded ``(data_seed, split)``). ``leaky_splits=True`` reproduces the reference
generator's flaw: it re-seeded the RNG in every call, so val and the similar test set are the first 1000
training images (and the dissimilar set is those shifted).

Example:
  >>> import ml_collections
  >>> cfg = ml_collections.ConfigDict(DEFAULTS)
  >>> d = load(cfg, 'test_dissimilar', seed=0)
  >>> d['image'].shape, d['image'].dtype, d['label'][:4].tolist()
  ((1000, 32, 32, 3), dtype('float32'), [0, 1, 0, 1])
"""

from __future__ import annotations

from typing import Any

import numpy as np

IMAGE_SIZE = 32
BOX = 4
OFFSETS = (7, 23)  # row offset of class 0 (top) and class 1 (bottom)
DISSIMILAR_SHIFT = 16  # rows: class 0 moves down, class 1 up

DEFAULTS: dict[str, Any] = dict(
    train_size=2000,  # reference sizes (docs/experiments.md)
    val_size=1000,
    test_size=1000,
    data_seed=1988,  # the reference's seed; the data are the same for every run seed, as in the reference
    leaky_splits=False,  # True: val and test_similar = first images of train (the reference's flaw)
)
SPLITS = ("train", "val", "test_similar", "test_dissimilar")
_SPLIT_INDEX = {"train": 0, "val": 1, "test": 2}


def box_positions(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
  """Draws the box positions of ``n`` images (labels alternate, starting with class 0).

  Returns:
    dict of int arrays (n,): ``label``, ``row_left``, ``col_left``, ``row_right``, ``col_right`` (top-left
    corners; the left box is red for class 0 and green for class 1).
  """
  label = np.arange(n) % 2
  offset = np.asarray(OFFSETS)[label]
  off_size = IMAGE_SIZE - BOX  # 28
  jitter = off_size // 6  # rows offset + [-4, 3], as numpy's randint(-28/6, 28/6) in the reference
  col_left = rng.integers(0, off_size // 2 - BOX, size=n)  # [0, 9]
  row_left = offset + rng.integers(-jitter, jitter, size=n)
  col_right = np.empty(n, np.int64)
  row_right = np.empty(n, np.int64)
  todo = np.arange(n)
  while todo.size:  # rejection sampling like the reference: redraw column and row until 5 apart
    col = rng.integers(col_left[todo], off_size)
    row = offset[todo] + rng.integers(-jitter, jitter, size=todo.size)
    col_right[todo], row_right[todo] = col, row
    todo = todo[np.abs(col - col_left[todo]) < BOX + 1]
  return dict(label=label, row_left=row_left, col_left=col_left, row_right=row_right, col_right=col_right)


def render(positions: dict[str, np.ndarray], dissimilar: bool = False) -> np.ndarray:
  """Images (n, 32, 32, 3) float32 of the given box positions; ``dissimilar`` shifts boxes by 16 rows."""
  label = positions["label"]
  n = label.shape[0]
  shift = np.where(label == 0, DISSIMILAR_SHIFT, -DISSIMILAR_SHIFT) if dissimilar else np.zeros(n, np.int64)
  # Class 0: left box red (channel 0), right box green (channel 1); class 1 the other way round.
  left_channel, right_channel = label, 1 - label
  images = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE, 3), np.float32)
  d = np.arange(BOX)
  idx = np.arange(n)[:, None, None]
  for row, col, channel in ((positions["row_left"], positions["col_left"], left_channel),
                            (positions["row_right"], positions["col_right"], right_channel)):
    rows = (row + shift)[:, None, None] + d[None, :, None]
    cols = col[:, None, None] + d[None, None, :]
    images[idx, rows, cols, channel[:, None, None]] = 1.0
  return images


def _split_positions(cfg: Any, split: str) -> dict[str, np.ndarray]:
  kind = "test" if split.startswith("test") else split
  size = {"train": cfg.train_size, "val": cfg.val_size, "test": cfg.test_size}[kind]
  if cfg.leaky_splits:
    # The reference re-seeds with the same seed before every draw: every split starts as a copy of train.
    rng = np.random.default_rng(cfg.data_seed)
    if kind != "train" and size > cfg.train_size:
      raise ValueError(f"leaky_splits=True needs {kind}_size <= train_size, got {size} > {cfg.train_size}.")
    positions = box_positions(cfg.train_size, rng)
    return {k: v[:size] for k, v in positions.items()}
  return box_positions(size, np.random.default_rng([cfg.data_seed, _SPLIT_INDEX[kind]]))


def load(data_config: Any, split: str, seed: int) -> dict[str, np.ndarray]:
  """One split as ``{'image': float32 (N, 32, 32, 3), 'label': int32 (N,)}``.

  Args:
    data_config: the ``data`` config section (keys of ``DEFAULTS``).
    split: one of ``SPLITS``.
    seed: the run seed; unused: the data depend on ``data_config.data_seed`` only, as in the reference.
  """
  del seed
  if split not in SPLITS:
    raise ValueError(f"split={split!r} is not supported; accepted values: {', '.join(map(repr, SPLITS))}.")
  for key in ("train_size", "val_size", "test_size"):
    if int(data_config[key]) < 1:
      raise ValueError(f"data.{key} must be >= 1, got {data_config[key]!r}.")
  positions = _split_positions(data_config, split)
  images = render(positions, dissimilar=split == "test_dissimilar")
  return {"image": images, "label": positions["label"].astype(np.int32)}


__all__ = ["DEFAULTS", "SPLITS", "box_positions", "render", "load"]
