"""Brown / PhotoTour patch-matching data (Liberty, Notre Dame, Yosemite) for HardNet (Exp 4 of the F-Conv paper).

Standard format (Winder & Brown; the folders of ``liberty.zip``, ``notredame.zip``, ``yosemite.zip``)::

  ROOT/<name>/patches0000.bmp, patches0001.bmp, ...  1024x1024 greyscale sheets of 16x16 patches of 64x64,
                                                      row by row; patch id = sheet * 256 + row * 16 + column
  ROOT/<name>/info.txt                                one line per patch: "<3D point id> <unused>"
  ROOT/<name>/m50_100000_100000_0.txt                 evaluation pairs: "<patch id> <3D point> <unused>
                                                      <patch id> <3D point> <unused> <unused>"; a pair
                                                      matches when the two 3D point ids are equal

(the same reading as torchvision's ``PhotoTour``: the last sheet is partly empty, so only as many patches as
``info.txt`` has lines are kept). Training follows HardNet (DagnyT/hardnet): triplets (anchor, positive of the
same 3D point, negative of another) drawn with distinct anchor points inside every batch, patches resized to
32x32 (cv2 ``INTER_LINEAR`` at exactly 1/2 is the 2x2 mean, which is what ``preprocess_patches`` computes)
and normalised with HardNet's data set mean and std. Evaluation: FPR at 95% recall on the 100k pairs
(``fpr_at_95_recall`` of ``jaxborders.models.hardnet``).

Example (a hand-made data set with 2 points of 2 patches each):
  >>> ids = np.array([0, 0, 1, 1])
  >>> sample_triplets(ids, 4, batch_size=2, seed=0).shape
  (4, 3)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from PIL import Image

PHOTOTOUR_NAMES: tuple[str, ...] = ("liberty", "notredame", "yosemite")
# Patch counts of the standard (DoG) versions, as torchvision's PhotoTour lists them.
PHOTOTOUR_SIZES = {"liberty": 450092, "notredame": 468159, "yosemite": 633587}
MATCHES_FILE = "m50_100000_100000_0.txt"
# HardNet's input normalisation (its --mean-image / --std-image defaults, on [0, 1] pixels).
HARDNET_MEAN, HARDNET_STD = 0.443728476019, 0.20197947209
SHEET, PATCH = 1024, 64
DOWNLOAD_HINT = ("Download the data sets from http://matthewalunbrown.com/patchdata/patchdata.html (or the mirrors "
                 "torchvision uses: http://icvl.ee.ic.ac.uk/vbalnt/{liberty,notredame,yosemite}.zip) and unzip "
                 "each into ROOT/<name>/.")


@dataclasses.dataclass(frozen=True)
class PhotoTour:
  """One PhotoTour data set in memory.

  Attributes:
    name: folder name (``'liberty'``, ...).
    patches: uint8 (N, 64, 64).
    point_ids: int64 (N,) 3D point id of each patch (its class).
    matches: int64 (M, 3) evaluation pairs: patch id, patch id, 1 if they match else 0.
  """

  name: str
  patches: np.ndarray
  point_ids: np.ndarray
  matches: np.ndarray


def read_sheet(path: str) -> np.ndarray:
  """One 1024x1024 bmp sheet -> uint8 (256, 64, 64) patches in row-major order."""
  with Image.open(path) as pil:
    sheet = np.asarray(pil.convert("L"))
  if sheet.shape != (SHEET, SHEET):
    raise ValueError(f"{path}: a patch sheet must be {SHEET}x{SHEET}; got {sheet.shape[1]}x{sheet.shape[0]}.")
  n = SHEET // PATCH
  return sheet.reshape(n, PATCH, n, PATCH).transpose(0, 2, 1, 3).reshape(n * n, PATCH, PATCH)


def read_phototour(root: str, name: str, *, matches_file: str | None = MATCHES_FILE) -> PhotoTour:
  """Reads ``root/name`` in the standard format (see the module docstring).

  Args:
    root: folder holding one subfolder per data set.
    name: the subfolder (``'liberty'``, ``'notredame'``, ``'yosemite'``, or another in the same format).
    matches_file: evaluation pairs file inside the folder; None skips it (``matches`` is then empty).

  Raises:
    FileNotFoundError: the folder, its sheets or info.txt are missing (with where to download them).
    ValueError: info.txt lists more patches than the sheets hold.
  """
  folder = os.path.join(root, name)
  if not os.path.isdir(folder):
    raise FileNotFoundError(f"PhotoTour folder {folder!r} does not exist (name={name!r}; standard names: "
                            f"{', '.join(PHOTOTOUR_NAMES)}). {DOWNLOAD_HINT}")
  sheets = sorted(f for f in os.listdir(folder) if f.lower().endswith(".bmp"))
  info = os.path.join(folder, "info.txt")
  if not sheets or not os.path.exists(info):
    raise FileNotFoundError(f"{folder!r} needs patches*.bmp sheets and info.txt. {DOWNLOAD_HINT}")
  with open(info) as f:
    point_ids = np.array([int(line.split()[0]) for line in f if line.strip()], np.int64)
  capacity = len(sheets) * (SHEET // PATCH) ** 2
  if len(point_ids) > capacity:
    raise ValueError(f"{info} lists {len(point_ids)} patches but the {len(sheets)} sheets hold {capacity}.")
  patches = np.concatenate([read_sheet(os.path.join(folder, s)) for s in sheets])[:len(point_ids)]
  matches = np.zeros((0, 3), np.int64)
  if matches_file is not None:
    path = os.path.join(folder, matches_file)
    if not os.path.exists(path):
      raise FileNotFoundError(f"matches_file {path!r} does not exist. {DOWNLOAD_HINT}")
    with open(path) as f:
      rows = [line.split() for line in f if line.strip()]
    matches = np.array([[int(r[0]), int(r[3]), int(r[1] == r[4])] for r in rows], np.int64).reshape(-1, 3)
    if matches.size and matches[:, :2].max() >= len(point_ids):
      raise ValueError(f"{path} refers to patch {matches[:, :2].max()} but there are {len(point_ids)} patches.")
  return PhotoTour(name, patches, point_ids, matches)


def sample_triplets(point_ids: np.ndarray, num_triplets: int, *, batch_size: int, seed: int) -> np.ndarray:
  """HardNet's ``generate_triplets``: int64 (num_triplets, 3) patch ids (anchor, positive, negative).

  Within each block of ``batch_size`` consecutive triplets the anchors' 3D points are distinct (HardNet mines
  negatives inside the batch, so a repeated point would be a false negative); the positive is another patch
  of the anchor's point, the negative a patch of a different point. Points with a single patch are never
  anchors. Deterministic in ``seed``.
  """
  point_ids = np.asarray(point_ids)
  order = np.argsort(point_ids, kind="stable")
  classes, starts, counts = np.unique(point_ids[order], return_index=True, return_counts=True)
  usable = np.flatnonzero(counts >= 2)
  if len(usable) < batch_size or len(classes) < 2:
    raise ValueError(f"batch_size={batch_size} needs at least that many 3D points with >= 2 patches; "
                     f"there are {len(usable)} (of {len(classes)} points).")
  rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x7219]))
  blocks = -(-num_triplets // batch_size)
  anchor_class = np.concatenate([rng.choice(usable, batch_size, replace=False) for _ in range(blocks)])
  anchor_class = anchor_class[:num_triplets]
  count = counts[anchor_class]
  n1 = rng.integers(0, count)
  n2 = (n1 + rng.integers(1, count)) % count  # uniform over the other patches of the point
  negative_class = (anchor_class + rng.integers(1, len(classes), size=num_triplets)) % len(classes)
  n3 = rng.integers(0, counts[negative_class])
  base = starts[anchor_class]
  return np.stack([order[base + n1], order[base + n2], order[starts[negative_class] + n3]], axis=1).astype(np.int64)


def preprocess_patches(patches: np.ndarray, size: int = 32, mean: float = HARDNET_MEAN,
                       std: float = HARDNET_STD) -> np.ndarray:
  """uint8 (..., 64, 64) -> float32 (..., size, size, 1) normalised ``(x / 255 - mean) / std``.

  64 -> 32 is the 2x2 mean (= cv2 ``INTER_LINEAR``, HardNet's resize); other sizes use PIL bilinear.
  """
  x = np.asarray(patches)
  if x.shape[-2:] == (size, size):
    out = x.astype(np.float32)
  elif x.shape[-1] == 2 * size and x.shape[-2] == 2 * size:
    out = x.astype(np.float32).reshape(*x.shape[:-2], size, 2, size, 2).mean(axis=(-3, -1))
  else:
    flat = x.reshape(-1, *x.shape[-2:])
    out = np.stack([np.asarray(Image.fromarray(p).resize((size, size), Image.BILINEAR), np.float32) for p in flat])
    out = out.reshape(*x.shape[:-2], size, size)
  return ((out / 255.0 - mean) / std)[..., None].astype(np.float32)


def _augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """HardNet's --augmentation: random horizontal flip and random multiple of 90 degrees, per patch."""
  out = np.empty_like(x)
  for i, patch in enumerate(x):
    patch = np.flip(patch, axis=1) if rng.random() < 0.5 else patch
    out[i] = np.rot90(patch, k=int(rng.integers(4)), axes=(0, 1))
  return out


def triplet_batches(data: PhotoTour, triplets: np.ndarray, batch_size: int, *, seed: int = 0, size: int = 32,
                    augment: bool = False, start_step: int = 0, shard_index: int = 0,
                    shard_count: int = 1) -> Iterator[dict[str, np.ndarray]]:
  """One pass over ``triplets`` (from ``sample_triplets`` with the same ``batch_size``) as batches
  ``{'anchor', 'positive', 'negative'}`` float32 (B / shard_count, size, size, 1).

  ``batch_size`` is global; process ``shard_index`` gets rows ``shard_index::shard_count`` of every batch (the
  loss mines negatives over the gathered global batch). ``start_step`` resumes exactly; the augmentation of a
  batch depends only on (seed, step). The last partial batch is dropped.
  """
  if batch_size % shard_count:
    raise ValueError(f"batch_size={batch_size} must be divisible by shard_count={shard_count}.")
  for step in range(start_step, len(triplets) // batch_size):
    rows = triplets[step * batch_size:(step + 1) * batch_size][shard_index::shard_count]
    batch = {}
    for j, key in enumerate(("anchor", "positive", "negative")):
      patches = data.patches[rows[:, j]]
      if augment:
        patches = _augment(patches, np.random.default_rng(np.random.SeedSequence([int(seed), step, j])))
      batch[key] = preprocess_patches(patches, size)
    yield batch


def pair_batches(data: PhotoTour, batch_size: int, *, size: int = 32) -> Iterator[dict[str, np.ndarray]]:
  """The evaluation pairs in order: ``{'patch1', 'patch2'}`` float32 (B, size, size, 1), ``label`` int32 (1
  match, 0 not) and ``mask`` (0 on the padding of the last batch, so every batch has ``batch_size`` rows)."""
  m = data.matches
  for start in range(0, len(m), batch_size):
    rows = m[start:start + batch_size]
    pad = batch_size - len(rows)
    mask = np.concatenate([np.ones(len(rows), np.float32), np.zeros(pad, np.float32)])
    rows = np.concatenate([rows, np.repeat(rows[:1], pad, axis=0)]) if pad else rows
    yield {"patch1": preprocess_patches(data.patches[rows[:, 0]], size),
           "patch2": preprocess_patches(data.patches[rows[:, 1]], size),
           "label": rows[:, 2].astype(np.int32), "mask": mask}


def fpr_at_95_recall(distances: Any, labels: Any, recall: float = 0.95) -> float:
  """HardNet's FPR at 95% recall; the implementation lives in ``jaxborders.models.hardnet`` (see there)."""
  from jaxborders.models.hardnet import fpr_at_95_recall as impl  # Imported here: it pulls in Flax.
  return impl(distances, labels, recall)


def evaluate_fpr95(describe: Callable[[np.ndarray], np.ndarray], data: PhotoTour, batch_size: int = 1024,
                   size: int = 32) -> float:
  """FPR95 of descriptor function ``describe`` ((B, size, size, 1) -> (B, D)) on ``data``'s pairs, with L2
  distances between the two patches' descriptors (HardNet's test protocol)."""
  distances, labels = [], []
  for batch in pair_batches(data, batch_size, size=size):
    d1, d2 = np.asarray(describe(batch["patch1"])), np.asarray(describe(batch["patch2"]))
    keep = batch["mask"] > 0
    distances.append(np.sqrt(((d1 - d2) ** 2).sum(-1))[keep])
    labels.append(batch["label"][keep])
  return fpr_at_95_recall(np.concatenate(distances), np.concatenate(labels))


__all__ = [
    "PHOTOTOUR_NAMES", "PHOTOTOUR_SIZES", "MATCHES_FILE", "HARDNET_MEAN", "HARDNET_STD", "PhotoTour", "read_sheet",
    "read_phototour", "sample_triplets", "preprocess_patches", "triplet_batches", "pair_batches",
    "fpr_at_95_recall", "evaluate_fpr95",
]
