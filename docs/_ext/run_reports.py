"""Sphinx extension: pages show the reports that runs of the project wrote, and every config's docstring.

``run-report`` blocks (one per experiment)::

    ```{run-report} table1.md
    :command: python -m train.main --config configs/redgreen_table1.py --workdir runs/table1
    ```

If ``docs/results/<name>`` exists (copied unchanged from the run's workdir, with the figures it names), the
block becomes that report; otherwise a note that gives the command and the copy step. So a page never shows a
number that no run printed, and it shows every result that a run has stored. A report names its figures by the
absolute path of the run's workdir; such a path becomes the figure's copy in ``docs/results/``, shown below the
report.

A ``config-docstrings`` block becomes one section per ``configs/*.py`` with its docstring (command, hardware,
published and measured results): a new config appears on the page without editing it.
"""

from __future__ import annotations

import glob
import os
import re

REPORT = re.compile(r"^```\{run-report\} (?P<name>\S+)\n:command: (?P<command>.+?)\n```$", re.MULTILINE)
CONFIGS = re.compile(r"^```\{config-docstrings\}\n```$", re.MULTILINE)
ABSOLUTE_FIGURE = re.compile(r"(?<![\w.])/\S*/(?P<file>[\w.-]+\.png)")


def _report(docs_dir: str, page_dir: str, match: re.Match) -> str:
  name, command = match["name"], match["command"].strip()
  path = os.path.join(docs_dir, "results", name)
  if not os.path.exists(path):
    return (f":::{{note}}\nNo run of this experiment is stored in the repository yet. Produce it with\n"
            f"`{command}`, then copy the report `{name}` (and the figures it names) from the workdir into "
            f"`docs/results/` and rebuild: this block then shows it.\n:::")
  with open(path) as f:
    text = f.read()
  figures = [m["file"] for m in ABSOLUTE_FIGURE.finditer(text)]
  text = ABSOLUTE_FIGURE.sub(lambda m: f"`{m['file']}` (below)", text)
  text = re.sub(r"^#+ (.+)$", r"**\1**", text, flags=re.MULTILINE)  # a report's titles: not page sections
  rel = os.path.relpath(os.path.join(docs_dir, "results"), page_dir)
  images = "".join(f"\n\n```{{image}} {rel}/{fig}\n:width: 100%\n```" for fig in figures
                   if os.path.exists(os.path.join(docs_dir, "results", fig)))
  return f"Written by `{command}` (the report, copied unchanged to `docs/results/{name}`):\n\n{text}{images}\n"


def _configs(root: str) -> str:
  sections = []
  for path in sorted(glob.glob(os.path.join(root, "configs", "*.py"))):
    name = os.path.splitext(os.path.basename(path))[0]
    if name.startswith("_"):
      continue
    sections.append(f"### `configs/{name}.py`\n\n```{{eval-rst}}\n.. automodule:: configs.{name}\n   :no-members:\n```\n")
  return "\n".join(sections)


def _on_source_read(app, docname: str, source: list[str]) -> None:
  docs_dir = str(app.srcdir)
  page_dir = os.path.dirname(os.path.join(docs_dir, docname))
  text = REPORT.sub(lambda m: _report(docs_dir, page_dir, m), source[0])
  source[0] = CONFIGS.sub(lambda m: _configs(os.path.dirname(docs_dir)), text)


def setup(app):
  app.connect("source-read", _on_source_read)
  return {"parallel_read_safe": True, "parallel_write_safe": True}
