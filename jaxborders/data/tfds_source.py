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
import io
import logging
import os
import time
import unittest.mock
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

import numpy as np

from jaxborders.data import transforms as T

_log = logging.getLogger(__name__)

DatasetName = Literal["imagenet2012", "imagenet2012_subset/10pct", "imagenet200", "imagenet_per_class", "imagenet_a",
                      "cifar10"]
DATASET_NAMES: tuple[str, ...] = ("imagenet2012", "imagenet2012_subset/10pct", "imagenet200", "imagenet_per_class",
                                  "imagenet_a", "cifar10")

# The 200 ImageNet-A classes (Hendrycks et al., "Natural Adversarial Examples", 2021): WordNet ids in
# ImageNet-1k label order, and their indices in the 1000 classes. Taken from the ImageNet-A evaluation code's
# `indices_in_1k` (hendrycks/natural-adv-examples) as copied in several public repositories, and checked
# here against TFDS's imagenet2012 labels.txt: IMAGENET_A_INDICES_IN_1K[i] == labels.index(IMAGENET_A_WNIDS[i])
# (tests/test_data_tfds.py re-checks it). ImageNet-200 label i is ImageNet-1k label IMAGENET_A_INDICES_IN_1K[i].
IMAGENET_A_WNIDS: tuple[str, ...] = (
    "n01498041", "n01531178", "n01534433", "n01558993", "n01580077", "n01614925", "n01616318", "n01631663",
    "n01641577", "n01669191", "n01677366", "n01687978", "n01694178", "n01698640", "n01735189", "n01770081",
    "n01770393", "n01774750", "n01784675", "n01819313", "n01820546", "n01833805", "n01843383", "n01847000",
    "n01855672", "n01882714", "n01910747", "n01914609", "n01924916", "n01944390", "n01985128", "n01986214",
    "n02007558", "n02009912", "n02037110", "n02051845", "n02077923", "n02085620", "n02099601", "n02106550",
    "n02106662", "n02110958", "n02119022", "n02123394", "n02127052", "n02129165", "n02133161", "n02137549",
    "n02165456", "n02174001", "n02177972", "n02190166", "n02206856", "n02219486", "n02226429", "n02231487",
    "n02233338", "n02236044", "n02259212", "n02268443", "n02279972", "n02280649", "n02281787", "n02317335",
    "n02325366", "n02346627", "n02356798", "n02361337", "n02410509", "n02445715", "n02454379", "n02486410",
    "n02492035", "n02504458", "n02655020", "n02669723", "n02672831", "n02676566", "n02690373", "n02701002",
    "n02730930", "n02777292", "n02782093", "n02787622", "n02793495", "n02797295", "n02802426", "n02814860",
    "n02815834", "n02837789", "n02879718", "n02883205", "n02895154", "n02906734", "n02948072", "n02951358",
    "n02980441", "n02992211", "n02999410", "n03014705", "n03026506", "n03124043", "n03125729", "n03187595",
    "n03196217", "n03223299", "n03250847", "n03255030", "n03291819", "n03325584", "n03355925", "n03384352",
    "n03388043", "n03417042", "n03443371", "n03444034", "n03445924", "n03452741", "n03483316", "n03584829",
    "n03590841", "n03594945", "n03617480", "n03666591", "n03670208", "n03717622", "n03720891", "n03721384",
    "n03724870", "n03775071", "n03788195", "n03804744", "n03837869", "n03840681", "n03854065", "n03888257",
    "n03891332", "n03935335", "n03982430", "n04019541", "n04033901", "n04039381", "n04067472", "n04086273",
    "n04099969", "n04118538", "n04131690", "n04133789", "n04141076", "n04146614", "n04147183", "n04179913",
    "n04208210", "n04235860", "n04252077", "n04252225", "n04254120", "n04270147", "n04275548", "n04310018",
    "n04317175", "n04344873", "n04347754", "n04355338", "n04366367", "n04376876", "n04389033", "n04399382",
    "n04442312", "n04456115", "n04482393", "n04507155", "n04509417", "n04532670", "n04540053", "n04554684",
    "n04562935", "n04591713", "n04606251", "n07583066", "n07695742", "n07697313", "n07697537", "n07714990",
    "n07718472", "n07720875", "n07734744", "n07749582", "n07753592", "n07760859", "n07768694", "n07831146",
    "n09229709", "n09246464", "n09472597", "n09835506", "n11879895", "n12057211", "n12144580", "n12267677",
)
IMAGENET_A_INDICES_IN_1K: tuple[int, ...] = (
    6, 11, 13, 15, 17, 22, 23, 27, 30, 37, 39, 42, 47, 50, 57, 70, 71, 76, 79, 89, 90, 94, 96, 97, 99, 105, 107,
    108, 110, 113, 124, 125, 130, 132, 143, 144, 150, 151, 207, 234, 235, 254, 277, 283, 287, 291, 295, 298, 301,
    306, 307, 308, 309, 310, 311, 313, 314, 315, 317, 319, 323, 324, 326, 327, 330, 334, 335, 336, 347, 361, 363,
    372, 378, 386, 397, 400, 401, 402, 404, 407, 411, 416, 417, 420, 425, 428, 430, 437, 438, 445, 456, 457, 461,
    462, 470, 472, 483, 486, 488, 492, 496, 514, 516, 528, 530, 539, 542, 543, 549, 552, 557, 561, 562, 569, 572,
    573, 575, 579, 589, 606, 607, 609, 614, 626, 627, 640, 641, 642, 643, 658, 668, 677, 682, 684, 687, 701, 704,
    719, 736, 746, 749, 752, 758, 763, 765, 768, 773, 774, 776, 779, 780, 786, 792, 797, 802, 803, 804, 813, 815,
    820, 823, 831, 833, 835, 839, 845, 847, 850, 859, 862, 870, 879, 880, 888, 890, 897, 900, 907, 913, 924, 932,
    933, 934, 937, 943, 945, 947, 951, 954, 956, 957, 959, 971, 972, 980, 981, 984, 986, 987, 988,
)


