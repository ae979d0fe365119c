"""Sphinx configuration of the jaxborders documentation.

Build (from the repository root; warnings are errors, as in CI)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Pages are MyST Markdown; the API reference is generated from the docstrings (autodoc + autosummary, recursive:
a new module or a new name in a module's ``__all__`` appears without editing the docs); figures are drawn by
matplotlib's ``plot`` directive while the site builds; the quickstart notebook is rendered from its stored
outputs, not executed.
"""

from __future__ import annotations

import os
import re
import shutil
import sys

DOCS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(DOCS)
sys.path.insert(0, ROOT)  # the checkout's jaxborders / train / configs, also without `pip install -e`
sys.path.insert(0, os.path.join(DOCS, "_ext"))
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# autosummary writes the API stubs here on every build; start empty so a removed module leaves no stale page.
# JAXBORDERS_DOCS_KEEP_STUBS=1 keeps them, for a second builder run right after a build on the same doctrees
# (tests/test_docs.py's doctest run): autosummary rewrites only the stubs whose text changed, so Sphinx reads no
# page again (deleting them would make it re-read, and re-import for autodoc, every API page).
if not os.environ.get("JAXBORDERS_DOCS_KEEP_STUBS"):
  shutil.rmtree(os.path.join(DOCS, "_autosummary"), ignore_errors=True)
os.environ.setdefault("MPLBACKEND", "Agg")

project = "jaxborders"
author = "the jaxborders authors"
copyright = "the jaxborders authors, Apache-2.0"  # noqa: A001 (Sphinx's name)

extensions = [
  "myst_nb",  # MyST Markdown pages + notebooks (includes myst_parser)
  "sphinx.ext.autodoc",
  "sphinx.ext.autosummary",
  "sphinx.ext.napoleon",
  "sphinx.ext.doctest",
  "sphinx.ext.mathjax",
  "sphinx.ext.viewcode",
  "matplotlib.sphinxext.plot_directive",
  "run_reports",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}  # .rst first: autosummary writes .rst stubs
exclude_patterns = ["_build", "results", "_generated", "**.ipynb_checkpoints"]  # included into pages, not pages
templates_path = ["_templates"]
# A bare type name in a signature (``Programs``) that two modules document, because one re-exports the other's
# class (train.trainer re-exports train.steps.Programs), is one object under two names: not worth a warning.
suppress_warnings = ["ref.python"]
smartquotes = False  # docstrings quote commands ("--config") in plain indented blocks: keep "--" as typed
html_theme = "furo"
html_title = "jaxborders"

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # the notebook trains two networks: render its stored outputs (tests/test_notebook.py runs it)

autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_typehints = "description"
autodoc_member_order = "bysource"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True  # "Attributes:" as fields: flax dataclass fields are documented once

# `>>>` examples inside docstrings are run by `pytest --doctest-modules jaxborders`; the doctest builder runs
# only the explicit {doctest} / {testcode} blocks of these pages.
doctest_test_doctest_blocks = ""
doctest_global_setup = "import jax, jax.numpy as jnp, numpy as np\nimport jaxborders as jb"

plot_include_source = True
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 110)]
plot_rcparams = {"figure.autolayout": True, "font.size": 9}

# Docstrings are written for `help()` and pytest as much as for Sphinx: `n*s`, `|w|` and `(*k, I, O)` are
# arithmetic there, not reST emphasis or substitutions. Escape those characters outside literals, roles, code
# and doctest blocks (after napoleon, priority 600) instead of rewriting every formula with backslashes.
_LITERAL = re.compile(r"(``.+?``|:[\w:]+:`[^`]*`|`[^`]*`_?)")
_EMPHASIS = re.compile(r"(?<![\w*\\])(\*\*?)(?=\S)[^*]*?(?<=\S)\1(?![\w*])")


def _escape_text(text: str) -> str:
  kept = [(m.start(), m.end()) for m in _EMPHASIS.finditer(text)]
  out = []
  for i, ch in enumerate(text):
    if ch in "*|" and not any(a <= i < b for a, b in kept) and (i == 0 or text[i - 1] != "\\"):
      out.append("\\" + ch)
    else:
      out.append(ch)
  return "".join(out)


def _escape_line(line: str) -> str:
  stripped = line.lstrip()
  if stripped.startswith(("|", "+", ">>>", "...")):  # line blocks / grid tables / doctest lines
    return line
  bullet = re.match(r"\s*[*-] ", line)
  head, body = (line[: bullet.end()], line[bullet.end():]) if bullet else ("", line)
  parts = _LITERAL.split(body)
  return head + "".join(p if i % 2 else _escape_text(p) for i, p in enumerate(parts))


def _escape_docstring(app, what, name, obj, options, lines: list[str]) -> None:
  literal_indent = None  # indentation of the paragraph that opened a literal (::) or doctest block
  in_doctest = False
  for i, line in enumerate(lines):
    indent = len(line) - len(line.lstrip())
    if not line.strip():
      in_doctest = False
      continue
    if literal_indent is not None:
      if indent > literal_indent:
        continue
      literal_indent = None
    if in_doctest or line.lstrip().startswith(">>>"):
      in_doctest = True
      continue
    lines[i] = _escape_line(line)
    if line.rstrip().endswith("::"):
      literal_indent = indent


def _python_domain():
  """Sphinx's Python domain, except that one class re-exported by several modules is not a duplicate.

  autodoc documents a re-exported class under each module's ``__all__`` with ``:canonical:`` pointing at its
  defining module (``jaxborders.nn.downsample.AntiAlias`` is also listed by ``jaxborders.nn``,
  ``jaxborders.models`` and ``jaxborders.models.common``). Sphinx registers every such canonical name as an alias
  and warns when two aliases of the same object meet before the definition itself; they describe one object.
  """
  from sphinx.domains.python import PythonDomain

  class ReexportingPythonDomain(PythonDomain):
    def note_object(self, name, objtype, node_id, aliased=False, location=None):
      other = self.objects.get(name)
      if aliased and other is not None and other.aliased:
        return  # the same canonical name from another re-exporting module
      super().note_object(name, objtype, node_id, aliased=aliased, location=location)

  return ReexportingPythonDomain


def setup(app):
  app.add_domain(_python_domain(), override=True)
  app.connect("autodoc-process-docstring", _escape_docstring, priority=600)
