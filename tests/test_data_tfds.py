"""TFDS + grain pipelines on ``tfds.testing.mock_data`` (random images of random sizes, no files).

Shapes, normalisation, determinism in the seed, exact resume, disjoint covering shards, ImageNet-200 and
per-class selection, corrupt records, the missing-data message, worker processes.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")
pytest.importorskip("grain")

from jaxborders.data import tfds_source as S  # noqa: E402
from jaxborders.data import transforms as T  # noqa: E402

NUM_EXAMPLES = 48


@pytest.fixture()
def mock():
  with tfds.testing.mock_data(num_examples=NUM_EXAMPLES):
    yield


def _pipe(name="imagenet2012", split="train", tmp=None, **kw):
  kw = {"batch_size": 4, "seed": 0, "image_size": 24, "shard_index": 0, "shard_count": 1, **kw}
  return S.make_pipeline(name, split, label_cache_dir=str(tmp) if tmp else None, **kw)


def _take(pipe, n):
  return [next(pipe) for _ in range(n)]


@pytest.mark.parametrize("name", S.DATASET_NAMES)
@pytest.mark.parametrize("train", [True, False])
def test_shapes_dtypes_labels(mock, tmp_path, name, train):
  kw = {"images_per_class": 2} if name == "imagenet_per_class" else {}
  split = "train" if train else "val"
  pipe = _pipe(name, split, tmp_path, train=train, num_epochs=1, **kw)
  batch = next(pipe)
  size = 24
  assert batch["image"].shape == (4, size, size, 3) and batch["image"].dtype == np.float32
  assert batch["label"].dtype == np.int32 and batch["mask"].shape == (4,)
  assert np.all((batch["label"] >= 0) & (batch["label"] < S.SPECS[name].num_classes))
  assert np.isfinite(batch["image"]).all()
  assert len(pipe) >= 1


def test_cifar_normalisation_matches_uniform_pixels(mock):
  # Mock pixels are uniform on 0..255 (mean 127.5, std 73.9); evaluation images are only normalised.
  pipe = _pipe("cifar10", "val", train=False, batch_size=16, image_size=32)
  x = np.concatenate([b["image"] for b in pipe])
  mean, std = np.array(T.CIFAR10_MEAN), np.array(T.CIFAR10_STD)
  np.testing.assert_allclose(x.mean(axis=(0, 1, 2)), (127.5 / 255 - mean) / std, atol=0.03)
  np.testing.assert_allclose(x.std(axis=(0, 1, 2)), (73.9 / 255) / std, rtol=0.03)


def test_imagenet_normalisation_roughly(mock):
  x = np.concatenate([b["image"] for b in _take(_pipe(batch_size=8), 3)])
  pixels = x * np.array(T.IMAGENET_STD) + np.array(T.IMAGENET_MEAN)  # back to [0, 1]
  assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
  assert abs(pixels.mean() - 0.5) < 0.05  # uniform mock pixels, smoothed by resizing


def test_same_seed_same_batches_different_seed_different(mock):
  a, b, c = (_take(_pipe(seed=s), 3) for s in (5, 5, 6))
  for x, y in zip(a, b):
    for k in x:
      np.testing.assert_array_equal(x[k], y[k])
  assert any(not np.array_equal(x["image"], z["image"]) for x, z in zip(a, c))
  assert any(not np.array_equal(x["record_key"], z["record_key"]) for x, z in zip(a, c))


def test_epochs_reshuffle_and_cover(mock):
  pipe = _pipe(num_epochs=2, batch_size=8)
  keys = np.concatenate([b["record_key"] for b in pipe]).reshape(2, NUM_EXAMPLES)
  assert len(pipe) == 2 * NUM_EXAMPLES // 8
  assert sorted(keys[0]) == sorted(keys[1]) == list(range(NUM_EXAMPLES))
  assert keys[0].tolist() != keys[1].tolist()


@pytest.mark.parametrize("train", [True, False])
def test_resume_continues_exactly(mock, train):
  kw = {"train": train, "num_epochs": 2 if train else None}
  full = _take(_pipe(**kw), 7 if train else 6)
  pipe = _pipe(**kw)
  _take(pipe, 4)
  state = pipe.get_state()
  assert state == {"step": 4, "num_corrupt": 0}
  restored = _pipe(**kw)
  restored.set_state(state)
  from_step = _pipe(start_step=4, **kw)
  for expected, a, b in zip(full[4:], restored, from_step):
    for k in expected:
      np.testing.assert_array_equal(a[k], expected[k])
      np.testing.assert_array_equal(b[k], expected[k])


@pytest.mark.parametrize("train", [True, False])
def test_process_shards_are_disjoint_and_cover(mock, train):
  count, batch = 3, 4
  shards = [list(_pipe(shard_index=i, shard_count=count, batch_size=batch, train=train, num_epochs=1))
            for i in range(count)]
  assert len({len(s) for s in shards}) == 1  # every process runs the same number of steps
  keys = [np.concatenate([b["record_key"][b["mask"] > 0] for b in s]) for s in shards]
  union = np.concatenate(keys)
  assert len(union) == len(set(union.tolist()))  # disjoint
  # Evaluation covers every record; training drops only the remainder of the global batch (48 % 12 == 0).
  assert sorted(union.tolist()) == list(range(NUM_EXAMPLES))


def test_eval_padding_is_masked(mock):
  pipe = _pipe("cifar10", "val", train=False, batch_size=5, shard_count=2, shard_index=1)
  batches = list(pipe)
  assert len(batches) == S.eval_length(NUM_EXAMPLES, 5, 2) // 10 == 5
  mask = np.concatenate([b["mask"] for b in batches])
  keys = np.concatenate([b["record_key"] for b in batches])
  assert mask.sum() == NUM_EXAMPLES // 2 and mask[-1] == 0 and np.all(keys[mask == 0] == -1)
  assert np.all(np.concatenate([b["image"] for b in batches])[mask == 0] == 0)


def test_imagenet200_keeps_the_imagenet_a_classes(mock, tmp_path):
  labels_1k = S.read_labels("imagenet2012", "validation", cache_dir=str(tmp_path))
  assert os.path.exists(tmp_path / "labels" / f"imagenet2012-validation-{NUM_EXAMPLES}.npy")
  keep = np.flatnonzero(np.isin(labels_1k, S.IMAGENET_A_INDICES_IN_1K))
  pipe = _pipe("imagenet200", "val", tmp_path, train=False, batch_size=2)
  batches = list(pipe)
  mask = np.concatenate([b["mask"] for b in batches]) > 0
  keys = np.concatenate([b["record_key"] for b in batches])[mask]
  labels = np.concatenate([b["label"] for b in batches])[mask]
  np.testing.assert_array_equal(keys, keep)
  np.testing.assert_array_equal(np.asarray(S.IMAGENET_A_INDICES_IN_1K)[labels], labels_1k[keep])


def test_imagenet_a_class_list_agrees_with_tfds_labels():
  import tensorflow_datasets.datasets.imagenet2012 as imagenet_module
  path = os.path.join(os.path.dirname(imagenet_module.__file__), "labels.txt")
  with open(path) as f:
    wnids = f.read().split()
  assert len(S.IMAGENET_A_WNIDS) == len(set(S.IMAGENET_A_WNIDS)) == 200
  assert [wnids.index(w) for w in S.IMAGENET_A_WNIDS] == list(S.IMAGENET_A_INDICES_IN_1K)


def test_select_per_class_counts_nested_and_seeded():
  labels = np.repeat(np.arange(10), 30)[np.random.default_rng(0).permutation(300)]
  small, large = S.select_per_class(labels, 5, seed=1), S.select_per_class(labels, 12, seed=1)
  assert np.all(np.bincount(labels[small], minlength=10) == 5)
  assert np.all(np.bincount(labels[large], minlength=10) == 12)
  assert set(small.tolist()) <= set(large.tolist())
  assert not np.array_equal(small, S.select_per_class(labels, 5, seed=2))
  np.testing.assert_array_equal(S.select_per_class(labels, 40, seed=1), np.arange(300))  # all of every class
  with pytest.raises(ValueError, match="images_per_class=0 must be >= 1"):
    S.select_per_class(labels, 0)


def test_per_class_pipeline_uses_the_selection(mock, tmp_path):
  labels = S.read_labels("imagenet_per_class", "train", cache_dir=str(tmp_path))
  expected = S.select_per_class(labels, 1, seed=3)
  pipe = _pipe("imagenet_per_class", "train", tmp_path, images_per_class=1, subset_seed=3, num_epochs=1,
               batch_size=1)
  keys = np.concatenate([b["record_key"] for b in pipe])
  np.testing.assert_array_equal(np.sort(keys), expected)
  with pytest.raises(ValueError, match="needs images_per_class"):
    _pipe("imagenet_per_class", "train", tmp_path)


def test_unknown_name_lists_valid_values():
  with pytest.raises(ValueError, match="accepted values: 'imagenet2012', 'imagenet2012_subset/10pct'"):
    S.make_pipeline("imagenet", "train", batch_size=2, shard_index=0, shard_count=1)


@pytest.mark.parametrize("name,command", [
    ("imagenet2012", "tfds build imagenet2012 --file_format=array_record --manual_dir="),
    ("imagenet200", "tfds build imagenet2012 --file_format=array_record --manual_dir="),
    ("cifar10", "tfds build cifar10 --file_format=array_record --data_dir="),
])
def test_missing_dataset_names_the_command(tmp_path, name, command):
  with pytest.raises(S.DatasetNotPreparedError) as info:
    S.make_pipeline(name, "train", batch_size=2, shard_index=0, shard_count=1, data_dir=str(tmp_path))
  message = str(info.value)
  assert command in message and str(tmp_path) in message
  if name != "cifar10":
    assert "ILSVRC2012_img_train.tar" in message and str(tmp_path / "downloads" / "manual") in message


def _png(value: int) -> bytes:
  import io

  from PIL import Image
  out = io.BytesIO()
  Image.fromarray(np.full((6, 6, 3), value, np.uint8)).save(out, format="PNG")
  return out.getvalue()


def _corrupt_pipeline(skip_corrupt: bool):
  # Encoded images as a no-decode TFDS source would give them; record 3 is truncated (undecodable).
  records = [{"image": _png(10 * i), "label": i} for i in range(8)]
  records[3]["image"] = records[3]["image"][:20]
  source = S.RecordSource(records)
  pre = S.ImagePreprocess("none", 6, 6, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), 0, len(source), skip_corrupt,
                          "toy split 'train'")
  return S.build_pipeline(source, pre, batch_size=4, seed=0, train=False, num_epochs=1, shard_index=0,
                          shard_count=1)


def test_corrupt_record_raises_with_its_key():
  with pytest.raises(S.CorruptRecordError, match="toy split 'train': record 3 could not be decoded"):
    list(_corrupt_pipeline(False))


def test_corrupt_record_skipped_and_counted():
  pipe = _corrupt_pipeline(True)
  batches = list(pipe)
  assert pipe.num_corrupt == 1 and pipe.get_state()["num_corrupt"] == 1
  mask = np.concatenate([b["mask"] for b in batches])
  assert mask.tolist() == [1, 1, 1, 0, 1, 1, 1, 1]
  np.testing.assert_allclose(batches[1]["image"][0, 0, 0], [40 / 255] * 3, rtol=1e-6)


def test_throughput_hook(mock):
  logged = []
  pipe = _pipe(log_every=2, log_fn=lambda step, m: logged.append((step, m)))
  _take(pipe, 5)
  assert [s for s, _ in logged] == [2, 4]
  assert logged[0][1]["data/images_per_sec"] > 0 and logged[0][1]["data/num_corrupt"] == 0
  assert pipe.images_per_sec == logged[-1][1]["data/images_per_sec"]


def test_worker_processes_give_the_same_batches(mock):
  serial = _take(_pipe(batch_size=4), 4)
  parallel_pipe = _pipe(batch_size=4, worker_count=2)
  try:
    parallel = _take(parallel_pipe, 4)
  finally:
    parallel_pipe.close()
  for a, b in zip(serial, parallel):
    for k in a:
      np.testing.assert_array_equal(a[k], b[k])


def test_trainer_stream_adapter(mock):
  ml_collections = pytest.importorskip("ml_collections")
  data = pytest.importorskip("train.data")
  assert data.get_source("tfds_source") is S
  config = ml_collections.ConfigDict({**S.DEFAULTS, "source": "tfds_source", "dataset": "cifar10"})
  train = data.load_split(data.source_config(config), "train", seed=0)
  assert isinstance(train, data.Stream) and train.num_examples == NUM_EXAMPLES and train.image_shape == (32, 32, 3)
  epoch0, epoch1 = list(train.batches(0, 8, 0, 1)), list(train.batches(1, 8, 0, 1))
  assert len(epoch0) == NUM_EXAMPLES // 8 and epoch0[0]["image"].shape == (8, 32, 32, 3)
  assert not np.array_equal(epoch0[0]["image"], epoch1[0]["image"])
  np.testing.assert_array_equal(list(train.batches(0, 8, 0, 1))[2]["image"], epoch0[2]["image"])  # resumable
  half = next(train.batches(0, 8, 1, 2))  # process 1 of 2: half of each global batch
  assert half["image"].shape == (4, 32, 32, 3)
  val = list(data.load_split(data.source_config(config), "val", seed=0).batches(0, 10, 0, 1))
  assert sum(b["mask"].sum() for b in val) == NUM_EXAMPLES and len(val) == 5
  config.update({"dataset": "imagenet2012", "image_size": 24, "eval_image_size": 40, "eval_resize_size": 40})
  shift_eval = data.load_split(data.source_config(config), "val", seed=0)
  assert shift_eval.image_shape == (40, 40, 3)
  assert next(shift_eval.batches(0, 4, 0, 1))["image"].shape == (4, 40, 40, 3)


def test_trainer_gets_data_missing_error(tmp_path):
  ml_collections = pytest.importorskip("ml_collections")
  data = pytest.importorskip("train.data")
  config = ml_collections.ConfigDict({**S.DEFAULTS, "source": "tfds_source", "dataset": "imagenet200",
                                      "data_dir": str(tmp_path)})
  with pytest.raises(data.DataMissingError, match="tfds build imagenet2012 --file_format=array_record"):
    data.load_split(data.source_config(config), "train", seed=0)


def test_default_shard_is_this_process(mock):
  pipe = S.make_pipeline("cifar10", "val", batch_size=8, train=False)  # jax.process_index() / process_count()
  assert len(pipe) == NUM_EXAMPLES // 8


@pytest.mark.parametrize("kwargs,message", [
    ({"batch_size": 0}, "batch_size=0 must be >= 1"),
    ({"shard_index": 2, "shard_count": 2}, r"shard_index=2 must be in \[0, shard_count=2\)"),
    ({"worker_count": -1}, "worker_count=-1 must be >= 0"),
    ({"num_epochs": 0}, "num_epochs=0 must be >= 1 or None"),
    ({"seed": -1}, r"seed=-1 must be in \[0, 2\*\*32\)"),
    ({"batch_size": 64}, "48 records cannot fill one global batch of 64 x 1 processes"),
])
def test_argument_errors_name_the_argument(mock, kwargs, message):
  with pytest.raises(ValueError, match=message):
    _pipe(**kwargs)


def test_preprocess_mode_lists_accepted_values():
  with pytest.raises(ValueError, match="accepted values: inception, resize_crop, pad_crop, none"):
    S.ImagePreprocess("random", 8, 8, (0.0,), (1.0,), 0, 1)
