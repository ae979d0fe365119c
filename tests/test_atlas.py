"""The border and shift atlas (``configs/atlas.py``, ``train/bundle.py``, ``train/reports/atlas.py``)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import scipy.stats

from configs import atlas
from train import bundle
from train import config as config_lib
from train.errors import ConfigError
from train.reports import atlas as atlas_report


def _grid(config):
  cells = set()
  for name in atlas_report.shift_parts(config):
    for point in config_lib.sweep_points(config.parts[name]):
      cells.add((point["model.antialias"], point["model.conv_mode"]))
  return cells


def test_full_config_covers_every_mode_and_method():
  config = atlas.get_config()
  bundle.validate_bundle(config)  # every part is a valid trainer config
  modes = {p["model.conv_mode"] for p in config_lib.sweep_points(config.parts.leakage)}
  assert modes == set(atlas.MODES) == {"valid", "same", "circular", "reflect", "replicate", "partial", "full"}
  want = {(m, b) for m in atlas.METHODS for b in atlas.BORDERS}
  # Only the two large blurs under reflect-padded 'same' are missing (the model refuses 32-px inputs there).
  assert want - _grid(config) == {("blur:binomial:5", "same"), ("maxblur", "same")}
  assert all(config.parts[n].parallel_runs == 0 for n in config.parts)


def test_bundle_rejects_a_bad_part_before_training(tmp_path):
  config = atlas.get_config("tiny")
  config.parts.shift.unlockeddata = 1  # not a schema key
  with pytest.raises(ConfigError, match="parts.shift"):
    bundle.train_bundle(config, str(tmp_path))
  assert not os.listdir(tmp_path)
  with pytest.raises(ValueError, match="tiny"):
    atlas.get_config("huge")


def test_kendall_matches_scipy():
  rng = np.random.default_rng(0)
  a, b = rng.permutation(9).astype(float), rng.permutation(9).astype(float)
  assert atlas_report._kendall(list(a), list(b)) == pytest.approx(scipy.stats.kendalltau(a, b).statistic)


def _row(method, border, crop, circ, sub=float("nan")):
  return {"method": method, "border": border, "consistency": crop, "circular_consistency": circ,
          "subpixel_consistency": sub}


def test_crop_vs_circular_statement_is_computed_from_the_rows():
  rows = [_row("none", "circular", 80.0, 70.0, 60.0), _row("aps", "circular", 85.0, 100.0, 75.0),
          _row("blur:binomial:3", "circular", 90.0, 95.0, 90.0)]
  text, gaps = atlas_report.crop_vs_circular(rows)
  # crop ranks Bin-3 > APS > strided, circular APS > Bin-3 > strided: one discordant pair of three, tau = 1/3.
  assert text.startswith("**circular**: crop shifts rank BlurPool Bin-3 90.0, APS 85.0, strided 80.0 first")
  assert "circular shifts rank APS 100.0, BlurPool Bin-3 95.0, strided 70.0" in text
  assert "Kendall τ between the two rankings 0.33" in text and "a different best method" in text
  assert "100% circular consistency: APS; under crop shifts the same nets reach 85.0% at worst (APS)" in text
  assert "Under sub-pixel shifts the best is BlurPool Bin-3 (90.0%)" in text
  assert gaps == ("Circular consistency exceeds crop consistency for 2 of 3 method × border combinations; the largest "
                  "gaps (circular vs crop): APS × circular (100.0 vs 85.0), BlurPool Bin-3 × circular (95.0 vs 90.0), "
                  "strided × circular (70.0 vs 80.0).")
  same = atlas_report.crop_vs_circular([_row("none", "same", 80.0, 70.0), _row("aps", "same", 85.0, 90.0)])
  assert "the same best method" in same[0] and "100% circular" not in same[0]


def _fabricated_bundle(workdir):
  """The parts' outputs the report reads, made by hand: leakage summaries + random-init params, shift eval.json."""
  import flax.serialization
  import jax
  from jaxborders.models import get_model
  config = atlas.get_config("tiny")
  config.probe.steps, config.probe.num_images, config.probe.layers = 5, 4, ("relu4",)
  leak_runs = []
  for mode, (sim, dis) in (("same", (1.0, 0.0)), ("full", (0.9, 0.88))):
    run_dir = workdir / "leakage" / f"conv_mode={mode}" / "seed_0"
    run_dir.mkdir(parents=True)
    params = get_model("redgreen_net", conv_mode=mode).init(jax.random.key(0), np.zeros((1, 32, 32, 3)))["params"]
    (run_dir / "params.msgpack").write_bytes(flax.serialization.msgpack_serialize(jax.tree.map(np.asarray, params)))
    leak_runs.append({"overrides": {"model.conv_mode": mode}, "seed": 0, "wall_s": 1.0, "epochs": 2,
                      "metrics": {"test_similar/accuracy": sim, "test_dissimilar/accuracy": dis}})
  evals, shift_runs = [], []
  for border, (acc, crop, circ, sub) in (("same", (60.0, 80.0, 75.0, 70.0)), ("circular", (62.0, 85.0, 100.0, 90.0))):
    overrides = {"model.conv_mode": border, "model.antialias": "none"}
    evals.append({"overrides": overrides, "seed": 0, "accuracy": acc, "consistency": crop, "circular_consistency": circ,
                  "subpixel_consistency": sub, "diagonal": {"offsets": [0, 1], "accuracy": [acc, acc - 2], "mean": acc - 1},
                  "subpixel_accuracy": {"shifts": [0.0, 0.5], "accuracy": [acc, acc - 5], "mean": acc - 2.5}})
    shift_runs.append({"overrides": overrides, "seed": 0, "train_wall_s": 3.0, "epoch_s": 0.5})
  (workdir / "shift").mkdir()
  (workdir / "shift" / "eval.json").write_text(json.dumps({"runs": evals}))
  (workdir / "atlas_flops.json").write_text(json.dumps({"none|same": 2e6, "none|circular": 2.5e6}))  # no compile
  return config, {"leakage": {"runs": leak_runs}, "shift": {"runs": shift_runs}}