class DatasetNotPreparedError(FileNotFoundError):
  """A TFDS data set is not prepared (in ``array_record`` format); the message has the command to prepare it."""


class CorruptRecordError(RuntimeError):
  """A record could not be decoded; the message names the data set, split and record key."""


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """How a pipeline name maps onto TFDS.

  Attributes:
    tfds_name: the TFDS builder read.
    kind: ``'imagenet'`` (variable-size photos: crop + resize) or ``'cifar'`` (32x32).
    num_classes: labels after any remapping.
    eval_split: the TFDS split that ``'val'`` means.
    class_subset: ImageNet-1k classes kept (remapped to 0..len-1 in this order); None keeps all.
    per_class: whether ``images_per_class`` selects N training images per class.
  """

  tfds_name: str
  kind: Literal["imagenet", "cifar"]
  num_classes: int
  eval_split: str
  class_subset: tuple[int, ...] | None = None
  per_class: bool = False


SPECS: dict[str, DatasetSpec] = {
    "imagenet2012": DatasetSpec("imagenet2012", "imagenet", 1000, "validation"),
    "imagenet2012_subset/10pct": DatasetSpec("imagenet2012_subset/10pct", "imagenet", 1000, "validation"),
    "imagenet200": DatasetSpec("imagenet2012", "imagenet", 200, "validation", IMAGENET_A_INDICES_IN_1K),
    "imagenet_per_class": DatasetSpec("imagenet2012", "imagenet", 1000, "validation", per_class=True),
    # ImageNet-A itself (7,500 test images), with labels in ImageNet-200 order, to evaluate ImageNet-200 models.
    "imagenet_a": DatasetSpec("imagenet_a", "imagenet", 200, "test", IMAGENET_A_INDICES_IN_1K),
    "cifar10": DatasetSpec("cifar10", "cifar", 10, "test"),
}


def _check_name(name: str) -> DatasetSpec:
  if name not in SPECS:
    raise ValueError(f"name={name!r} is not a data set; accepted values: {', '.join(map(repr, DATASET_NAMES))}.")
  return SPECS[name]


