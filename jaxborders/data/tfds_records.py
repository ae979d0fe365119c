"""Reading TFDS records: ``tfds.data_source`` access, image decoding, a record view with per-record errors and
evaluation padding, and the cached label index used to select classes or N images per class.

Nothing here imports TensorFlow; TFDS is imported only when a data set is opened.

Example:
  >>> import numpy as np
  >>> select_per_class(np.array([0, 0, 0, 1, 1, 2]), images_per_class=1, seed=0).shape
  (3,)
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxborders.data import transforms as T
from jaxborders.data.tfds_catalog import check_name, default_data_dir, prepare_instructions


class DatasetNotPreparedError(FileNotFoundError):
  """A TFDS data set is not prepared (in ``array_record`` format); the message has the command to prepare it."""


def tfds_data_source(name: str, split: str, data_dir: str | None = None, **kwargs: Any) -> Sequence[dict[str, Any]]:
  """``tfds.data_source`` of data set ``name`` (never downloads); DatasetNotPreparedError with the prepare
  command when the data set is not there (TFDS itself says 'TFRECORD is not supported', which misleads)."""
  import tensorflow_datasets as tfds  # Imported here: only the TFDS pipelines need it.
  spec = check_name(name)
  try:
    return tfds.data_source(spec.tfds_name, split=split, data_dir=data_dir, download=False, **kwargs)
  except Exception as e:  # noqa: BLE001  (TFDS raises several types for "not there"; all get the same advice)
    if "unknown split" in str(e).lower():  # a typo in the split name is not a missing data set
      raise
    raise DatasetNotPreparedError(
        f"data set {name!r} (TFDS {spec.tfds_name!r}, split {split!r}) is not prepared in array_record format "
        f"under {default_data_dir(data_dir)}. Prepare it with:\n{prepare_instructions(name, data_dir)}\n"
        f"(TFDS said: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from e


def decode_image(image: Any) -> np.ndarray:
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
      image = decode_image(record[self._image_key])
      label = int(record["label"])
    except Exception as e:  # noqa: BLE001  (any decoding failure is reported with the record's key)
      return {"key": key, "image": None, "label": 0, "error": f"{type(e).__name__}: {e}"}
    if self._label_map is not None:
      label = int(self._label_map[label])
    return {"key": key, "image": image, "label": label, "error": None}

  def __repr__(self) -> str:
    return f"RecordSource({self._source!r}, records={len(self._keys)}, length={self._length})"


def _default_cache_dir(cache_dir: str | None) -> str:
  return cache_dir or os.environ.get("JAXBORDERS_CACHE") or os.path.expanduser("~/.cache/jaxborders")


def read_labels(name: str, split: str, data_dir: str | None = None, cache_dir: str | None = None) -> np.ndarray:
  """Labels (int64, one per record) of a TFDS split, cached as .npy in ``cache_dir``.

  Reading skips image decoding (``tfds.decode.SkipDecoding``) and falls back to full records where TFDS
  cannot (mock data). The cache key holds the data set, split and record count.
  """
  import tensorflow_datasets as tfds
  spec = check_name(name)
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
  if not _is_mock(getattr(source, "data_source", None)):
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


def _is_mock(obj: Any) -> bool:
  """Whether ``obj`` is a ``unittest.mock`` object (what ``tfds.testing.mock_data`` serves), without importing it."""
  return type(obj).__module__ == "unittest.mock"


__all__ = ["DatasetNotPreparedError", "tfds_data_source", "decode_image", "RecordSource", "read_labels",
           "select_per_class"]
