"""Natural-image classification from scikit-image's bundled photos: the CPU-scale shift-robustness task.

The question of the F-Conv paper's Exp 3 and the BlurPool paper (does a classifier keep its answer when the
image moves by a few pixels?) needs a classification task on natural images whose test images are *larger*
than the network's input, so that shifted crops of real content exist. ImageNet is the papers' data; this
source builds a small offline stand-in from the photos that ship inside the scikit-image wheel (no download):

* **classes = source images** (``images``; default 10 photos and textures). A label says which photo a crop was
  cut from.
* every source image is converted to ``color`` and resized so that its shorter side is ``source_size``, then
  cut into horizontal bands: rows [0, 60%) train, [60%, 80%) val, [80%, 100%) test. Crops never cross a band,
  so **no test pixel is seen in training** (``REGION_BANDS`` of ``jaxborders.data.patches``).
* ``train`` and ``val`` are ``image_size`` crops at uniformly random positions; ``test`` crops are
  ``image_size + eval_margin`` on a side — the shift protocol's larger evaluation images (ImageNet: 288 for a
  224 network, docs/experiments.md), from which ``train.eval`` takes ``image_size`` windows at offsets 0..eval_margin.

Images are float32 in [0, 1], channels last. Everything is a pure function of the config and ``data_seed``:
every run seed sees the same data. Example counts are per class; examples are shuffled across classes.

Example:
  >>> import ml_collections
  >>> cfg = ml_collections.ConfigDict(dict(DEFAULTS, images=('camera', 'moon'), train_per_class=3))
  >>> split = load(cfg, 'train', seed=0)
  >>> split['image'].shape, split['image'].dtype, sorted(set(split['label'].tolist()))
  ((6, 32, 32, 1), dtype('float32'), [0, 1])
  >>> load(cfg, 'test', seed=0)['image'].shape
  (40, 40, 40, 1)
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from jaxborders.data import patches as patches_lib
from jaxborders.ops.checks import check_choice

DEFAULTS: dict[str, Any] = dict(
    # The classes: bundled photos (objects, faces, scenes) and textures. Names: patches.IMAGE_NAMES.
    images=("astronaut", "camera", "chelsea", "coffee", "rocket", "coins", "moon", "grass", "gravel", "brick"),
    image_size=32,  # network input side (train / val crops)
    eval_margin=8,  # test crops are image_size + eval_margin: shifts 0..eval_margin for consistency / diagonal
    source_size=256,  # each photo is resized so that its shorter side has this many pixels
    color="gray",  # 'gray' (1 channel; colour would give the RGB photos away) or 'rgb'
    train_per_class=100,
    val_per_class=20,
    test_per_class=20,
    data_seed=0,  # crop positions and order; the same data for every run seed
)
SPLITS: tuple[str, ...] = ("train", "val", "test")
_SALT = {"train": 0, "val": 1, "test": 2}


@functools.lru_cache(maxsize=64)
def source_image(name: str, color: str, source_size: int) -> np.ndarray:
  """A bundled photo as float32 [0, 1] (H, W, C), resized (anti-aliased) so that min(H, W) == source_size."""
  from skimage.transform import resize  # scikit-image is an optional ('train') dependency

  img = patches_lib.load_image(name, color)
  scale = source_size / min(img.shape[:2])
  shape = (max(source_size, round(img.shape[0] * scale)), max(source_size, round(img.shape[1] * scale)))
  out = resize(img, (*shape, img.shape[2]), order=1, anti_aliasing=scale < 1, preserve_range=True)
  out = np.clip(out, 0.0, 1.0).astype(np.float32)
  out.setflags(write=False)  # cached: callers must not modify it
  return out


def crop_size(data_config: Any, split: str) -> int:
  """Side of the images of ``split``: ``image_size``, plus ``eval_margin`` for the test split."""
  return int(data_config.image_size) + (int(data_config.eval_margin) if split == "test" else 0)


def _check(data_config: Any, split: str) -> None:
  check_choice("split", split, SPLITS)
  check_choice("data.color", data_config.color, patches_lib.COLOR_MODES)
  images = tuple(data_config.images)
  if len(images) < 2:
    raise ValueError(f"data.images must name at least 2 photos (one class each), got {images!r}.")
  for name in images:
    check_choice("data.images entry", name, patches_lib.IMAGE_NAMES)
  if len(set(images)) != len(images):
    raise ValueError(f"data.images must not repeat a photo, got {images!r}.")
  for key in ("image_size", "source_size", "train_per_class", "val_per_class", "test_per_class"):
    if int(data_config[key]) < 1:
      raise ValueError(f"data.{key} must be >= 1, got {data_config[key]!r}.")
  if int(data_config.eval_margin) < 0:
    raise ValueError(f"data.eval_margin must be >= 0, got {data_config.eval_margin!r}.")
  lo, hi = patches_lib.REGION_BANDS[split]
  band = int(int(data_config.source_size) * hi) - int(int(data_config.source_size) * lo)
  if band < crop_size(data_config, split):
    raise ValueError(f"the {split} band of a source image ({band} rows of data.source_size="
                     f"{data_config.source_size}) is smaller than its crops ({crop_size(data_config, split)} px); "
                     "raise data.source_size or lower data.image_size / data.eval_margin.")


def load(data_config: Any, split: str, seed: int) -> dict[str, np.ndarray]:
  """``{'image': float32 (N, S, S, C), 'label': int32 (N,)}`` of ``split`` (the trainer's entry point).

  ``seed`` (the run seed) is ignored: the data depend on ``data_config.data_seed`` only.
  """
  del seed
  _check(data_config, split)
  size = crop_size(data_config, split)
  per_class = int(data_config[f"{split}_per_class"])
  lo, hi = patches_lib.REGION_BANDS[split]
  images, labels = [], []
  for label, name in enumerate(data_config.images):
    src = source_image(name, data_config.color, int(data_config.source_size))
    height, width = src.shape[:2]
    # The band is measured on the shorter side's scale (source_size rows at least) so that every photo's split
    # regions have the same height whatever its aspect ratio.
    row_lo, row_hi = int(height * lo), int(height * hi)
    rng = np.random.default_rng([int(data_config.data_seed), _SALT[split], label])
    rows = rng.integers(row_lo, row_hi - size + 1, per_class)
    cols = rng.integers(0, width - size + 1, per_class)
    images += [src[r:r + size, c:c + size] for r, c in zip(rows, cols)]
    labels += [label] * per_class
  order = np.random.default_rng([int(data_config.data_seed), _SALT[split], 1 << 20]).permutation(len(labels))
  return {"image": np.stack(images)[order], "label": np.asarray(labels, np.int32)[order]}


__all__ = ["DEFAULTS", "SPLITS", "load", "source_image", "crop_size"]