def default_data_dir(data_dir: str | None = None) -> str:
  """Where TFDS looks: ``data_dir``, else ``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``."""
  return data_dir or os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def prepare_instructions(name: str, data_dir: str | None = None) -> str:
  """The exact commands that prepare data set ``name`` for ``tfds.data_source`` (array_record format)."""
  spec = _check_name(name)
  data_dir = default_data_dir(data_dir)
  manual_dir = os.path.join(data_dir, "downloads", "manual")
  tf_note = ("Preparing needs TensorFlow once (pip install tensorflow-cpu tensorflow-datasets); reading the "
             "prepared files does not.")
  if spec.tfds_name == "cifar10":
    return (f"{tf_note}\n  tfds build cifar10 --file_format=array_record --data_dir={data_dir}\n"
            "(downloads the archive from https://www.cs.toronto.edu/~kriz/cifar.html itself).")
  if spec.tfds_name == "imagenet_a":
    return (f"{tf_note}\n  tfds build imagenet_a --file_format=array_record --data_dir={data_dir}\n"
            "(downloads imagenet-a.tar itself).")
  return (f"{tf_note}\n"
          "1. Download ILSVRC2012_img_train.tar (138 GB) and ILSVRC2012_img_val.tar (6.3 GB) from "
          "https://image-net.org/download-images (free account, terms of access) into\n"
          f"     {manual_dir}\n"
          f"2. tfds build {spec.tfds_name} --file_format=array_record --manual_dir={manual_dir} "
          f"--data_dir={data_dir}\n"
          f"(one build serves imagenet2012, imagenet200 and imagenet_per_class; imagenet2012_subset/10pct is "
          "its own build from the same tarballs).")


def tfds_data_source(name: str, split: str, data_dir: str | None = None, **kwargs: Any) -> Sequence[dict[str, Any]]:
  """``tfds.data_source`` of data set ``name`` (never downloads); DatasetNotPreparedError with the prepare
  command when the data set is not there (TFDS itself says 'TFRECORD is not supported', which misleads)."""
  import tensorflow_datasets as tfds  # Imported here: only the TFDS pipelines need it.
  spec = _check_name(name)
  try:
    return tfds.data_source(spec.tfds_name, split=split, data_dir=data_dir, download=False, **kwargs)
  except Exception as e:  # noqa: BLE001  (TFDS raises several types for "not there"; all get the same advice)
    if "unknown split" in str(e).lower():  # a typo in the split name is not a missing data set
      raise
    raise DatasetNotPreparedError(
        f"data set {name!r} (TFDS {spec.tfds_name!r}, split {split!r}) is not prepared in array_record format "
        f"under {default_data_dir(data_dir)}. Prepare it with:\n{prepare_instructions(name, data_dir)}\n"
        f"(TFDS said: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from e


def _decode_image(image: Any) -> np.ndarray:
  """A decoded image array, or encoded bytes decoded with PIL; (H, W, 3) uint8."""
  if isinstance(image, (bytes, bytearray, memoryview)):
    from PIL import Image
    with Image.open(io.BytesIO(bytes(image))) as pil:
      image = np.asarray(pil.convert("RGB"))
  image = np.asarray(image)
  if image.dtype != np.uint8 or image.size == 0:
    raise ValueError(f"decoded image has dtype {image.dtype} and shape {image.shape}; expected non-empty uint8.")
  return T.to_rgb(image)


class RecordSource(Sequence):
  """Random access to selected records of a data source, errors captured per record, evaluation padding.

  Item ``i < len(keys)`` reads ``source[keys[i]]`` and returns ``{'key', 'image', 'label', 'error'}`` with
  ``error`` the decoding failure's text (image None) instead of raising, so that the preprocessing step can
  either fail naming the record or skip it. Items ``len(keys) <= i < length`` are padding (key -1).
  Picklable when ``source`` is (TFDS data sources are), as grain worker processes need.
  """

  def __init__(self, source: Sequence[Any], keys: np.ndarray | None = None, label_map: np.ndarray | None = None,
               length: int | None = None, image_key: str = "image"):
    self._source = source
    self._keys = np.arange(len(source), dtype=np.int64) if keys is None else np.asarray(keys, np.int64)
    self._label_map = None if label_map is None else np.asarray(label_map, np.int64)
    self._length = len(self._keys) if length is None else int(length)
    self._image_key = image_key
    if self._length < len(self._keys):
      raise ValueError(f"length={length} must be >= the number of selected records ({len(self._keys)}).")

  @property
  def num_records(self) -> int:
    """Real (non-padding) records."""
    return len(self._keys)

  def __len__(self) -> int:
    return self._length

  def __getitem__(self, i: int) -> dict[str, Any]:  # type: ignore[override]
    if not 0 <= i < self._length:
      raise IndexError(f"index {i} out of range for {self._length} records")
    if i >= len(self._keys):
      return {"key": -1, "image": None, "label": 0, "error": None}
    key = int(self._keys[i])
    try:
      record = self._source[key]
      image = _decode_image(record[self._image_key])
      label = int(record["label"])
    except Exception as e:  # noqa: BLE001  (any decoding failure is reported with the record's key)
      return {"key": key, "image": None, "label": 0, "error": f"{type(e).__name__}: {e}"}
    if self._label_map is not None:
      label = int(self._label_map[label])
    return {"key": key, "image": image, "label": label, "error": None}

  def __repr__(self) -> str:
    return f"RecordSource({self._source!r}, records={len(self._keys)}, length={self._length})"


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


def _log_throughput(step: int, metrics: dict[str, float]) -> None:
  _log.info("data step %d: %s", step, ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))


