"""A tiny synthetic data source for tests (``data.source = 'train.synthetic'``).

Random images; the label says whether the top half of channel 0 is brighter than the bottom half, so a
small conv net learns it. ``image_size`` lets tests make images too small for a model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from train.data import DataMissingError

DEFAULTS: dict[str, Any] = dict(image_size=32, channels=3, train_size=64, val_size=32, test_size=32,
                                data_seed=0, missing=False)
SPLITS = ("train", "val", "test")


def load(data_config: Any, split: str, seed: int) -> dict[str, np.ndarray]:
  """Random images of ``image_size``; ``missing=True`` raises DataMissingError (for tests)."""
  del seed
  if data_config.missing:
    raise DataMissingError("synthetic data set marked missing; obtain it by setting data.missing=False.")
  size = {"train": data_config.train_size, "val": data_config.val_size, "test": data_config.test_size}[split]
  rng = np.random.default_rng([data_config.data_seed, SPLITS.index(split)])
  s = data_config.image_size
  image = rng.random((size, s, s, data_config.channels), dtype=np.float32)
  label = (image[:, : s // 2, :, 0].mean((1, 2)) > image[:, s // 2:, :, 0].mean((1, 2))).astype(np.int32)
  return {"image": image, "label": label}


def tiny_config() -> Any:
  """The tests' smallest trainer config on this source: batch 16, 32 / 16 / 16 images, 2 epochs, no TensorBoard.
  Tests (and the config files they write for subprocesses) start from it and set only what they check."""
  from configs import default

  c = default.get_config()
  c.batch_size = 16
  c.num_epochs = 2
  c.data.source = "train.synthetic"
  c.data.train_size, c.data.val_size, c.data.test_size = 32, 16, 16
  c.eval.batch_size = 16
  c.log.tensorboard = False
  return c
