"""UCF101 / HMDB51 clips read from a local folder of frame images or videos (Exp 5 of the F-Conv paper).

Layout (the one Hara et al.'s 3D-ResNets code and most video repositories use)::

  ROOT/<class>/<video>/frame_00001.jpg, frame_00002.jpg, ...   (any sorted .jpg/.jpeg/.png names)
  or ROOT/<class>/<video>.avi                                    (decoded with PyAV: pip install av)

where ``<video>`` is the video file's name without ``.avi``. A frame folder wins over a video file of the same
name. Frame folders are faster (only the clip's frames are decoded; a video is decoded whole for each clip).
The official split files are read as they are
distributed: UCF101 ``ucfTrainTestlist/`` (``classInd.txt``, ``trainlist0{1,2,3}.txt``,
``testlist0{1,2,3}.txt``) and HMDB51 ``testTrainMulti_7030_splits/`` (``<class>_test_split{1,2,3}.txt``, one
``<video>.avi <0|1|2>`` per line: 1 train, 2 test, 0 unused). Frames are extracted once with ffmpeg::

  mkdir -p ROOT/<class>/<video> && ffmpeg -i <video>.avi -vf scale=-2:128 -q:v 2 ROOT/<class>/<video>/frame_%05d.jpg

(TFDS's ``ucf101`` builder needs TensorFlow even to read, so it is not used; see docs/experiments.md.)

Training clips: 16 consecutive frames from a random start (looped when the video is shorter), one
multiscale corner crop (scales 1 .. 1/2 of the shorter side, centre or a corner) resized to 112 and one
flip for the whole clip. Evaluation: the central 16 frames, shorter side 112, central crop. Batches:
``image`` float32 (B, T, S, S, 3) normalised, ``label`` int32, ``mask``, ``record_key`` (video index),
``corrupt``; the pipeline machinery (sharding, exact resume, throughput) is ``jaxborders.data.pipeline.build_pipeline``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
from PIL import Image

from jaxborders.data import transforms as T
from jaxborders.data.pipeline import (CorruptRecordError, Pipeline, build_pipeline, eval_length, process_shard,
                                      stream_from_pipelines)
from jaxborders.data.stream import DataMissingError

VideoDatasetName = Literal["ucf101", "hmdb51"]
VIDEO_DATASETS: tuple[str, ...] = ("ucf101", "hmdb51")
FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png")
VIDEO_EXTENSIONS = (".avi", ".mp4")


def _read_lines(path: str) -> list[str]:
  with open(path) as f:
    return [line.strip() for line in f if line.strip()]


def read_split(dataset: VideoDatasetName, split_dir: str, split: Literal["train", "test"],
               fold: int = 1) -> tuple[list[tuple[str, int]], list[str]]:
  """Videos of one official split: ``([(class/video, label), ...], class_names)``.

  Args:
    dataset: ``'ucf101'`` or ``'hmdb51'``.
    split_dir: folder of the official split files (``ucfTrainTestlist`` / ``testTrainMulti_7030_splits``).
    split: ``'train'`` or ``'test'``.
    fold: 1, 2 or 3.
  """
  if dataset not in VIDEO_DATASETS:
    raise ValueError(f"dataset={dataset!r}; accepted values: {', '.join(VIDEO_DATASETS)}.")
  if split not in ("train", "test"):
    raise ValueError(f"split={split!r}; accepted values: train, test.")
  if fold not in (1, 2, 3):
    raise ValueError(f"fold={fold}; accepted values: 1, 2, 3.")
  if not os.path.isdir(split_dir):
    raise FileNotFoundError(f"split_dir={split_dir!r} does not exist. Download the official splits: "
                            + ("https://www.crcv.ucf.edu/data/UCF101/UCF101TrainTestSplits-RecognitionTask.zip "
                               "(folder ucfTrainTestlist)" if dataset == "ucf101" else
                               "https://serre-lab.clps.brown.edu/wp-content/uploads/2013/10/test_train_splits.rar "
                               "(folder testTrainMulti_7030_splits)") + ".")
  if dataset == "ucf101":
    classes = [line.split()[1] for line in sorted(_read_lines(os.path.join(split_dir, "classInd.txt")),
                                                  key=lambda line: int(line.split()[0]))]
    index = {c: i for i, c in enumerate(classes)}
    name = f"{'trainlist' if split == 'train' else 'testlist'}0{fold}.txt"
    videos = []
    for line in _read_lines(os.path.join(split_dir, name)):
      relative = os.path.splitext(line.split()[0])[0]
      videos.append((relative, index[relative.split("/")[0]]))
    return videos, classes
  suffix = f"_test_split{fold}.txt"
  classes = sorted(f[:-len(suffix)] for f in os.listdir(split_dir) if f.endswith(suffix))
  wanted = "1" if split == "train" else "2"
  videos = []
  for label, cls in enumerate(classes):
    for line in _read_lines(os.path.join(split_dir, cls + suffix)):
      video, tag = line.split()[:2]
      if tag == wanted:
        videos.append((f"{cls}/{os.path.splitext(video)[0]}", label))
  return videos, classes


def list_frames(video_dir: str) -> list[str]:
  """Sorted frame file names of one video folder."""
  return sorted(f for f in os.listdir(video_dir) if f.lower().endswith(FRAME_EXTENSIONS))


def read_video(path: str) -> np.ndarray:
  """All frames of a video file as uint8 (T, H, W, 3), decoded with PyAV (an optional dependency)."""
  try:
    import av
  except ImportError as e:
    raise ImportError(f"reading {path} needs PyAV (pip install av), or extract its frames into a folder "
                      "(see jaxborders.data.video).") from e
  with av.open(path) as container:
    frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
  if not frames:
    raise ValueError(f"{path} has no video frames")
  return np.stack(frames)


def _locate(path: str) -> str:
  """``path`` if it is a frame folder, else the first ``path + ext`` video file that exists."""
  if os.path.isdir(path):
    return path
  for ext in VIDEO_EXTENSIONS:
    if os.path.isfile(path + ext):
      return path + ext
  raise FileNotFoundError(f"neither a frame folder nor a {'/'.join(VIDEO_EXTENSIONS)} file at {path}")


class ClipSource(Sequence):
  """Videos as records ``{'key', 'dir', 'label', 'error'}``; frames are read by ClipPreprocess (only the
  ``clip_length`` frames a clip needs). Items past the videos are evaluation padding (key -1)."""

  def __init__(self, root: str, videos: Sequence[tuple[str, int]], length: int | None = None):
    self.root = root
    self.videos = list(videos)
    self._length = len(self.videos) if length is None else int(length)

  def __len__(self) -> int:
    return self._length

  def __getitem__(self, i: int) -> dict[str, Any]:  # type: ignore[override]
    if not 0 <= i < self._length:
      raise IndexError(f"index {i} out of range for {self._length} videos")
    if i >= len(self.videos):
      return {"key": -1, "dir": None, "label": 0, "name": ""}
    relative, label = self.videos[i]
    return {"key": i, "dir": os.path.join(self.root, relative), "label": label, "name": relative}

  def __repr__(self) -> str:
    return f"ClipSource(root={self.root!r}, videos={len(self.videos)}, length={self._length})"


@dataclasses.dataclass(frozen=True)
class ClipPreprocess:
  """Video record -> clip example, ``fn(global_index, record)`` for grain (picklable).

  Attributes:
    train: random temporal crop + multiscale corner crop + flip; else central frames and central crop.
    clip_length: frames per clip.
    image_size: output side.
    mean, std: per-channel normalisation on [0, 1] pixels.
    seed: augmentation seed; epoch_length: records per epoch (for the per-record rng).
    skip_corrupt: mask and count unreadable videos instead of raising.
  """

  train: bool
  clip_length: int
  image_size: int
  mean: tuple[float, ...]
  std: tuple[float, ...]
  seed: int
  epoch_length: int
  skip_corrupt: bool = False

  def _read_clip(self, record: dict[str, Any], rng: np.random.Generator | None) -> np.ndarray:
    path = _locate(record["dir"])
    if not os.path.isdir(path):
      video = read_video(path)
      return video[T.temporal_crop(len(video), self.clip_length, rng)]
    frames = list_frames(path)
    indices = T.temporal_crop(len(frames), self.clip_length, rng)
    clip = []
    for i in indices:
      with Image.open(os.path.join(path, frames[i])) as pil:
        clip.append(np.asarray(pil.convert("RGB")))
    if len({f.shape for f in clip}) != 1:
      raise ValueError(f"frames of different sizes: {sorted({f.shape for f in clip})}")
    return np.stack(clip)

  def __call__(self, global_index: int, record: dict[str, Any]) -> dict[str, np.ndarray]:
    size, length = self.image_size, self.clip_length
    clip = None
    corrupt = False
    if record["dir"] is not None:
      epoch, index = divmod(int(global_index), self.epoch_length)
      rng = T.record_rng(self.seed, epoch, index)
      try:
        clip = self._read_clip(record, rng if self.train else None)
      except Exception as e:  # noqa: BLE001  (unreadable folder or frame: report it with the video's name)
        if not self.skip_corrupt:
          raise CorruptRecordError(f"video {record['key']} ({record['name']}, {record['dir']}) could not be read "
                                   f"({type(e).__name__}: {e}). Pass skip_corrupt=True to skip such videos.") from e
        corrupt = True
    if clip is None:
      out = np.zeros((length, size, size, 3), np.float32)
    else:
      if self.train:
        clip = T.multiscale_corner_crop(clip, size, rng)
      else:
        clip = np.stack([T.center_crop(T.resize_shorter(f, size), size) for f in clip])
      out = T.normalize(clip, self.mean, self.std)
    return {"image": out, "label": np.int32(record["label"]), "mask": np.float32(clip is not None),
            "record_key": np.int64(record["key"]), "corrupt": np.int32(corrupt)}


def make_video_pipeline(dataset: VideoDatasetName, root: str, split_dir: str, split: Literal["train", "test"], *,
                        batch_size: int, seed: int = 0, train: bool | None = None, fold: int = 1,
                        clip_length: int = 16, image_size: int = 112, num_epochs: int | None = None,
                        shard_index: int | None = None, shard_count: int | None = None, worker_count: int = 0,
                        worker_buffer_size: int = 2, read_threads: int = 2, prefetch_batches: int = 2,
                        skip_corrupt: bool = False, start_step: int = 0,
                        log_every: int = 100, log_fn: Callable[[int, dict[str, float]], None] | None = None,
                        mean: Sequence[float] = T.IMAGENET_MEAN, std: Sequence[float] = T.IMAGENET_STD) -> Pipeline:
  """A deterministic, sharded, resumable pipeline of UCF101 / HMDB51 clips from frame folders.

  Args:
    dataset: ``'ucf101'`` or ``'hmdb51'``.
    root: the frame folder (``root/<class>/<video>/frame_*.jpg``).
    split_dir: the official split files' folder (see ``read_split``).
    split: ``'train'`` or ``'test'``; fold: 1, 2 or 3.
    batch_size: clips per batch on this process.
    seed: shuffling and augmentation seed.
    train: augment and shuffle (default: ``split == 'train'``).
    clip_length, image_size: clip shape (16 x 112 x 112 in the paper).
    num_epochs, shard_index, shard_count, worker_count, worker_buffer_size: as ``tfds_source.make_pipeline``.
    read_threads, prefetch_batches, skip_corrupt, start_step, log_every, log_fn: as ``tfds_source.make_pipeline``.
    mean, std: normalisation (ImageNet statistics by default).

  Returns:
    A Pipeline of ``{'image': (B, T, S, S, 3), 'label', 'mask', 'record_key', 'corrupt'}`` batches.
  """
  if not os.path.isdir(root):
    raise FileNotFoundError(f"root={root!r} does not exist. Extract the frames of every video into "
                            "root/<class>/<video>/frame_%05d.jpg, e.g. with: ffmpeg -i <video>.avi -vf scale=-2:128 "
                            "-q:v 2 root/<class>/<video>/frame_%05d.jpg")
  train = split == "train" if train is None else train
  videos, classes = read_split(dataset, split_dir, split, fold)
  shard_index, shard_count = process_shard(shard_index, shard_count)
  length = None if train else eval_length(len(videos), batch_size, shard_count)
  source = ClipSource(root, videos, length)
  preprocess = ClipPreprocess(train, clip_length, image_size, tuple(mean), tuple(std), seed, len(source),
                              skip_corrupt)
  return build_pipeline(source, preprocess, batch_size=batch_size, seed=seed, train=train,
                        num_epochs=num_epochs if train else (num_epochs or 1), shard_index=shard_index,
                        shard_count=shard_count, worker_count=worker_count, worker_buffer_size=worker_buffer_size,
                        read_threads=read_threads, prefetch_batches=prefetch_batches,
                        start_step=start_step, log_every=log_every, log_fn=log_fn,
                        description=f"{dataset} {split} fold {fold}")


# --- Trainer data source (train/README.md): ``data.source = 'video'``. ---

DEFAULTS: dict[str, Any] = dict(
    dataset="ucf101",  # 'ucf101' or 'hmdb51'
    root="",  # frame folder: root/<class>/<video>/frame_00001.jpg
    split_dir="",  # official split files (ucfTrainTestlist / testTrainMulti_7030_splits)
    fold=1,  # official split 1, 2 or 3
    clip_length=16,  # frames per clip (the paper: 16)
    image_size=112,  # clip side (the paper: 112)
    worker_count=0,  # grain worker processes per host
    skip_corrupt=False,  # mask and count unreadable videos instead of failing
    log_every=100,  # throughput log period in steps
)
SPLITS = ("train", "val")  # 'val' is the official test list (UCF101 / HMDB51 have no separate validation set)


def load(data_config: Any, split: str, seed: int) -> Any:
  """The trainer's entry point: a ``jaxborders.data.stream.Stream`` of clips (``image`` (B, T, S, S, 3))."""
  import functools

  if split not in SPLITS:
    raise ValueError(f"split={split!r} is not supported; accepted values: {', '.join(map(repr, SPLITS))}.")
  official = "train" if split == "train" else "test"
  make = functools.partial(make_video_pipeline, data_config.dataset, data_config.root, data_config.split_dir,
                           official, fold=int(data_config.fold), clip_length=int(data_config.clip_length),
                           image_size=int(data_config.image_size), worker_count=int(data_config.worker_count),
                           skip_corrupt=bool(data_config.skip_corrupt), log_every=int(data_config.log_every))
  try:
    if not os.path.isdir(data_config.root):
      make(batch_size=1, shard_index=0, shard_count=1)  # raises the missing-root message
    videos, _ = read_split(data_config.dataset, data_config.split_dir, official, int(data_config.fold))
  except FileNotFoundError as e:
    raise DataMissingError(str(e)) from e
  size = int(data_config.image_size)
  return stream_from_pipelines(make, split, seed, len(videos), (int(data_config.clip_length), size, size, 3))


__all__ = ["DEFAULTS", "SPLITS", "load", "VIDEO_DATASETS", "read_split", "list_frames", "read_video", "ClipSource",
           "ClipPreprocess", "make_video_pipeline"]