class Pipeline(Iterator[dict[str, np.ndarray]]):
  """Iterator over batches with exact resume, corrupt-record counting and a throughput hook.

  ``get_state()`` is a small JSON-serialisable dict; ``set_state(state)`` (or ``set_state(step)``) moves the
  iterator to that step. Batches are indexable by step, so this is exact with or without worker processes,
  and a state saved with one worker count restores with another.

  Every ``log_every`` batches ``log_fn(step, {'data/images_per_sec': ..., 'data/num_corrupt': ...})`` is
  called (default: ``logging.info``); ``images_per_sec`` holds the last measurement.
  """

  def __init__(self, batches: Any, *, batch_size: int, steps_per_epoch: int, worker_count: int = 0,
               worker_buffer_size: int = 2, read_threads: int = 2, prefetch_batches: int = 2, start_step: int = 0,
               log_every: int = 100, log_fn: Callable[[int, dict[str, float]], None] | None = None,
               description: str = ""):
    self._batches = batches  # grain.MapDataset of batches, indexed by step.
    self.batch_size = batch_size
    self.steps_per_epoch = steps_per_epoch
    self.worker_count = worker_count
    self.worker_buffer_size = worker_buffer_size
    self.read_threads = read_threads
    self.prefetch_batches = prefetch_batches
    self.log_every = log_every
    self.log_fn = log_fn or _log_throughput
    self.description = description
    self.step = int(start_step)
    self.num_corrupt = 0
    self.num_records: int | None = None  # real (unpadded) records of the split, set by make_pipeline
    self.images_per_sec = float("nan")
    self._iterator: Iterator[dict[str, np.ndarray]] | None = None
    self._window_start = (self.step, time.perf_counter())

  def __len__(self) -> int:
    """Total number of batches (steps) of this process, from step 0."""
    return len(self._batches)

  def _make_iterator(self) -> Iterator[dict[str, np.ndarray]]:
    import grain
    # Elements here are whole batches: grain's default read-ahead (500 elements on 16 threads, sized for
    # records of a few KiB) would hold hundreds of batches, so threads and read-ahead are counted in batches.
    ds = self._batches[self.step:].to_iter_dataset(
        grain.ReadOptions(num_threads=self.read_threads, prefetch_buffer_size=self.prefetch_batches))
    if self.worker_count > 0:
      from absl import flags
      # grain's worker processes read absl flags; outside an absl app (pytest, notebooks) nothing parsed
      # them, so accept their defaults (an absl app parses its command line before this point anyway).
      if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
      ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=self.worker_count,
                                                       per_worker_buffer_size=self.worker_buffer_size))
    return iter(ds)

  def __iter__(self) -> Pipeline:
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    if self._iterator is None:
      self._iterator = self._make_iterator()
      self._window_start = (self.step, time.perf_counter())
    batch = next(self._iterator)
    self.step += 1
    self.num_corrupt += int(batch["corrupt"].sum())
    start_step, start_time = self._window_start
    if self.log_every and self.step - start_step >= self.log_every:
      elapsed = time.perf_counter() - start_time
      self.images_per_sec = (self.step - start_step) * self.batch_size / max(elapsed, 1e-9)
      self.log_fn(self.step, {"data/images_per_sec": self.images_per_sec, "data/num_corrupt": self.num_corrupt})
      self._window_start = (self.step, time.perf_counter())
    return batch

  def get_state(self) -> dict[str, int]:
    """``{'step': next step, 'num_corrupt': corrupt records so far}`` (JSON-serialisable)."""
    return {"step": self.step, "num_corrupt": self.num_corrupt}

  def set_state(self, state: dict[str, int] | int) -> None:
    """Continues from ``state`` (a ``get_state()`` dict or a step number)."""
    state = {"step": state} if isinstance(state, (int, np.integer)) else dict(state)
    if not 0 <= int(state["step"]) <= len(self):
      raise ValueError(f"state step={state['step']} is outside [0, {len(self)}] for {self.description}.")
    self.close()
    self.step = int(state["step"])
    self.num_corrupt = int(state.get("num_corrupt", 0))

  def close(self) -> None:
    """Stops worker processes (a later ``next`` restarts them at the current step)."""
    iterator, self._iterator = self._iterator, None
    if iterator is not None and hasattr(iterator, "close"):
      iterator.close()


