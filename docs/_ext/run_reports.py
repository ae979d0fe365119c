"""Sphinx extension: ``run-report`` blocks include a report file that a run of the project wrote.

A page writes::

    ```{run-report} table1.md
    :command: python -m train.main --config configs/redgreen_table1.py --workdir runs/table1
    ```

If ``docs/results/table1.md`` exists (copied from the run's workdir, with the figures it links), the block is
replaced by that file; otherwise by a note that gives the command and the copy step. So the page never shows a
number that no run printed, and it shows every result that a run has stored.
"""

from __future__ import annotations

import os
import re

BLOCK = re.compile(r"^```\{run-report\} (?P<name>\S+)\n:command: (?P<command>.+?)\n```$", re.MULTILINE)


def _replacement(docs_dir: str, page_dir: str, match: re.Match) -> str:
  name, command = match["name"], match["command"].strip()
  path = os.path.join(docs_dir, "results", name)
  rel = os.path.relpath(path, page_dir)
  if os.path.exists(path):
    return f"Written by `{command}` (copied from its workdir to `docs/results/{name}`):\n\n```{{include}} {rel}\n```"
  return (f":::{{note}}\nNo run of this experiment is stored in the repository yet. Produce it with\n"
          f"`{command}`, then copy the report `{name}` (and the figures it links) from the workdir into "
          f"`docs/results/` and rebuild: this block then shows it.\n:::")


def _on_source_read(app, docname: str, source: list[str]) -> None:
  docs_dir = app.srcdir
  page_dir = os.path.dirname(os.path.join(docs_dir, docname))
  source[0] = BLOCK.sub(lambda m: _replacement(str(docs_dir), page_dir, m), source[0])


def setup(app):
  app.connect("source-read", _on_source_read)
  return {"parallel_read_safe": True, "parallel_write_safe": True}
