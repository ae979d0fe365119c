"""What a streamed data set gives the trainer: ``Stream`` (batches read one at a time) and ``DataMissingError``.

These live in the library, not in the trainer, so that data sources (``jaxborders.data.tfds_source``,
``video``, ``quadrant``) never import ``train``: a source returns a ``Stream`` or raises ``DataMissingError``,
and the trainer (``train/data.py``) consumes both.

Example:
  >>> import numpy as np
  >>> def batches(epoch, batch_size, process_index, process_count):
  ...   for step in range(2):
  ...     yield {'image': np.zeros((batch_size, 4, 4, 1), np.float32), 'label': np.zeros(batch_size, np.int32)}
  >>> stream = Stream(batches=batches, num_examples=8, image_shape=(4, 4, 1))
  >>> [b['image'].shape for b in stream.batches(0, 4, 0, 1)]
  [(4, 4, 4, 1), (4, 4, 4, 1)]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import numpy as np


class DataMissingError(RuntimeError):
  """A data set is not on disk; the message says how to obtain it."""


@dataclasses.dataclass
class Stream:
  """A data set that is read batch by batch (not held in memory).

  ``batches(epoch, batch_size, process_index, process_count)`` yields this process's share of each global
  batch as ``{'image', 'label'}`` numpy arrays; it must be a deterministic function of (seed, epoch) so that
  resume is exact. Training streams may accept a keyword ``start`` (first step within the epoch) so that a run
  resumed mid-epoch does not read the skipped batches; without it the trainer reads and drops them. Evaluation
  batches may carry ``mask`` (0 for padding); the trainer sums over ``mask == 1`` examples only. One epoch is
  ``num_examples // batch_size`` steps. ``num_examples`` gives the split size and ``image_shape`` one
  example's (H, W, C).
  """

  batches: Callable[..., Iterator[dict[str, np.ndarray]]]
  num_examples: int
  image_shape: tuple[int, ...]


__all__ = ["DataMissingError", "Stream"]
