"""Red-Green Table 1: a tiny sweep produces table1.md and the PNG; the full default run shows the paper's
pattern (slow)."""

import json
import os

import pytest

from configs import redgreen_table1
from train import trainer


def test_tiny_table1_sweep_writes_report(tmp_path, capsys):
  c = redgreen_table1.get_config()
  c.num_steps = 1
  c.seeds = (0,)
  c.sweep.model.conv_mode = ("valid", "full")  # two modes keep the test short (compilation dominates)
  c.data.train_size, c.data.val_size, c.data.test_size = 200, 100, 100
  c.eval.batch_size = 100
  c.parallel_runs = 1  # in-process (capsys sees the output); tests/test_train_parallel_runs.py covers the workers
  summary = trainer.train_and_evaluate(c, str(tmp_path))
  assert summary["num_runs"] == 2
  table = (tmp_path / "table1.md").read_text()
  for label in ("valid (V-Conv)", "full-zero (F-Conv)", "89.7 ± 0.5", "Where ours differ", "s/run"):
    assert label in table
  assert (tmp_path / "table1.png").stat().st_size > 1000
  assert os.path.exists(tmp_path / "conv_mode=full" / "seed_0" / "summary.json")
  assert "Red-Green, Table 1" in capsys.readouterr().out
  # Rerunning the same command skips the finished runs and rebuilds the same report.
  again = trainer.train_and_evaluate(c, str(tmp_path))
  assert "already finished" in capsys.readouterr().out
  assert [r["params_fingerprint"] for r in again["runs"]] == [r["params_fingerprint"] for r in summary["runs"]]


@pytest.mark.slow
def test_default_table1_shows_the_paper_pattern(tmp_path):
  """The full default run (3 seeds per mode, ~7 min on 2 cores): valid/same read position, circular/full do not."""
  trainer.train_and_evaluate(redgreen_table1.get_config(), str(tmp_path))
  with open(tmp_path / "summary.json") as f:
    groups = {g["overrides"]["model.conv_mode"]: g["metrics"] for g in json.load(f)["groups"]}
  acc = {m: (g["test_similar/accuracy"]["mean"], g["test_dissimilar/accuracy"]["mean"]) for m, g in groups.items()}
  for m in ("valid", "same"):
    assert acc[m][0] > 0.9 and acc[m][1] < 0.3, acc
  for m in ("circular", "full"):
    assert abs(acc[m][0] - acc[m][1]) < 0.05, acc
  assert acc["full"][0] > acc["circular"][0], acc