def build_pipeline(source: Sequence[Any], preprocess: Callable[[int, Any], dict[str, np.ndarray]], *,
                   batch_size: int, seed: int, train: bool, num_epochs: int | None, shard_index: int,
                   shard_count: int, worker_count: int = 0, worker_buffer_size: int = 2, read_threads: int = 2,
                   prefetch_batches: int = 2, start_step: int = 0, log_every: int = 100,
                   log_fn: Callable[[int, dict[str, float]], None] | None = None, description: str = "") -> Pipeline:
  """The grain pipeline of any random-access ``source`` (also used by ``jaxborders.data.video``).

  Training shuffles each epoch (grain's index shuffle, a new permutation per epoch) and drops the last partial
  global batch; evaluation keeps the order and expects ``source`` padded to a multiple of
  ``batch_size * shard_count`` (``eval_length``). ``preprocess(global_index, record)`` must be a pure function.
  ``batch_size`` is per process. Each process (and each of its ``worker_count`` workers) prepares
  ``read_threads`` batches in parallel threads and holds up to ``prefetch_batches`` (+ ``worker_buffer_size``
  per worker) ready batches: host memory ~ max(worker_count, 1) x (prefetch_batches + worker_buffer_size) x
  batch bytes (a 256 x 224 x 224 x 3 float32 batch is 154 MB).
  """
  import grain
  for arg, value in (("batch_size", batch_size), ("shard_count", shard_count),
                     ("prefetch_batches", prefetch_batches)):
    if value < 1:
      raise ValueError(f"{arg}={value} must be >= 1.")
  if not 0 <= shard_index < shard_count:
    raise ValueError(f"shard_index={shard_index} must be in [0, shard_count={shard_count}).")
  if worker_count < 0:
    raise ValueError(f"worker_count={worker_count} must be >= 0 (0 reads in the calling process).")
  if read_threads < 0:
    raise ValueError(f"read_threads={read_threads} must be >= 0 (0 prepares batches in the iterating thread).")
  if num_epochs is not None and num_epochs < 1:
    raise ValueError(f"num_epochs={num_epochs} must be >= 1 or None (repeat forever).")
  if not 0 <= seed < 2**32:
    raise ValueError(f"seed={seed} must be in [0, 2**32).")
  epoch_length = len(source)
  global_batch = batch_size * shard_count
  if epoch_length < global_batch and train:
    raise ValueError(f"{description}: {epoch_length} records cannot fill one global batch of "
                     f"{batch_size} x {shard_count} processes.")
  ds = grain.MapDataset.source(source)
  if train:
    # grain reshuffles epoch e with seed + e, so seeds s and s + 1 would share orders one epoch apart; a hashed
    # seed keeps the runs of a seed sweep independent.
    ds = ds.shuffle(seed=int(np.random.SeedSequence([seed, 0x5A0FF1E]).generate_state(1)[0]))
  ds = ds.repeat(num_epochs) if (num_epochs or 0) != 1 else ds
  ds = ds.map_with_index(preprocess)
  if num_epochs is not None:
    # Every process must run the same number of steps (collectives would hang otherwise).
    ds = ds[:len(ds) // global_batch * global_batch]
  ds = ds[shard_index::shard_count]
  ds = ds.batch(batch_size, drop_remainder=True)
  steps_per_epoch = max(epoch_length // global_batch, 1)
  return Pipeline(ds, batch_size=batch_size, steps_per_epoch=steps_per_epoch, worker_count=worker_count,
                  worker_buffer_size=worker_buffer_size, read_threads=read_threads, prefetch_batches=prefetch_batches,
                  start_step=start_step, log_every=log_every, log_fn=log_fn,
                  description=description)


def eval_length(num_records: int, batch_size: int, shard_count: int) -> int:
  """Records after padding so that every process gets the same whole number of batches."""
  global_batch = batch_size * shard_count
  return -(-num_records // global_batch) * global_batch


def _default_cache_dir(cache_dir: str | None) -> str:
  return cache_dir or os.environ.get("JAXBORDERS_CACHE") or os.path.expanduser("~/.cache/jaxborders")


def read_labels(name: str, split: str, data_dir: str | None = None, cache_dir: str | None = None) -> np.ndarray:
  """Labels (int64, one per record) of a TFDS split, cached as .npy in ``cache_dir``.

  Reading skips image decoding (``tfds.decode.SkipDecoding``) and falls back to full records where TFDS
  cannot (mock data). The cache key holds the data set, split and record count.
  """
  import tensorflow_datasets as tfds
  spec = _check_name(name)
  source = tfds_data_source(name, split, data_dir)
  n = len(source)
  safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{spec.tfds_name}-{split}-{n}")
  path = os.path.join(_default_cache_dir(cache_dir), "labels", safe + ".npy")
  if os.path.exists(path):
    labels = np.load(path)
    if len(labels) == n:
      return labels
  reader = source
  # tfds.testing.mock_data cannot serve undecoded records without TensorFlow: read those fully.
  if not isinstance(getattr(source, "data_source", None), unittest.mock.Mock):
    try:
      # The image stays encoded bytes (TFDS's numpy parser, no TensorFlow): only the label is read.
      fast = tfds_data_source(name, split, data_dir, decoders={"image": tfds.decode.SkipDecoding()})
      int(np.asarray(fast[0]["label"]))
      reader = fast
    except Exception:  # noqa: BLE001  (older TFDS versions: decode everything, slower but correct)
      reader = source
  labels = np.empty(n, np.int64)
  chunk = 4096
  for start in range(0, n, chunk):
    keys = list(range(start, min(n, start + chunk)))
    records = None
    if reader is not source:  # batched reads: one array_record call per chunk (ImageNet train: ~1.3M records)
      try:
        records = reader.__getitems__(keys)
      except Exception:  # noqa: BLE001  (fall back to one read per record)
        records = None
    records = records if records is not None else [reader[k] for k in keys]
    labels[start:start + len(keys)] = [int(np.asarray(r["label"])) for r in records]
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = f"{path}.{os.getpid()}.tmp.npy"
  np.save(tmp, labels)
  os.replace(tmp, path)
  return labels


def select_per_class(labels: np.ndarray, images_per_class: int, seed: int = 0) -> np.ndarray:
  """Sorted record keys of ``images_per_class`` records of every class, drawn with ``seed``.

  The records are taken in one seeded permutation, so for a fixed seed the 50-per-class subset is inside the
  100-per-class one (the data-efficiency curve adds images rather than redrawing). Classes with fewer
  records keep them all.
  """
  if images_per_class < 1:
    raise ValueError(f"images_per_class={images_per_class} must be >= 1.")
  labels = np.asarray(labels)
  order = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5E1EC7])).permutation(len(labels))
  shuffled = labels[order]
  # Rank of each record among the records of its class, in permutation order.
  sort = np.argsort(shuffled, kind="stable")
  sorted_labels = shuffled[sort]
  starts = np.searchsorted(sorted_labels, sorted_labels, side="left")
  rank = np.empty(len(labels), np.int64)
  rank[sort] = np.arange(len(labels)) - starts
  return np.sort(order[rank < images_per_class])


