"""UCF101 / HMDB51 clip pipelines on a frame folder and split files the test writes in the official format."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("grain")

from jaxborders.data import transforms as T  # noqa: E402
from jaxborders.data import video as V  # noqa: E402

CLASSES = ("ApplyEyeMakeup", "Archery", "Basketball")


def _write_video(folder: str, num_frames: int, value: int, size=(30, 40)) -> None:
  os.makedirs(folder, exist_ok=True)
  for t in range(num_frames):
    # Frame t of a video is constant (value + t): a clip's frames tell which indices were read.
    frame = np.full((*size, 3), (value + t) % 256, np.uint8)
    Image.fromarray(frame).save(os.path.join(folder, f"frame_{t + 1:05d}.jpg"), quality=100)


@pytest.fixture()
def ucf(tmp_path):
  root, splits = tmp_path / "frames", tmp_path / "ucfTrainTestlist"
  splits.mkdir()
  (splits / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(CLASSES)))
  train, test = [], []
  for label, cls in enumerate(CLASSES):
    for g in range(3):
      name = f"v_{cls}_g{g + 1:02d}_c01"
      _write_video(str(root / cls / name), num_frames=12 + 4 * g, value=40 * label + 10 * g)
      (train if g < 2 else test).append((cls, name, label))
  (splits / "trainlist01.txt").write_text("".join(f"{c}/{n}.avi {l + 1}\n" for c, n, l in train))
  (splits / "testlist01.txt").write_text("".join(f"{c}/{n}.avi\n" for c, n, _ in test))
  return str(root), str(splits)


def _pipe(ucf, split="train", **kw):
  root, splits = ucf
  kw = {"batch_size": 2, "seed": 0, "clip_length": 16, "image_size": 16, "shard_index": 0, "shard_count": 1, **kw}
  return V.make_video_pipeline("ucf101", root, splits, split, **kw)


def test_read_split_ucf101(ucf):
  videos, classes = V.read_split("ucf101", ucf[1], "train")
  assert classes == list(CLASSES) and len(videos) == 6
  assert videos[0] == ("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01", 0)
  test, _ = V.read_split("ucf101", ucf[1], "test")
  assert [label for _, label in test] == [0, 1, 2]
  with pytest.raises(ValueError, match="accepted values: 1, 2, 3"):
    V.read_split("ucf101", ucf[1], "train", fold=4)


def test_read_split_hmdb51(tmp_path):
  (tmp_path / "brush_hair_test_split1.txt").write_text("a.avi 1\nb.avi 2\nc.avi 0\n")
  (tmp_path / "cartwheel_test_split1.txt").write_text("d.avi 2\ne.avi 1\n")
  train, classes = V.read_split("hmdb51", str(tmp_path), "train")
  test, _ = V.read_split("hmdb51", str(tmp_path), "test")
  assert classes == ["brush_hair", "cartwheel"]
  assert train == [("brush_hair/a", 0), ("cartwheel/e", 1)] and test == [("brush_hair/b", 0), ("cartwheel/d", 1)]


def test_training_clips_shape_normalised_deterministic(ucf):
  a = next(_pipe(ucf))
  b = next(_pipe(ucf))
  c = next(_pipe(ucf, seed=1))
  assert a["image"].shape == (2, 16, 16, 16, 3) and a["image"].dtype == np.float32
  for k in a:
    np.testing.assert_array_equal(a[k], b[k])
  assert not np.array_equal(a["image"], c["image"])
  # Every frame of a clip is constant, so un-normalising gives back a frame value: consecutive values
  # (a window of 16 frames, looped when the video has 12) from the video's start value.
  pixels = a["image"] * np.array(T.IMAGENET_STD) + np.array(T.IMAGENET_MEAN)
  values = np.round(pixels[..., 0].mean(axis=(2, 3)) * 255).astype(int)  # (B, T)
  for clip in values:
    steps = np.diff(clip)
    assert set(steps.tolist()) <= {0, 1, 2, -12, -11, -10}  # +1 per frame (+-1 jpeg), or the loop of a 12-frame video


def test_eval_clips_central_frames_and_padding(ucf):
  pipe = _pipe(ucf, "test", batch_size=2)
  batches = list(pipe)
  assert len(batches) == 2
  mask = np.concatenate([b["mask"] for b in batches])
  assert mask.tolist() == [1, 1, 1, 0]
  labels = np.concatenate([b["label"] for b in batches])[:3]
  assert labels.tolist() == [0, 1, 2]
  # Test videos have 20 frames: the central 16 start at frame 2, value 40 * label + 20 + 2.
  first = batches[0]["image"][0, 0, 8, 8, 0] * T.IMAGENET_STD[0] + T.IMAGENET_MEAN[0]
  assert abs(first * 255 - 22) <= 1.5


def test_resume_and_shards(ucf):
  uninterrupted = _pipe(ucf, num_epochs=2)
  full = [next(uninterrupted) for _ in range(5)]
  resumed = _pipe(ucf, num_epochs=2, start_step=3)
  for expected in full[3:]:
    got = next(resumed)
    np.testing.assert_array_equal(got["image"], expected["image"])
  keys = [np.concatenate([b["record_key"] for b in _pipe(ucf, batch_size=1, num_epochs=1, shard_index=i,
                                                               shard_count=2)]) for i in range(2)]
  assert not set(keys[0]) & set(keys[1]) and sorted([*keys[0], *keys[1]]) == list(range(6))


def test_missing_frames_raise_or_skip(ucf):
  root, _ = ucf
  broken = os.path.join(root, "Archery", "v_Archery_g01_c01")
  for f in os.listdir(broken):
    os.remove(os.path.join(broken, f))
  with open(os.path.join(broken, "frame_00001.jpg"), "wb") as f:
    f.write(b"not a jpeg")
  with pytest.raises(V.CorruptRecordError, match="Archery/v_Archery_g01_c01"):
    list(_pipe(ucf, train=False, split="train"))
  pipe = _pipe(ucf, train=False, split="train", skip_corrupt=True)
  batches = list(pipe)
  assert pipe.num_corrupt == 1 and sum(b["mask"].sum() for b in batches) == 5


def test_missing_root_says_how_to_extract(tmp_path):
  with pytest.raises(FileNotFoundError, match="ffmpeg -i <video>.avi"):
    V.make_video_pipeline("ucf101", str(tmp_path / "nope"), str(tmp_path), "train", batch_size=1,
                          shard_index=0, shard_count=1)
  with pytest.raises(ValueError, match="accepted values: ucf101, hmdb51"):
    V.read_split("kinetics", str(tmp_path), "train")


def test_trainer_stream_adapter(ucf):
  ml_collections = pytest.importorskip("ml_collections")
  data = pytest.importorskip("train.data")
  root, splits = ucf
  config = ml_collections.ConfigDict({**V.DEFAULTS, "source": "video", "root": root, "split_dir": splits,
                                      "image_size": 16})
  train = data.load_split(data.source_config(config), "train", seed=0)
  assert train.num_examples == 6 and train.image_shape == (16, 16, 16, 3)
  batches = list(train.batches(0, 2, 0, 1))
  assert len(batches) == 3 and batches[0]["image"].shape == (2, 16, 16, 16, 3)


def test_avi_videos_read_like_frame_folders(ucf, tmp_path):
  av = pytest.importorskip("av")
  root, _ = ucf
  # Replace one test video's frame folder by an .avi of the same frames (MJPEG: near-lossless, 20 frames).
  name = os.path.join(root, "Basketball", "v_Basketball_g03_c01")
  frames = [np.asarray(Image.open(os.path.join(name, f)).convert("RGB")) for f in V.list_frames(name)]
  reference = list(_pipe(ucf, "test"))
  for f in os.listdir(name):
    os.remove(os.path.join(name, f))
  os.rmdir(name)
  with av.open(name + ".avi", "w") as container:
    stream = container.add_stream("mjpeg", rate=25)
    stream.width, stream.height, stream.pix_fmt = 40, 30, "yuvj420p"
    for frame in frames:
      container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
    container.mux(stream.encode())
  assert V.read_video(name + ".avi").shape == (20, 30, 40, 3)
  from_video = list(_pipe(ucf, "test"))
  np.testing.assert_allclose(from_video[1]["image"][0], reference[1]["image"][0], atol=0.1)
  np.testing.assert_array_equal(from_video[0]["image"], reference[0]["image"])


def test_trainer_gets_data_missing_error(tmp_path):
  ml_collections = pytest.importorskip("ml_collections")
  data = pytest.importorskip("train.data")
  config = ml_collections.ConfigDict({**V.DEFAULTS, "source": "video", "root": str(tmp_path / "frames"),
                                      "split_dir": str(tmp_path)})
  with pytest.raises(data.DataMissingError, match="ffmpeg -i <video>.avi"):
    data.load_split(data.source_config(config), "train", seed=0)
