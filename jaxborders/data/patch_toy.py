"""Patch-location toy (F-Conv paper Fig. 1; the "rook" notebook of the reference code; docs/models.md).

The *identical* natural-image patch is placed at the top-left (class 0) or the bottom-right (class 1) corner of
a black ``image_size`` grayscale image. A network of one 5×5 conv -> ReLU -> global max -> linear is invariant to
the patch's position only if its convolution is: with same-zero padding it learns the location (100%), with
full or circular padding both images give the same logits (exactly 50%).

The reference trains and tests on the same two images (batch 1, SGD lr 0.1 momentum 0.9, 100 epochs, 5 seeds):
the toy asks whether the location *can* be represented, not whether it generalises. ``num_patches > 1`` adds
more patches (each at both corners) and ``held_out=True`` draws the evaluation patches from other (disjoint)
bands of the source image.
"""

from __future__ import annotations

import numpy as np

from jaxborders.data import patches as patches_lib
from jaxborders.data.quadrant import compose

DEFAULT_IMAGE = "camera"  # the cameraman: a dark figure on a light background, like the reference's rook


def patch_toy(num_patches: int = 1, *, image_size: int = 32, patch_size: int = 16, seed: int = 0,
              image: str = DEFAULT_IMAGE, split: str = "train") -> dict[str, np.ndarray]:
  """``2 * num_patches`` grayscale images: patch ``i`` at the top-left (image 2i, label 0) and at the
  bottom-right (image 2i + 1, label 1).

  Args:
    num_patches: distinct patches (the reference: 1).
    image_size: side of the black image (the reference: 32).
    patch_size: side of the patch (<= image_size).
    seed: which crops are taken (a pure function of the arguments).
    image: the bundled scikit-image photo the patches are cut from (``patches.IMAGE_NAMES``); ``split``
      selects the band of it under the region split, so train and held-out patches never overlap.
    split: ``'train'``, ``'val'`` or ``'test'`` band of ``image``.

  Returns:
    ``{'image': (2n, S, S, 1) float32 in [0, 1], 'label': (2n,) int32}``.
  """
  if patch_size > image_size:
    raise ValueError(f"patch_size must be <= image_size ({image_size}), got {patch_size}.")
  if num_patches < 1:
    raise ValueError(f"num_patches must be >= 1, got {num_patches}.")
  src = patches_lib.natural_patches(split, num_patches, patch_size, seed=seed, color="gray", split_by="region",
                                    images=(image,), crop_range=(0.1, 0.3), min_std=0.1)
  pair = np.repeat(src, 2, axis=0)
  labels = np.tile(np.array([0, 1], np.int32), num_patches)
  return {"image": compose(pair, labels, image_size), "label": labels}


# ----------------------------------------------------------------------------------------------------------
# Trainer data source (train/README.md): ``data.source = 'patch_toy'``.

SPLITS = ("train", "val", "test")
DEFAULTS = dict(
    num_patches=1,  # the reference: one patch, two images
    image_size=32,
    patch_size=16,
    image=DEFAULT_IMAGE,
    data_seed=0,  # which crop; the same data for every run seed (the reference varies only the init)
    held_out=False,  # False: val/test are the training images (the reference); True: patches from other bands
)


def load(data_config, split: str, seed: int) -> dict[str, np.ndarray]:
  """Trainer data source: the toy's images (``seed`` is ignored: only the initialisation varies by seed)."""
  del seed
  c = data_config
  band = split if (c.held_out and split != "train") else "train"
  return patch_toy(int(c.num_patches), image_size=int(c.image_size), patch_size=int(c.patch_size),
                   seed=int(c.data_seed), image=c.image, split=band)


__all__ = ["patch_toy", "load", "DEFAULTS", "SPLITS", "DEFAULT_IMAGE"]