def _process_shard(shard_index: int | None, shard_count: int | None) -> tuple[int, int]:
  if shard_index is None or shard_count is None:
    import jax
    shard_index = jax.process_index() if shard_index is None else shard_index
    shard_count = jax.process_count() if shard_count is None else shard_count
  return int(shard_index), int(shard_count)


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
  spec = _check_name(name)
  if split == "val":
    split = spec.eval_split
  if spec.per_class and images_per_class is None and split.startswith("train"):
    raise ValueError(f"name={name!r} needs images_per_class (e.g. 50, 100, 250, 500) for split {split!r}.")
  if images_per_class is not None and not spec.per_class:
    raise ValueError(f"images_per_class is only accepted with name='imagenet_per_class'; got name={name!r}.")
  image_size = image_size or (32 if spec.kind == "cifar" else 224)
  resize_size = resize_size or int(round(image_size / 0.875))
  shard_index, shard_count = _process_shard(shard_index, shard_count)
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


def stream_from_pipelines(make: Callable[..., Pipeline], split: str, seed: int, num_examples: int,
                          image_shape: tuple[int, ...]) -> Any:
  """A ``train.data.Stream`` over ``make(train=..., seed=..., batch_size=..., shard_index=..., shard_count=...,
  num_epochs=...)``: epoch e of training is steps [e * steps_per_epoch, (e + 1) * steps_per_epoch) of one
  endless pipeline (exact resume from any step: ``batches(..., start=k)`` begins at step k of the epoch); evaluation splits are one padded pass with ``mask``."""
  from train.data import Stream  # Imported here: the library does not depend on the trainer otherwise.
  train = split == "train"
  cache: dict[tuple[int, int, int], Pipeline] = {}

  def batches(epoch: int, batch_size: int, process_index: int, process_count: int, start: int = 0):
    # ``start``: first step within the epoch (the trainer resumes mid-epoch without reading skipped batches).
    if batch_size % process_count:
      raise ValueError(f"batch_size={batch_size} must be divisible by the process count {process_count}.")
    key = (batch_size, process_index, process_count)
    if key not in cache:
      cache[key] = make(train=train, seed=seed, batch_size=batch_size // process_count, shard_index=process_index,
                        shard_count=process_count, num_epochs=None if train else 1)
    pipe = cache[key]
    steps = pipe.steps_per_epoch if train else len(pipe)
    start = start if train else 0
    pipe.set_state(epoch * steps + start if train else 0)
    for _ in range(start, steps):
      batch = next(pipe)
      yield {"image": batch["image"], "label": batch["label"], "mask": batch["mask"]}

  return Stream(batches=batches, num_examples=num_examples, image_shape=image_shape)


def load(data_config: Any, split: str, seed: int) -> Any:
  """The trainer's entry point: ``split`` ('train' or 'val') of ``data_config.dataset`` as a Stream."""
  import functools
  if split not in SPLITS:
    raise ValueError(f"split={split!r} is not supported; accepted values: {', '.join(map(repr, SPLITS))}.")
  name = data_config.dataset
  spec = _check_name(name)
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
    from train.data import DataMissingError  # the trainer's "data set not on disk" error
    raise DataMissingError(str(e)) from e
  return stream_from_pipelines(make, split, seed, probe.num_records, (image_size, image_size, 3))


__all__ = [
    "DEFAULTS", "SPLITS", "load", "stream_from_pipelines", "DATASET_NAMES", "SPECS", "DatasetSpec",
    "IMAGENET_A_WNIDS", "IMAGENET_A_INDICES_IN_1K",
    "DatasetNotPreparedError", "CorruptRecordError", "RecordSource", "ImagePreprocess", "Pipeline",
    "build_pipeline", "eval_length", "make_pipeline", "prepare_instructions", "read_labels", "select_per_class",
    "tfds_data_source", "default_data_dir",
]