def test_report_from_known_results(tmp_path):
  """The report on hand-made part results: every file, and the numbers where they belong."""
  config, parts = _fabricated_bundle(tmp_path)
  text = atlas_report.report_bundle(str(tmp_path), parts, config, wall_s=10.0, part_wall_s={"leakage": 4.0})
  for f in ("atlas.md", "atlas.json", "atlas_leakage.png", "atlas_position.png", "atlas_scatter.png",
            "atlas_shifts.png"):
    assert os.path.getsize(tmp_path / f) > 0, f
  assert text == (tmp_path / "atlas.md").read_text()
  assert "| same | 1 | 100.0 ± 0.0 | 0.0 ± 0.0 | 100.0 | 99.8 / 8.4 | 1.0 |" in text  # published: F-Conv Table 1
  assert "| full | 1 | 90.0 ± 0.0 | 88.0 ± 0.0 | 2.0 | 89.7 / 89.7 | 1.0 |" in text
  assert "read absolute position: same." in text
  assert ("| strided | same | 1 | 60.0 | 80.0 | 75.0 | 70.0 | 59.0 | 2.00 | 3 | acc 69.74, cons. 85.11 [BlurPool]; "
          "diag. 79.43, cons. 86.43 [F-Conv] |") in text
  assert "| strided | circular | 1 | 62.0 | 85.0 | 100.0 | 90.0 | 61.0 | 2.50 | 3 | – |" in text
  assert "| border mode | relu4 |" in text  # the probe's layers, trained / random per cell
  data = json.loads((tmp_path / "atlas.json").read_text())
  assert list(data["position"]["same"]["trained"]) == ["relu4"]
  assert data["shift"][1]["subpixel_accuracy"] == {"shifts": [0.0, 0.5], "accuracy": [62.0, 57.0]}


@pytest.mark.slow  # 1-2.5 min (a dozen compiles); the report's rows are checked on hand-made results above
def test_tiny_atlas_writes_every_report_file(tmp_path):
  config = atlas.get_config("tiny")
  result = bundle.train_bundle(config, str(tmp_path))
  assert set(result["parts"]) == {"leakage", "shift"}
  for f in ("atlas.md", "atlas.json", "atlas_leakage.png", "atlas_position.png", "atlas_scatter.png",
            "atlas_shifts.png", "bundle_summary.json", "leakage/table1.md", "shift/eval.json"):
    assert os.path.getsize(tmp_path / f) > 0, f
  text = (tmp_path / "atlas.md").read_text()
  for title in ("## Location leakage", "## Position information per layer", "## Shift robustness",
                "## Crop vs circular shifts"):
    assert title in text
  assert "| border mode | seeds | similar | dissimilar | gap |" in text
  assert "| same | 1 |" in text and "| full | 1 |" in text
  assert "| strided | same | 1 |" in text and "| strided | circular | 1 |" in text
  assert str(tmp_path / "atlas_scatter.png") in text  # figures by absolute path (docs/_ext/run_reports.py)
  data = json.loads((tmp_path / "atlas.json").read_text())
  assert set(data["leakage"]) == {"same", "full"}
  for mode in ("same", "full"):  # the probe ran on each mode's trained net and on a random one
    trained, random = data["position"][mode]["trained"], data["position"][mode]["random"]
    assert len(random) == 1 and list(trained) == list(random[0])
    for layer in trained.values():
      for measures in layer.values():
        assert -1.0 <= measures["spearman"] <= 1.0 and measures["mae"] >= 0.0
  shift = {(r["method"], r["border"]): r for r in data["shift"]}
  assert set(shift) == {("none", "same"), ("none", "circular")}
  for r in shift.values():
    assert 0.0 <= r["accuracy"] <= 100.0 and r["flops"] > 0 and r["train_s"] > 0
    assert len(r["diagonal"]["accuracy"]) == len(r["diagonal"]["offsets"]) == 5
