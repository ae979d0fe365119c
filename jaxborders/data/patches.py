"""Natural-image patches cut from the images that ship inside scikit-image (no download needed).

The location experiments of the F-Conv paper (Fig. 1 patch toy, Exp 1 quadrant task) need natural image
content whose *location* is the label. ImageNet is the paper's source; the default here is the set of photos
bundled in the scikit-image wheel, cut into many square crops and resized to ``patch_size`` (like the paper's
"resize to 56×56").

Splits are disjoint by construction:

* ``split_by='source'`` (default): every source image belongs to exactly one of train / val / test
  (``SOURCE_SPLITS``), so no test pixel was ever seen in training.
* ``split_by='region'``: every image contributes to every split, from disjoint horizontal bands
  (``REGION_BANDS``: top 60% train, next 20% val, last 20% test); a crop never crosses a band boundary.

Everything is a pure function of ``(split, num, patch_size, seed, ...)``: the same arguments give bit-identical
patches on any machine.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import numpy as np

from jaxborders.ops.checks import check_choice

SPLITS: tuple[str, ...] = ("train", "val", "test")
SPLIT_BY: tuple[str, ...] = ("source", "region")
COLOR_MODES: tuple[str, ...] = ("gray", "rgb")

# Photos shipped in the scikit-image wheel (synthetic, binary and tiny images are left out). The source split is
# fixed by hand so that each split holds varied content; stereo_motorcycle's right view is left out because it
# is nearly the left one, which would leak across splits.
SOURCE_SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("astronaut", "camera", "chelsea", "rocket", "grass", "gravel", "coins", "page", "retina",
              "immunohistochemistry", "cell", "motorcycle_left"),
    "val": ("brick", "clock", "text"),
    "test": ("coffee", "moon", "hubble_deep_field"),
}
IMAGE_NAMES: tuple[str, ...] = tuple(n for s in SPLITS for n in SOURCE_SPLITS[s])
# Row bands (fractions of the image height) of split_by='region'.
REGION_BANDS: dict[str, tuple[float, float]] = {"train": (0.0, 0.6), "val": (0.6, 0.8), "test": (0.8, 1.0)}
# Seed offsets keep the three splits' random streams apart even under split_by='region'.
_SPLIT_SALT = {"train": 0, "val": 1, "test": 2}


def _loader(name: str) -> Callable[[], np.ndarray]:
  from skimage import data  # imported lazily: scikit-image is an optional ('train') dependency

  if name == "motorcycle_left":
    return lambda: data.stereo_motorcycle()[0]
  return getattr(data, name)


@functools.lru_cache(maxsize=None)
def load_image(name: str, color: str = "rgb") -> np.ndarray:
  """One bundled image as float32 in [0, 1], (H, W, 3) for ``'rgb'`` or (H, W, 1) for ``'gray'``.

  Gray sources are repeated over three channels for ``'rgb'``; RGB sources become luminance for ``'gray'``.
  """
  check_choice("name", name, IMAGE_NAMES)
  check_choice("color", color, COLOR_MODES)
  try:
    img = _loader(name)()
  except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("natural-image patches need scikit-image: pip install 'jaxborders[train]'") from e
  img = np.asarray(img)
  if img.dtype == np.uint8:
    img = img.astype(np.float32) / 255.0
  img = img.astype(np.float32)
  if img.ndim == 3 and img.shape[-1] == 4:  # drop alpha
    img = img[..., :3]
  if color == "gray":
    if img.ndim == 3:
      img = img @ np.array([0.2125, 0.7154, 0.0721], np.float32)  # skimage.color.rgb2gray's weights
    img = img[..., None]
  elif img.ndim == 2:
    img = np.repeat(img[..., None], 3, axis=-1)
  img.setflags(write=False)  # cached: callers must not modify it
  return img


def _resize(crop: np.ndarray, size: int) -> np.ndarray:
  """Anti-aliased resize of an (h, w, C) crop to (size, size, C)."""
  from skimage.transform import resize

  if crop.shape[0] == size and crop.shape[1] == size:
    return crop.astype(np.float32)
  return resize(crop, (size, size, crop.shape[-1]), order=1, anti_aliasing=crop.shape[0] > size,
                preserve_range=True).astype(np.float32)


def natural_patches(split: str = "train", num: int = 100, patch_size: int = 28, *, seed: int = 0,
                    color: str = "rgb", split_by: str = "source", crop_range: tuple[float, float] = (0.15, 0.5),
                    min_std: float = 0.04, images: Sequence[str] | None = None,
                    return_boxes: bool = False) -> np.ndarray | tuple[np.ndarray, list[tuple[str, int, int, int]]]:
  """``num`` square natural-image patches of one split, float32 in [0, 1], shape (num, p, p, C).

  Each patch is a random square crop whose side is a fraction ``crop_range`` of the usable image height
  (the whole image under ``split_by='source'``, the split's band under ``'region'``), resized to
  ``patch_size``. Patches are drawn round-robin over the split's images so that every image contributes
  equally. Near-constant crops (std below ``min_std``, e.g. sky in ``hubble_deep_field``) are redrawn,
  because a blank patch carries no content to locate.

  Args:
    split: ``'train'``, ``'val'`` or ``'test'``.
    num: number of patches (>= 1).
    patch_size: output side in pixels (>= 1).
    seed: patches are a pure function of the arguments; the three splits use separate streams.
    color: ``'rgb'`` (3 channels) or ``'gray'`` (1 channel).
    split_by: ``'source'`` (disjoint source images) or ``'region'`` (disjoint bands of every image).
    crop_range: (lo, hi) fractions, 0 < lo <= hi <= 1, of the crop side.
    min_std: redraw crops whose pixel std is below this.
    images: restrict to these source names (they must belong to the split under ``split_by='source'``).
    return_boxes: also return each patch's crop ``(image name, row, col, side)`` (to check disjointness).

  Returns:
    float32 array (num, patch_size, patch_size, 1 or 3) (and the boxes).
  """
  check_choice("split", split, SPLITS)
  check_choice("split_by", split_by, SPLIT_BY)
  check_choice("color", color, COLOR_MODES)
  if num < 1:
    raise ValueError(f"num must be >= 1, got {num}.")
  if patch_size < 1:
    raise ValueError(f"patch_size must be >= 1, got {patch_size}.")
  lo, hi = crop_range
  if not 0 < lo <= hi <= 1:
    raise ValueError(f"crop_range must satisfy 0 < lo <= hi <= 1, got {crop_range!r}.")
  allowed = SOURCE_SPLITS[split] if split_by == "source" else IMAGE_NAMES
  names = tuple(images) if images is not None else allowed
  for n in names:
    check_choice("images", n, allowed)
  rng = np.random.default_rng([seed, _SPLIT_SALT[split], 7919])
  band = REGION_BANDS[split] if split_by == "region" else (0.0, 1.0)
  out = np.empty((num, patch_size, patch_size, 1 if color == "gray" else 3), np.float32)
  boxes = []
  for i in range(num):
    img = load_image(names[i % len(names)], color)
    r0, r1 = int(round(band[0] * img.shape[0])), int(round(band[1] * img.shape[0]))
    usable_h, w = r1 - r0, img.shape[1]
    for attempt in range(50):
      side = max(1, min(int(round(rng.uniform(lo, hi) * usable_h)), usable_h, w))
      y = r0 + int(rng.integers(0, usable_h - side + 1))
      x = int(rng.integers(0, w - side + 1))
      patch = _resize(img[y:y + side, x:x + side], patch_size)
      if patch.std() >= min_std:
        break  # else redraw; after 50 tries keep the last one rather than loop forever
    out[i] = patch
    boxes.append((names[i % len(names)], y, x, side))
  return (out, boxes) if return_boxes else out


__all__ = ["natural_patches", "load_image", "SOURCE_SPLITS", "REGION_BANDS", "IMAGE_NAMES", "SPLITS",
           "SPLIT_BY", "COLOR_MODES"]
