"""``notebooks/quickstart.ipynb`` executes top to bottom (quick setting: ``JAXBORDERS_QUICK=1``) via nbclient."""

from __future__ import annotations

import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "notebooks", "quickstart.ipynb")


def test_quickstart_notebook_runs(tmp_path, monkeypatch):
  nbformat = pytest.importorskip("nbformat")
  nbclient = pytest.importorskip("nbclient")
  monkeypatch.setenv("JAXBORDERS_QUICK", "1")
  monkeypatch.setenv("JAXBORDERS_WORKDIR", str(tmp_path / "work"))
  monkeypatch.setenv("JAX_PLATFORMS", "cpu")
  monkeypatch.setenv("MPLBACKEND", "Agg")
  monkeypatch.setenv("PYTHONPATH", ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
  nb = nbformat.read(NOTEBOOK, as_version=4)
  client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": ROOT}})
  client.execute()  # raises CellExecutionError (with the cell and traceback) if any cell fails
  outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
  assert "quick mode" in outputs and "circular conv equivariant: True" in outputs
  assert "patch location, same conv" in outputs
  assert "consistency" in outputs and "Diagonal accuracy" in outputs
  runs = json.loads((tmp_path / "work" / "shift_study" / "eval.json").read_text())["runs"]
  assert [r["variant"] for r in runs] == ["S", "F"]
  # Quick mode shows the effect: S-Conv reads the patch's corner in some seed, F-Conv is exactly at chance.
  toy = json.loads((tmp_path / "work" / "patch_toy" / "summary.json").read_text())["runs"]
  by_mode = {m: [r["metrics"]["test/accuracy"] for r in toy if r["overrides"]["model.conv_mode"] == m]
             for m in ("same", "full")}
  assert max(by_mode["same"]) == 1.0 and by_mode["full"] == [0.5] * len(by_mode["full"]), by_mode
