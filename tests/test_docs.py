"""The documentation site builds with zero warnings, and the examples on its pages pass.

Runs the README's docs command (``python -m sphinx -W --keep-going -b html docs <out>``) in a subprocess, then
Sphinx's doctest builder on the same parsed pages (shared doctrees, and ``JAXBORDERS_DOCS_KEEP_STUBS=1`` keeps the
API stubs the html build just wrote: nothing is read twice). Every output goes to pytest's tmp_path, and the html
build starts from fresh API stubs (``docs/conf.py`` deletes them), so nothing is cached between test runs.
The ``>>>`` examples inside docstrings are run by ``pytest --doctest-modules jaxborders``, not again here.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _sphinx(builder: str, tmp_path, keep_stubs: bool = False) -> subprocess.CompletedProcess:
  env = dict(os.environ, JAX_PLATFORMS="cpu", MPLBACKEND="Agg", PYTHONPATH=ROOT)
  env.pop("JAXBORDERS_DOCS_KEEP_STUBS", None)
  if keep_stubs:
    env["JAXBORDERS_DOCS_KEEP_STUBS"] = "1"
  command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", builder,
             "-d", str(tmp_path / "doctrees"), os.path.join(ROOT, "docs"), str(tmp_path / builder)]
  return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def test_docs_build_without_warnings_and_their_examples_pass(tmp_path):
  pytest.importorskip("sphinx")
  pytest.importorskip("myst_nb")
  html = _sphinx("html", tmp_path)
  assert html.returncode == 0, f"sphinx html build failed or warned:\n{html.stdout[-4000:]}\n{html.stderr[-8000:]}"
  for page in ("index", "getting_started", "borders", "antialiasing", "models", "experiments", "pytorch",
               "own_model", "api", "notebooks/quickstart"):
    assert (tmp_path / "html" / f"{page}.html").exists(), page
  # The API reference is generated from the package: every public module has a page.
  assert (tmp_path / "html" / "_autosummary" / "jaxborders.ops.padding.html").exists()
  # Figures are drawn at build time by the plot directive.
  assert list((tmp_path / "html").rglob("*.png")), "no figure was drawn"
  api_page = tmp_path / "doctrees" / "_autosummary" / "jaxborders.ops.padding.doctree"
  parsed_at = api_page.stat().st_mtime_ns
  doctest = _sphinx("doctest", tmp_path, keep_stubs=True)
  assert doctest.returncode == 0, f"doctests of the pages failed:\n{doctest.stdout[-8000:]}\n{doctest.stderr[-4000:]}"
  summary = (tmp_path / "doctest" / "output.txt").read_text()
  assert "0 failures in tests" in summary and " 0 tests" not in summary, summary[-2000:]
  assert api_page.stat().st_mtime_ns == parsed_at, "the doctest run parsed the API pages again"
