"""The Red-Green benchmark's arithmetic and report on hand-made results (no training: the benchmark itself runs
for minutes to hours)."""

from __future__ import annotations

import pytest

from benchmarks import redgreen


def _side(runs):
  return redgreen.protocol_result(sum(r["wall_s"] for r in runs), runs, ["same"])


def test_gflops_per_core_is_flops_trained_over_wall_time_and_cores():
  flops = {"same": {"train_step": 2e9, "val_pass": 3e9}}  # an epoch: 10 steps + 1 validation pass = 23 GFLOP
  runs = [{"mode": "same", "seed": 0, "wall_s": 10.0, "epochs": 4, "similar": 1.0, "dissimilar": 0.0},
          {"mode": "same", "seed": 1, "wall_s": 30.0, "epochs": 6, "similar": 0.5, "dissimilar": 0.5}]
  ours, theirs = _side(runs), _side(runs)
  redgreen.add_gflops(ours, flops, cores_per_run=1)
  redgreen.add_gflops(theirs, flops, cores_per_run=2)
  assert ours["modes"]["same"]["gflops_per_core"] == pytest.approx(10 * 23 / 40)  # 10 epochs in 40 s on 1 core
  assert theirs["modes"]["same"]["gflops_per_core"] == pytest.approx(10 * 23 / 40 / 2)
  assert ours["modes"]["same"]["similar"] == pytest.approx(0.75)


def test_markdown_has_one_table_per_seed_count_with_the_speedup():
  flops = {"same": {"train_step": 2e9, "val_pass": 3e9}}
  blocks = []
  for seeds, ours_s, ref_s in ((1, 10.0, 35.0), (10, 80.0, 350.0)):
    ours = _side([{"mode": "same", "seed": 0, "wall_s": ours_s, "epochs": 5, "similar": 1.0, "dissimilar": 0.1}])
    ref = _side([{"mode": "same", "seed": 0, "wall_s": ref_s, "epochs": 5, "similar": 1.0, "dissimilar": 0.1}])
    redgreen.add_gflops(ours, flops, 1)
    redgreen.add_gflops(ref, flops, 2)
    blocks.append({"seeds": seeds, "ours": ours, "torch_reference": ref, "speedup_vs_reference": ref_s / ours_s})
  results = {"modes": ["same"], "epochs": 50, "protocols": blocks, "matmul_gflops_per_core": 23.0, "cpu_count": 2,
             "parallel_runs_label": "2 single-threaded runs at a time", "torch_threads": 2, "matmul_size": 1024}
  text = redgreen.markdown(results, ["reference"])
  assert "### 1 mode × 1 seed × ≤50 epochs" in text and "### 1 mode × 10 seeds × ≤50 epochs" in text
  assert "| same | 10.0 | 5.0 | 11.5 (50%) | 100.0 / 10.0 | 35.0 | 5.0 | 1.6 (7%) | 100.0 / 10.0 |" in text
  assert "ours 3.50× faster" in text and "ours 4.38× faster" in text
