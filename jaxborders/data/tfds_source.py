"""TFDS + grain input pipelines: ImageNet (full, 10%, the 200 ImageNet-A classes, N images per class), CIFAR-10.

Records are read with ``tfds.data_source`` (random access to ``array_record`` files; TensorFlow is not needed
to read, only once to prepare a data set) and assembled with grain's ``MapDataset``:

  source (selected record keys, padded for evaluation)
  -> shuffle, a new order each epoch (training)  -> repeat(num_epochs)
  -> preprocess(global index, record)             (augmentation rng = record_rng(seed, epoch, index))
  -> drop to a whole number of global batches     (every process gets the same number of steps)
  -> shard: process p takes global positions p, p + P, ...
  -> batch -> [start_step:]                       (batches are indexable, so resuming is exact)
  -> ``read_threads`` threads per process, worker processes (grain ``mp_prefetch``) when ``worker_count > 0``.

Nothing here imports TensorFlow, and TFDS and grain are imported only when a pipeline is built.

This module is the ImageNet/CIFAR preprocessing, ``make_pipeline`` and the trainer's data source; the parts live
by concern in ``tfds_catalog`` (data set names, TFDS builders, how to prepare them), ``tfds_records`` (record
access, decoding, the label index) and ``pipeline`` (the generic grain pipeline and its ``Stream`` adapter, also
used by ``video``). Their public names are re-exported here.

Every batch is a pure function of (data set, seed, step, process index, process count): the same seed gives
the same batches whatever the worker count, a different seed different ones, and a pipeline rebuilt at
``start_step=k`` (or ``set_state(get_state())``) continues exactly where the old one stopped.

Batches are dicts of numpy arrays: ``image`` float32 (B, S, S, 3) normalised with the data set's mean/std,
``label`` int32 (B,), ``mask`` float32 (B,) (0 for evaluation padding and skipped corrupt records),
``record_key`` int64 (B,) (the TFDS record index, -1 for padding) and ``corrupt`` int32 (B,).

Example (mock data: no files needed):
  >>> import tensorflow_datasets as tfds
  >>> with tfds.testing.mock_data(num_examples=8):
  ...   pipe = make_pipeline('cifar10', 'train', batch_size=4, seed=0, num_epochs=1, shard_index=0,
  ...                        shard_count=1)
  ...   batch = next(pipe)
  >>> batch['image'].shape, batch['label'].dtype, len(pipe)
  ((4, 32, 32, 3), dtype('int32'), 2)
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from jaxborders.data import transforms as T
from jaxborders.data.pipeline import CorruptRecordError, Pipeline, build_pipeline, eval_length, process_shard
from jaxborders.data.pipeline import stream_from_pipelines
from jaxborders.data.stream import DataMissingError
from jaxborders.data.tfds_catalog import (DATASET_NAMES, IMAGENET_A_INDICES_IN_1K, IMAGENET_A_WNIDS, SPECS,
                                          DatasetName, DatasetSpec, check_name, default_data_dir, prepare_instructions)
from jaxborders.data.tfds_records import (DatasetNotPreparedError, RecordSource, read_labels, select_per_class,
                                          tfds_data_source)

Preprocessing = Literal["inception", "resize_crop", "pad_crop", "none"]
PREPROCESSING: tuple[str, ...] = ("inception", "resize_crop", "pad_crop", "none")


@dataclasses.dataclass(frozen=True)
class ImagePreprocess:
  """Record -> example; called by grain as ``fn(global_index, record)`` (picklable for worker processes).

  ``global_index`` counts records over all epochs of the (unsharded) stream, so the augmentation rng
  ``record_rng(seed, global_index // epoch_length, global_index % epoch_length)`` does not depend on the
  process or worker that runs it.

  Attributes:
    mode: ``'inception'`` (random-resized crop + flip), ``'resize_crop'`` (shorter side to ``resize_size``,
      central ``image_size`` crop), ``'pad_crop'`` (pad 4, random crop, flip: CIFAR), ``'none'`` (resize to
      ``image_size`` only when the size differs).
    image_size: output side.
    resize_size: shorter side before the central crop (``'resize_crop'``).
    mean, std: per-channel normalisation on [0, 1] pixels.
    seed: augmentation seed.
    epoch_length: records per epoch (padding included).
    skip_corrupt: mask undecodable records (``mask = 0``, ``corrupt = 1``, zero image) instead of raising.
    description: data set and split, for error messages.
  """

  mode: Preprocessing
  image_size: int
  resize_size: int
  mean: tuple[float, ...]
  std: tuple[float, ...]
  seed: int
  epoch_length: int
  skip_corrupt: bool = False
  description: str = ""

  def __post_init__(self):
    if self.mode not in PREPROCESSING:
      raise ValueError(f"mode={self.mode!r}; accepted values: {', '.join(PREPROCESSING)}.")

  def __call__(self, global_index: int, record: dict[str, Any]) -> dict[str, np.ndarray]:
    size = self.image_size
    corrupt = record["error"] is not None
    if corrupt and not self.skip_corrupt:
      raise CorruptRecordError(f"{self.description}: record {record['key']} could not be decoded "
                               f"({record['error']}). Pass skip_corrupt=True to skip such records (they are then "
                               "masked out and counted in batch['corrupt']).")
    if record["image"] is None:  # padding or a skipped corrupt record
      image = np.zeros((size, size, 3), np.float32)
    else:
      epoch, index = divmod(int(global_index), self.epoch_length)
      rng = T.record_rng(self.seed, epoch, index)
      image = record["image"]
      if self.mode == "inception":
        image = T.random_flip(T.inception_crop(image, size, rng), rng)
      elif self.mode == "resize_crop":
        image = T.resize_center_crop(image, self.resize_size, size)
      elif self.mode == "pad_crop":
        image = image if image.shape[:2] == (size, size) else T.resize_box(image, (size, size))
        image = T.random_flip(T.pad_random_crop(image, size, 4, rng), rng)
      elif image.shape[:2] != (size, size):
        image = T.resize_box(image, (size, size))
      image = T.normalize(image, self.mean, self.std)
    real = record["image"] is not None
    return {"image": image, "label": np.int32(record["label"]), "mask": np.float32(real),
            "record_key": np.int64(record["key"]), "corrupt": np.int32(corrupt)}


def make_pipeline(name: DatasetName, split: str, *, batch_size: int, seed: int = 0, train: bool = True,
                  image_size: int | None = None, resize_size: int | None = None, augment: bool = True,
                  num_epochs: int | None = None, shard_index: int | None = None, shard_count: int | None = None,
                  worker_count: int = 0, worker_buffer_size: int = 2, read_threads: int = 2,
                  prefetch_batches: int = 2, data_dir: str | None = None,
                  skip_corrupt: bool = False, images_per_class: int | None = None, subset_seed: int = 0,
                  start_step: int = 0, log_every: int = 100,
                  log_fn: Callable[[int, dict[str, float]], None] | None = None,
                  label_cache_dir: str | None = None) -> Pipeline:
  """A deterministic, sharded, resumable grain pipeline over a TFDS data set.

  Args:
    name: one of ``DATASET_NAMES``: ``'imagenet2012'``, ``'imagenet2012_subset/10pct'``, ``'imagenet200'``
      (ImageNet restricted to the 200 ImageNet-A classes, labels 0..199 in ``IMAGENET_A_INDICES_IN_1K``
      order), ``'imagenet_per_class'`` (``images_per_class`` training images per class), ``'imagenet_a'``
      (labels as imagenet200), ``'cifar10'``.
    split: a TFDS split (``'train'``, ``'validation'``, ``'test'``, ``'train[:10%]'``, ...); ``'val'`` means
      the data set's evaluation split (ImageNet ``validation``, CIFAR-10 ``test``).
    batch_size: examples per batch on this process (the global batch divided by the process count).
    seed: shuffling and augmentation seed (different seeds give different batches).
    train: shuffle each epoch, augment (if ``augment``), drop the last partial batch; otherwise keep the
      order and pad the last batches (``mask`` 0) so that every process runs the same number of steps.
    image_size: output side (default 224 for ImageNet, 32 for CIFAR-10).
    resize_size: ImageNet evaluation: shorter side before the central crop (default
      ``round(image_size / 0.875)``, 256 for 224; the shift protocol of docs/experiments.md uses 288 with image_size 288).
    augment: training augmentation (ImageNet: random-resized crop + flip; CIFAR-10: pad-4 crop + flip).
      ``False`` trains on evaluation-style images (the BlurPool paper's no-augmentation CIFAR setting).
    num_epochs: passes over the data (None: forever when training; evaluation defaults to 1).
    shard_index, shard_count: this process's shard (default ``jax.process_index()``, ``jax.process_count()``).
    worker_count: grain worker processes (0 reads in this process).
    worker_buffer_size: batches each worker prepares ahead.
    read_threads, prefetch_batches: threads preparing batches in each process, and batches read ahead (see
      ``build_pipeline`` for the memory this holds).
    data_dir: TFDS data directory (default ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).
    skip_corrupt: mask and count undecodable records instead of raising CorruptRecordError.
    images_per_class: ``'imagenet_per_class'`` only: images per class of training splits.
    subset_seed: seed of the per-class selection (kept apart from ``seed`` so that runs with different
      seeds train on the same subset).
    start_step: first step (exact resume).
    log_every, log_fn: throughput hook (see Pipeline).
    label_cache_dir: where the label index of filtered data sets is cached (default ``$JAXBORDERS_CACHE`` or
      ``~/.cache/jaxborders``).

  Returns:
    A Pipeline yielding ``{'image', 'label', 'mask', 'record_key', 'corrupt'}`` batches.

  Raises:
    ValueError: unknown ``name`` or inconsistent arguments.
    DatasetNotPreparedError: the data set is not prepared (the message has the ``tfds build`` command).
  """
  spec = check_name(name)
  if split == "val":
    split = spec.eval_split
  if spec.per_class and images_per_class is None and split.startswith("train"):
    raise ValueError(f"name={name!r} needs images_per_class (e.g. 50, 100, 250, 500) for split {split!r}.")
  if images_per_class is not None and not spec.per_class:
    raise ValueError(f"images_per_class is only accepted with name='imagenet_per_class'; got name={name!r}.")
  image_size = image_size or (32 if spec.kind == "cifar" else 224)
  resize_size = resize_size or int(round(image_size / 0.875))
  shard_index, shard_count = process_shard(shard_index, shard_count)
  source = tfds_data_source(name, split, data_dir)

  keys, label_map = None, None
  if spec.class_subset is not None:
    label_map = np.full(1000, -1, np.int64)
    label_map[list(spec.class_subset)] = np.arange(len(spec.class_subset))
    # (ImageNet-A holds only its 200 classes; filtering it too costs little and keeps labels in range.)
    labels = read_labels(name, split, data_dir, label_cache_dir)
    keys = np.flatnonzero(label_map[labels] >= 0)
  elif spec.per_class and split.startswith("train"):
    labels = read_labels(name, split, data_dir, label_cache_dir)
    keys = select_per_class(labels, images_per_class, subset_seed)
  num_records = len(source) if keys is None else len(keys)
  length = None if train else eval_length(num_records, batch_size, shard_count)
  records = RecordSource(source, keys, label_map, length)

  if spec.kind == "cifar":
    mode, (mean, std) = ("pad_crop" if train and augment else "none"), (T.CIFAR10_MEAN, T.CIFAR10_STD)
  else:
    mode, (mean, std) = ("inception" if train and augment else "resize_crop"), (T.IMAGENET_MEAN, T.IMAGENET_STD)
  description = f"{name} split {split!r}"
  preprocess = ImagePreprocess(mode, image_size, resize_size, mean, std, seed, len(records), skip_corrupt,
                               description)
  pipeline = build_pipeline(records, preprocess, batch_size=batch_size, seed=seed, train=train,
                            num_epochs=num_epochs if train else (num_epochs or 1), shard_index=shard_index,
                            shard_count=shard_count, worker_count=worker_count,
                            worker_buffer_size=worker_buffer_size, read_threads=read_threads,
                            prefetch_batches=prefetch_batches, start_step=start_step, log_every=log_every,
                            log_fn=log_fn, description=description)
  pipeline.num_records = records.num_records
  return pipeline


# --- Trainer data source (train/README.md): ``data.source = 'tfds_source'``, ``data.dataset = 'imagenet200'``. ---

DEFAULTS: dict[str, Any] = dict(
    dataset="imagenet2012",  # one of DATASET_NAMES
    image_size=0,  # 0: the data set's default (224 ImageNet, 32 CIFAR-10)
    resize_size=0,  # ImageNet evaluation shorter side; 0: round(image_size / 0.875)
    eval_image_size=0,  # evaluation crop side; 0: image_size (Exp 3's shift metrics: 288 with eval_resize_size 288)
    eval_resize_size=0,  # evaluation shorter side; 0: resize_size
    augment=True,  # training augmentation (False: the BlurPool paper's no-augmentation setting)
    images_per_class=0,  # imagenet_per_class only: training images per class (50, 100, 250, 500)
    subset_seed=0,  # the per-class selection's seed (the same subset for every run seed)
    data_dir="",  # TFDS data dir; '' = $TFDS_DATA_DIR or ~/tensorflow_datasets
    worker_count=0,  # grain worker processes per host
    skip_corrupt=False,  # mask and count undecodable records instead of failing
    log_every=100,  # throughput log period in steps
)
SPLITS = ("train", "val")


def load(data_config: Any, split: str, seed: int) -> Any:
  """The trainer's entry point: ``split`` ('train' or 'val') of ``data_config.dataset`` as a Stream."""
  if split not in SPLITS:
    raise ValueError(f"split={split!r} is not supported; accepted values: {', '.join(map(repr, SPLITS))}.")
  name = data_config.dataset
  spec = check_name(name)
  image_size = int(data_config.image_size) or (32 if spec.kind == "cifar" else 224)
  resize_size = int(data_config.resize_size) or None
  if split != "train":
    image_size = int(data_config.eval_image_size) or image_size
    resize_size = int(data_config.eval_resize_size) or resize_size
  kwargs = dict(image_size=image_size, resize_size=resize_size,
                augment=bool(data_config.augment), data_dir=data_config.data_dir or None,
                worker_count=int(data_config.worker_count), skip_corrupt=bool(data_config.skip_corrupt),
                log_every=int(data_config.log_every))
  if spec.per_class:
    kwargs.update(images_per_class=int(data_config.images_per_class) or None,
                  subset_seed=int(data_config.subset_seed))
  tfds_split = "train" if split == "train" else spec.eval_split
  make = functools.partial(make_pipeline, name, tfds_split, **kwargs)
  try:
    probe = make(train=False, batch_size=1, shard_index=0, shard_count=1)
  except DatasetNotPreparedError as e:
    raise DataMissingError(str(e)) from e
  return stream_from_pipelines(make, split, seed, probe.num_records, (image_size, image_size, 3))


__all__ = [
    "DEFAULTS", "SPLITS", "load", "stream_from_pipelines", "DATASET_NAMES", "SPECS", "DatasetSpec",
    "IMAGENET_A_WNIDS", "IMAGENET_A_INDICES_IN_1K",
    "DatasetNotPreparedError", "CorruptRecordError", "RecordSource", "ImagePreprocess", "Pipeline",
    "build_pipeline", "eval_length", "make_pipeline", "prepare_instructions", "read_labels", "select_per_class",
    "tfds_data_source", "default_data_dir",
]
