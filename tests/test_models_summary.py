"""``python -m jaxborders.models.summary --all``: the model-zoo table of docs/models.md.

References are independent of the code under test: map sizes from the output-size formula by hand, FLOPs from
counting, pair by pair, the multiply-adds of the Red-Green net's four convolutions whose tap lands on the input
(XLA's count leaves out taps on zero padding, and adds the ReLUs, the pool and the head).
"""

from __future__ import annotations

import pytest

from jaxborders.models import summary


def _taps_inside(n_in: int, pad: int, stride: int, k: int = 3) -> int:
  """(output, tap) pairs of one dim whose tap lands on the input, not on padding (XLA counts only those)."""
  n_out = (n_in + 2 * pad - k) // stride + 1
  return sum(0 <= o * stride + t - pad < n_in for o in range(n_out) for t in range(k))


def _conv_flops(n: int, pad: int, channels=(3, 32, 32, 64, 64), strides=(1, 2, 2, 2), k=3) -> int:
  """2 × multiply-adds of the Red-Green net's four k×k convs on an n×n input, counted pair by pair."""
  total = 0
  for c_in, c_out, stride in zip(channels, channels[1:], strides):
    total += 2 * _taps_inside(n, pad, stride, k) ** 2 * c_in * c_out
    n = (n + 2 * pad - k) // stride + 1
  return total


@pytest.fixture(scope="module")
def rows():
  return summary.zoo_rows(["redgreen_net"], ["same", "full"], ["none", "aps"], size=32, frames=4, repeats=1,
                          log=lambda message: None)


def test_rows_params_maps_and_flops(rows):
  assert [(r["conv_mode"], r["antialias"]) for r in rows] == [("same", "none"), ("full", "none")]  # aps: refused
  same, full = rows
  assert same["params"] == full["params"] == 3 * 32 * 9 + 32 * 32 * 9 + 32 * 64 * 9 + 64 * 64 * 9 + 64 * 2 + 2
  # same: 32 -> 32 -> 16 -> 8 -> 4; full (pad 2): 32 -> 34 -> 18 -> 10 -> 6 (floor((n + 4 - 3) / 2) + 1).
  assert tuple(same["final_feature_map"]) == (4, 4) and tuple(full["final_feature_map"]) == (6, 6)
  for row, pad in ((same, 1), (full, 2)):
    convs = _conv_flops(32, pad)
    assert convs <= row["flops"] <= 1.05 * convs, (row["flops"], convs)
  assert same["ms"] > 0 and full["ms"] > 0


def test_markdown_table(rows):
  text = summary.zoo_markdown(rows, "python -m jaxborders.models.summary --all")
  lines = text.splitlines()
  assert "`python -m jaxborders.models.summary --all`" in lines[0]
  table = [line for line in lines if line.startswith("| redgreen_net")]
  assert len(table) == 2 and "| 1.00 |" in table[0]
  ratio = rows[1]["flops"] / rows[0]["flops"]
  assert f"| {ratio:.2f} |" in table[1] and "| 6x6 |" in table[1]
