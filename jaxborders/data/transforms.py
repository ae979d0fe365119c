"""Numpy image and clip transforms for the input pipelines (run in grain workers, not on the accelerator).

Every random transform takes a ``numpy.random.Generator``; the pipelines build one per record from
``record_rng(seed, epoch, index)``, so an example's augmentation depends only on (seed, epoch, index) and not
on the worker count, the process count or the order in which workers finish. Images are ``uint8`` arrays
(H, W, C) until ``normalize`` turns them into ``float32``; clips are (T, H, W, C).

Resizing goes through PIL (bilinear, antialiased when shrinking, as torchvision's PIL path), so crops match
the reference PyTorch pipelines up to PIL's rounding.

Example:
  >>> import numpy as np
  >>> rng = record_rng(seed=0, epoch=0, index=7)
  >>> image = np.zeros((40, 60, 3), np.uint8)
  >>> inception_crop(image, 32, rng).shape
  (32, 32, 3)
  >>> resize_center_crop(image, resize_size=36, crop_size=32).shape
  (32, 32, 3)
  >>> normalize(np.full((2, 2, 3), 255, np.uint8), IMAGENET_MEAN, IMAGENET_STD)[0, 0].round(3)
  array([2.249, 2.429, 2.64 ], dtype=float32)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from PIL import Image

# ImageNet RGB statistics (torchvision's), on [0, 1] pixels.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# CIFAR-10 training-set statistics, on [0, 1] pixels.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

# Hara et al.'s 3D-ResNet MultiScaleCornerCrop: 5 scales 1, 2^-1/4, ..., 2^-1 of the shorter side.
MULTISCALE_SCALES = tuple(2.0 ** (-k / 4) for k in range(5))
CornerPosition = Literal["c", "tl", "tr", "bl", "br"]
CORNER_POSITIONS: tuple[CornerPosition, ...] = ("c", "tl", "tr", "bl", "br")


def record_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
  """The generator of one record's augmentation: a pure function of (seed, epoch, index).

  ``SeedSequence`` hashes the three integers, so nearby seeds or indices give unrelated streams (unlike
  ``seed + index``, where seed s at index i+1 repeats seed s+1 at index i).
  """
  if min(seed, epoch, index) < 0:
    raise ValueError(f"seed, epoch and index must be >= 0; got seed={seed}, epoch={epoch}, index={index}.")
  return np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch), int(index)]))


def to_rgb(image: np.ndarray) -> np.ndarray:
  """(H, W) or (H, W, 1|3|4) uint8 -> (H, W, 3): grey is repeated, alpha dropped."""
  if image.ndim == 2:
    image = image[..., None]
  if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
    raise ValueError(f"image must be (H, W) or (H, W, C) with C in 1, 3, 4; got shape {image.shape}.")
  if image.shape[-1] == 1:
    return np.repeat(image, 3, axis=-1)
  return image[..., :3]


def resize_box(image: np.ndarray, size: tuple[int, int], box: tuple[int, int, int, int] | None = None) -> np.ndarray:
  """Crops ``box`` = (top, left, height, width) (default: whole image) and resizes it to ``size`` = (H, W).

  One PIL call does both, so the crop is never materialised and shrinking is antialiased.
  """
  height, width = image.shape[:2]
  top, left, h, w = box if box is not None else (0, 0, height, width)
  if (h, w) == tuple(size) and box is not None:
    return np.ascontiguousarray(image[top:top + h, left:left + w])
  squeeze = image.ndim == 3 and image.shape[-1] == 1
  pil = Image.fromarray(image[..., 0] if squeeze else image)
  out = np.asarray(pil.resize((size[1], size[0]), Image.BILINEAR, box=(left, top, left + w, top + h)))
  return out[..., None] if squeeze else out


def inception_crop_box(height: int, width: int, rng: np.random.Generator,
                       scale: tuple[float, float] = (0.08, 1.0),
                       ratio: tuple[float, float] = (3 / 4, 4 / 3),
                       attempts: int = 10) -> tuple[int, int, int, int]:
  """(top, left, h, w) of an Inception-style random crop (torchvision ``RandomResizedCrop.get_params``).

  Area fraction uniform in ``scale``, aspect ratio log-uniform in ``ratio``; after ``attempts`` misses, the
  central crop with the aspect ratio clamped to ``ratio``.
  """
  area = height * width
  log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
  for _ in range(attempts):
    target_area = area * rng.uniform(scale[0], scale[1])
    aspect = math.exp(rng.uniform(*log_ratio))
    w = int(round(math.sqrt(target_area * aspect)))
    h = int(round(math.sqrt(target_area / aspect)))
    if 0 < w <= width and 0 < h <= height:
      top = int(rng.integers(0, height - h + 1))
      left = int(rng.integers(0, width - w + 1))
      return top, left, h, w
  in_ratio = width / height
  if in_ratio < min(ratio):
    w, h = width, int(round(width / min(ratio)))
  elif in_ratio > max(ratio):
    h, w = height, int(round(height * max(ratio)))
  else:
    h, w = height, width
  return (height - h) // 2, (width - w) // 2, h, w


def inception_crop(image: np.ndarray, size: int, rng: np.random.Generator,
                   scale: tuple[float, float] = (0.08, 1.0),
                   ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> np.ndarray:
  """Random-resized crop (Inception / torchvision ``RandomResizedCrop``) to ``size`` x ``size``."""
  box = inception_crop_box(image.shape[0], image.shape[1], rng, scale, ratio)
  return resize_box(image, (size, size), box)


def random_flip(image: np.ndarray, rng: np.random.Generator, axis: int = -2) -> np.ndarray:
  """Mirrors left-right with probability 1/2 (``axis=-2`` is W for (..., H, W, C))."""
  return np.flip(image, axis=axis) if rng.random() < 0.5 else image


def resize_shorter(image: np.ndarray, size: int) -> np.ndarray:
  """Resizes so that the shorter side is ``size`` (torchvision ``Resize(int)``: the longer side truncates)."""
  height, width = image.shape[:2]
  if height <= width:
    new = (size, int(size * width / height))
  else:
    new = (int(size * height / width), size)
  return image if new == (height, width) else resize_box(image, new)


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
  """Central ``size`` x ``size`` crop (torchvision ``CenterCrop``: offsets round half to even)."""
  height, width = image.shape[:2]
  if height < size or width < size:
    raise ValueError(f"center_crop: image {height}x{width} is smaller than size={size}.")
  top, left = int(round((height - size) / 2)), int(round((width - size) / 2))
  return image[top:top + size, left:left + size]


def resize_center_crop(image: np.ndarray, resize_size: int, crop_size: int) -> np.ndarray:
  """Evaluation transform: shorter side to ``resize_size``, then the central ``crop_size`` square."""
  if crop_size > resize_size:
    raise ValueError(f"crop_size={crop_size} must be <= resize_size={resize_size}.")
  return center_crop(resize_shorter(image, resize_size), crop_size)


def pad_random_crop(image: np.ndarray, size: int, padding: int, rng: np.random.Generator) -> np.ndarray:
  """CIFAR augmentation: zero-pad ``padding`` pixels on every side, then a random ``size`` x ``size`` crop."""
  padded = np.pad(image, ((padding, padding), (padding, padding), (0, 0)))
  top = int(rng.integers(0, padded.shape[0] - size + 1))
  left = int(rng.integers(0, padded.shape[1] - size + 1))
  return padded[top:top + size, left:left + size]


def normalize(image: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
  """uint8 [0, 255] -> float32 ``(x / 255 - mean) / std`` per channel."""
  mean = np.asarray(mean, np.float32) * 255.0
  inv_std = 1.0 / (np.asarray(std, np.float32) * 255.0)
  return (image.astype(np.float32) - mean) * inv_std


def multiscale_corner_box(height: int, width: int, rng: np.random.Generator,
                          scales: Sequence[float] = MULTISCALE_SCALES,
                          positions: Sequence[CornerPosition] = CORNER_POSITIONS) -> tuple[int, int, int, int]:
  """(top, left, s, s) of Hara et al.'s multiscale corner crop: a square of side ``scale * min(H, W)`` at
  the centre or one of the four corners, scale and position drawn uniformly."""
  side = int(min(height, width) * scales[int(rng.integers(len(scales)))])
  position = positions[int(rng.integers(len(positions)))]
  if position not in CORNER_POSITIONS:
    raise ValueError(f"position={position!r}; accepted values: {', '.join(CORNER_POSITIONS)}.")
  if position == "c":
    top, left = height // 2 - side // 2, width // 2 - side // 2
  else:
    top = 0 if position[0] == "t" else height - side
    left = 0 if position[1] == "l" else width - side
  return top, left, side, side


def multiscale_corner_crop(clip: np.ndarray, size: int, rng: np.random.Generator,
                           scales: Sequence[float] = MULTISCALE_SCALES, flip: bool = True) -> np.ndarray:
  """Training transform of a clip (T, H, W, C): one multiscale corner crop resized to ``size`` and one flip
  decision, shared by all frames so that the clip stays a coherent video."""
  box = multiscale_corner_box(clip.shape[1], clip.shape[2], rng, scales)
  out = np.stack([resize_box(frame, (size, size), box) for frame in clip])
  return random_flip(out, rng) if flip else out


def temporal_crop(num_frames: int, length: int, rng: np.random.Generator | None) -> np.ndarray:
  """Frame indices of a ``length``-frame window: random start when ``rng`` is given (training), central
  otherwise; clips shorter than ``length`` loop (Hara et al.'s ``LoopPadding``)."""
  if num_frames < 1:
    raise ValueError(f"num_frames must be >= 1; got {num_frames}.")
  span = max(num_frames - length, 0)
  start = int(rng.integers(0, span + 1)) if rng is not None else span // 2
  return (start + np.arange(length)) % num_frames if num_frames < length else start + np.arange(length)


__all__ = [
    "IMAGENET_MEAN", "IMAGENET_STD", "CIFAR10_MEAN", "CIFAR10_STD", "MULTISCALE_SCALES", "CORNER_POSITIONS",
    "record_rng", "to_rgb", "resize_box", "inception_crop_box", "inception_crop", "random_flip",
    "resize_shorter", "center_crop", "resize_center_crop", "pad_random_crop", "normalize",
    "multiscale_corner_box", "multiscale_corner_crop", "temporal_crop",
]
