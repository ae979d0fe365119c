"""The CPU-scale shift study (``configs/shift_study.py``): a tiny version trains, evaluates and writes its report."""

from __future__ import annotations

import json
import os

import ml_collections

from configs import shift_study
from train import config as config_lib
from train import trainer


def test_config_is_the_study():
  config = shift_study.get_config()
  points = config_lib.sweep_points(config)
  assert len(points) == 6 and {p["model.conv_mode"] for p in points} == {"same", "full"}
  assert {p["model.antialias"] for p in points} == {"none", "blur:triangle:3", "aps"}
  assert (config.model.name, config.model.width, config.data.source, config.report) == (
      "resnet18", 8, "natural", "shift_study")


def test_tiny_study_writes_its_report(tmp_path, capsys):
  config = shift_study.get_config()
  # Tiny: the 4-conv Red-Green net instead of ResNet-18 (compiles in seconds), 2 classes, 2 steps.
  del config.model["width"]
  config.model.name = "redgreen_net"
  config.model.num_classes = 2
  config.sweep.model = ml_collections.ConfigDict({"conv_mode": ("same", "full"), "antialias": ("none",)})
  config.data.images = ("camera", "grass")
  config.data.image_size = 16
  config.data.eval_margin = 4
  config.data.source_size = 128
  config.data.train_per_class = 8
  config.data.val_per_class = 4
  config.data.test_per_class = 4
  config.batch_size = 8
  config.num_epochs = 2
  config.eval.every_n_epochs = 1
  config.eval.batch_size = 8
  config.checkpoint.every_n_epochs = 1
  trainer.train_and_evaluate(config, str(tmp_path))
  out = capsys.readouterr().out
  assert "Shift-robustness study" in out and "antialias=none,conv_mode=full" in out
  for f in ("shift_study.md", "shift_study.png", "eval.json", "eval.md", "diagonal_shift.png"):
    assert os.path.getsize(tmp_path / f) > 0, f
  text = (tmp_path / "shift_study.md").read_text()
  assert "| antialias=none,conv_mode=same | 1 |" in text and "offset (o, o)" in text
  assert "sub-pixel consistency" in text and "Fourier shift (s, s)" in text
  runs = json.loads((tmp_path / "eval.json").read_text())["runs"]
  assert [r["variant"] for r in runs] == ["S", "F"]
  assert all(len(r["diagonal"]["accuracy"]) == 5 for r in runs)
