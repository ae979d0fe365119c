"""Quadrant location task (F-Conv paper Exp 1, Fig. 4-5; docs/experiments.md).

A natural image of ``patch_size`` is pasted into a black ``canvas_size`` canvas at the top-left (class 0) or the
bottom-right (class 1); then a black border of ``border`` pixels is added on all four sides. A translation-
invariant network cannot tell the classes apart; one that exploits the image boundary can, and the border
measures how far from the boundary it still can.

Each source patch gives *both* images (one per class), as in the paper, so the classes are exactly balanced and
content carries no label information. Train / val / test come from disjoint source images (see
``jaxborders.data.patches``; the reference implementation used the same 2000 images for all three — a flaw this
project does not copy).

Sizes: the paper's text says 56×56 images in a 112×112 canvas; its code (CWB ``utils_dataset.py``) uses a
120×120 canvas with the image at offsets 0 and 64. ``PAPER`` follows the code (56 in 120, borders
{0, 16, 32, 64, 128, 256, 512}): the two corners are then 64 px apart, a multiple of ResNet's total stride 32, so
a stride-1-equivariant (F-Conv) network sees the two classes on the same sampling phase and cannot read the
location from aliasing. ``CPU`` scales this down: 24 in a 56 canvas (corners 32 px apart) with borders
{0, 8, 16, 32, 64}, the paper's first five points halved.

Images are float32 in [0, 1] with black = 0, so the black canvas and border equal the networks' zero padding
(as in the reference, where they are zeros after normalisation).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np

from jaxborders.data import patches as patches_lib
from jaxborders.ops.checks import check_choice

SOURCES: tuple[str, ...] = ("skimage", "imagenet")


@dataclasses.dataclass(frozen=True)
class QuadrantScale:
  """Patch and canvas size and the borders of one scale of the experiment."""

  patch_size: int
  canvas_size: int
  borders: tuple[int, ...]


CPU = QuadrantScale(patch_size=24, canvas_size=56, borders=(0, 8, 16, 32, 64))
PAPER = QuadrantScale(patch_size=56, canvas_size=120, borders=(0, 16, 32, 64, 128, 256, 512))
PAPER_SPLIT_SIZE = 1000  # source images per split in the paper (2000 task images each)


def image_size(canvas_size: int, border: int) -> int:
  """Side of a task image: the canvas plus ``border`` on both sides."""
  return canvas_size + 2 * border


def patch_offsets(patch_size: int, canvas_size: int, border: int) -> dict[int, tuple[int, int]]:
  """Top-left corner (row, col) of the pasted patch in the final image, per class.

  >>> patch_offsets(24, 56, 8)
  {0: (8, 8), 1: (40, 40)}
  """
  check_sizes(patch_size, canvas_size, border)
  far = border + canvas_size - patch_size
  return {0: (border, border), 1: (far, far)}


def check_sizes(patch_size: int, canvas_size: int, border: int) -> None:
  """Raises ``ValueError`` unless 1 <= patch_size <= canvas_size and border >= 0."""
  if patch_size < 1:
    raise ValueError(f"patch_size must be >= 1, got {patch_size}.")
  if canvas_size < patch_size:
    raise ValueError(f"canvas_size must be >= patch_size ({patch_size}), got {canvas_size}.")
  if border < 0:
    raise ValueError(f"border must be >= 0, got {border}.")


def compose(patches: Any, labels: Any, canvas_size: int, border: int = 0, xp: Any = np) -> Any:
  """Pastes ``patches`` (N, p, p, C) at the corner of their ``labels`` (0: top-left, 1: bottom-right).

  Works on NumPy (``xp=np``) and, unchanged, on JAX arrays under ``jit`` (``xp=jax.numpy``; sizes are static),
  so that large-border images can be built per batch on the device instead of stored.

  Returns:
    (N, canvas_size + 2 * border, same, C) images, zero outside the patch.
  """
  p = patches.shape[1]
  if patches.ndim != 4 or patches.shape[2] != p:
    raise ValueError(f"patches must have shape (N, p, p, C), got {tuple(patches.shape)}.")
  check_sizes(p, canvas_size, border)
  gap = canvas_size - p
  top_left = xp.pad(patches, ((0, 0), (border, border + gap), (border, border + gap), (0, 0)))
  bottom_right = xp.pad(patches, ((0, 0), (border + gap, border), (border + gap, border), (0, 0)))
  is_br = (xp.asarray(labels) == 1)[:, None, None, None]
  return xp.where(is_br, bottom_right, top_left)


def imagenet_patches(split: str, num: int, patch_size: int, *, seed: int = 0, data_dir: str | None = None,
                     color: str = "rgb") -> np.ndarray:
  """The paper's source: ``num`` ImageNet validation images per split, each resized to ``patch_size``.

  Like the paper, 3 × ``num`` images are drawn from the 50 000 validation images (a seeded permutation) and
  dealt to train / val / test, so the splits are disjoint. Reads a prepared TFDS ``imagenet2012`` with
  ``tfds.data_source`` (TensorFlow is not needed to read); fails with instructions when it is missing.
  """
  check_choice("split", split, patches_lib.SPLITS)
  check_choice("color", color, patches_lib.COLOR_MODES)
  try:
    import tensorflow_datasets as tfds
  except ImportError as e:
    raise ImportError("image_source='imagenet' needs tensorflow-datasets (pip install 'jaxborders[data]') and a "
                      "prepared imagenet2012; use image_source='skimage' (the default) for the bundled images.") from e
  try:
    # download=False: never start a download / preparation from here (ImageNet needs a manual download).
    ds = tfds.data_source("imagenet2012", split="validation", data_dir=data_dir, download=False)
  except Exception as e:  # TFDS raises several types for a missing or unprepared data set
    raise FileNotFoundError(
        f"image_source='imagenet' could not open TFDS 'imagenet2012' (data_dir={data_dir!r}): {e}\n"
        "Prepare it once (needs TensorFlow and the ILSVRC2012 tarballs in the manual dir): "
        "`tfds build imagenet2012 --file_format=array_record --manual_dir=...`, then pass "
        "--config.data.data_dir=<dir>. Or use image_source='skimage' (the default: no download).") from e
  total = len(ds)
  if 3 * num > total:
    raise ValueError(f"num={num} per split needs {3 * num} validation images; the data set has {total}.")
  order = np.random.default_rng([seed, 1988]).permutation(total)
  start = patches_lib.SPLITS.index(split) * num
  out = []
  for i in order[start:start + num]:
    img = np.asarray(ds[int(i)]["image"], np.float32) / 255.0
    if img.ndim == 2:
      img = img[..., None]
    if img.shape[-1] == 1 and color == "rgb":
      img = np.repeat(img, 3, axis=-1)
    elif img.shape[-1] == 3 and color == "gray":
      img = (img @ np.array([0.2125, 0.7154, 0.0721], np.float32))[..., None]
    from skimage.transform import resize  # the whole image is resized, as in the paper (no crop)

    out.append(resize(img, (patch_size, patch_size, img.shape[-1]), order=1, anti_aliasing=True,
                      preserve_range=True).astype(np.float32))
  return np.stack(out)


def source_patches(split: str, num_sources: int, patch_size: int, *, seed: int = 0, source: str = "skimage",
                   color: str = "rgb", split_by: str = "source", data_dir: str | None = None) -> np.ndarray:
  """The ``num_sources`` natural images of one split, (num_sources, p, p, C), from ``source``."""
  check_choice("source", source, SOURCES)
  if source == "imagenet":
    return imagenet_patches(split, num_sources, patch_size, seed=seed, data_dir=data_dir, color=color)
  return patches_lib.natural_patches(split, num_sources, patch_size, seed=seed, color=color, split_by=split_by)


def quadrant_split(split: str = "train", num_sources: int = 200, *, patch_size: int = CPU.patch_size,
                   canvas_size: int | None = None, border: int = 0, seed: int = 0, source: str = "skimage",
                   color: str = "rgb", split_by: str = "source", data_dir: str | None = None,
                   materialize: bool = True) -> dict[str, np.ndarray]:
  """One split of the quadrant task: ``2 * num_sources`` images, labels alternating 0, 1.

  Image ``2i`` (class 0, top-left) and ``2i + 1`` (class 1, bottom-right) hold the same source patch ``i``.

  Args:
    split: ``'train'``, ``'val'`` or ``'test'``.
    num_sources: natural images in the split (the paper: 1000).
    patch_size, canvas_size, border: geometry (canvas defaults to ``2 * patch_size``).
    seed, source, color, split_by, data_dir: see ``source_patches``.
    materialize: build the images (``'image'``); with ``False`` return only ``'patch'`` (one per image) and
      ``'label'``, to be composed per batch with ``compose`` (the paper's 512 border makes 1136² images: 2000 of
      them do not fit in memory).

  Returns:
    ``{'image': (2n, S, S, C) float32, 'label': (2n,) int32}`` with ``S = canvas + 2 * border`` (or ``'patch'``
    instead of ``'image'``).
  """
  canvas_size = 2 * patch_size if canvas_size is None else canvas_size
  check_sizes(patch_size, canvas_size, border)
  if num_sources < 1:
    raise ValueError(f"num_sources must be >= 1, got {num_sources}.")
  src = source_patches(split, num_sources, patch_size, seed=seed, source=source, color=color, split_by=split_by,
                       data_dir=data_dir)
  pair_patches = np.repeat(src, 2, axis=0)
  labels = np.tile(np.array([0, 1], np.int32), num_sources)
  if not materialize:
    return {"patch": pair_patches, "label": labels}
  return {"image": compose(pair_patches, labels, canvas_size, border), "label": labels}


# ----------------------------------------------------------------------------------------------------------
# Trainer data source (train/README.md): ``data.source = 'quadrant'``.

SPLITS = ("train", "val", "test")
DEFAULTS = dict(
    num_train=100,  # source images per split; each gives two task images (one per class)
    num_val=50,
    num_test=100,
    patch_size=CPU.patch_size,  # 24 in a 56 canvas: the corners are 32 px apart (module docstring)
    canvas_size=CPU.canvas_size,
    border=0,
    color="gray",  # 'gray' or 'rgb'
    split_by="source",  # 'source' (disjoint images) or 'region' (disjoint bands of every image)
    image_source="skimage",  # 'skimage' (bundled, no download) or 'imagenet' (TFDS imagenet2012, prepared)
    data_dir="",  # TFDS data_dir for source='imagenet' ('' = TFDS default)
    data_seed=0,  # which patches are cut; the same data for every run seed
    max_gb=8.0,  # larger splits are streamed (composed per batch) instead of held in memory
)


@functools.lru_cache(maxsize=16)
def _cached_patches(split: str, num: int, patch_size: int, seed: int, source: str, color: str, split_by: str,
                    data_dir: str) -> dict[str, np.ndarray]:
  # A sweep over borders and seeds reuses the same patches: cut (and resize) them once per process.
  out = quadrant_split(split, num, patch_size=patch_size, seed=seed, source=source, color=color, split_by=split_by,
                       data_dir=data_dir or None, materialize=False)
  for v in out.values():
    v.setflags(write=False)
  return out


def load(data_config: Any, split: str, seed: int) -> dict[str, np.ndarray] | Any:
  """Trainer data source: one split of the quadrant task (``seed`` is ignored: ``data_seed`` picks the data).

  Returns ``{'image', 'label'}`` in memory, or a ``jaxborders.data.stream.Stream`` composing images per batch when the split
  would exceed ``max_gb`` (the paper's large borders).
  """
  del seed
  check_choice("split", split, SPLITS)
  c = data_config
  num = {"train": c.num_train, "val": c.num_val, "test": c.num_test}[split]
  canvas = int(c.canvas_size)
  check_sizes(int(c.patch_size), canvas, int(c.border))
  pairs = _cached_patches(split, int(num), int(c.patch_size), int(c.data_seed), c.image_source, c.color,
                          c.split_by, c.data_dir)
  size = image_size(canvas, int(c.border))
  channels = pairs["patch"].shape[-1]
  if pairs["label"].shape[0] * size * size * channels * 4 <= c.max_gb * 2**30:
    return {"image": compose(pairs["patch"], pairs["label"], canvas, int(c.border)), "label": pairs["label"]}
  from jaxborders.data.stream import Stream  # only the trainer's streaming path needs it

  def batches(epoch: int, batch_size: int, process_index: int = 0, process_count: int = 1):
    n = pairs["label"].shape[0]
    order = np.random.default_rng([int(c.data_seed), epoch]).permutation(n) if split == "train" else np.arange(n)
    local = batch_size // process_count
    for start in range(0, n - batch_size + 1, batch_size):
      ix = order[start + process_index * local:start + (process_index + 1) * local]
      yield {"image": compose(pairs["patch"][ix], pairs["label"][ix], canvas, int(c.border)),
             "label": pairs["label"][ix]}

  return Stream(batches=batches, num_examples=int(pairs["label"].shape[0]), image_shape=(size, size, channels))


__all__ = ["load", "DEFAULTS", "SPLITS", "quadrant_split", "compose", "source_patches", "imagenet_patches",
           "patch_offsets", "image_size", "check_sizes", "QuadrantScale", "CPU", "PAPER", "SOURCES", "PAPER_SPLIT_SIZE"]
