"""Every citation in the repository can be followed from a clone of it.

Scans the text a reader meets — docstrings and comments of every Python file, the configs, the READMEs, the docs
pages and the notebooks — for (1) a "SPEC" section citation or any "<file> §n" citation of a file that is not in
the repository, (2) a file path into the repository's own folders (``jaxborders/….py``, ``docs/….md``, …; a
path with a file suffix or a trailing slash) or an upper-case document name (``README.md``, ``NOTES.md``) that
does not exist, (3) an absolute path of a machine (``/work/…``, ``/home/…``). Paper sections ("F-Conv paper §3",
"BlurPool paper §4.2"), files of other public repositories (CWB ``resnet_fconv.py``), files that runs write
(``table1.md``, ``summary.md``, anything under a .gitignored folder), metric names (``train/loss``) and placeholders (``configs/<name>.py``,
``configs/X.py``) pass. The reference for (2) is the file system itself.
"""

from __future__ import annotations

import functools
import glob
import json
import os
import re
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THIS = os.path.abspath(__file__)
SCANNED_DIRS = ("jaxborders", "train", "configs", "benchmarks", "tests", "docs", "notebooks")
SCANNED_SUFFIXES = (".py", ".md", ".ipynb", ".toml", ".rst")
SKIPPED_PARTS = {".git", ".venv", "_build", "_autosummary", "__pycache__", ".ipynb_checkpoints", "results"}

SPEC_SECTION = re.compile("SPEC" + r"(\.md)?\s*§")  # split so that this file does not match itself
FILE_SECTION = re.compile(r"(?P<file>[\w./-]+\.(?:md|txt|rst|py|pdf))`{0,2}\s*§\s*\d")
REPO_PATH = re.compile(r"(?<![\w./:-])(?P<path>(?:%s)/(?:[\w./*<>{}-]*\.(?:py|md|ipynb|toml|json|txt|rst)\b|[\w./-]*/(?![\w.])))"
                       % "|".join(SCANNED_DIRS))
DOCUMENT = re.compile(r"(?<![\w./:<>-])(?P<path>[A-Z][A-Z0-9_]*\.md)\b")  # README.md, SPEC.md, NOTES.md
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:work|home|Users|root)/[\w./-]+")


def _scanned_files() -> list[str]:
  files = [os.path.join(ROOT, name) for name in ("README.md", "pyproject.toml") if os.path.exists(os.path.join(ROOT, name))]
  for top in SCANNED_DIRS:
    for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, top)):
      dirnames[:] = [d for d in dirnames if d not in SKIPPED_PARTS]
      files += [os.path.join(dirpath, f) for f in filenames if f.endswith(SCANNED_SUFFIXES)]
  return sorted(f for f in files if os.path.abspath(f) != THIS)


def _text(path: str) -> str:
  with open(path, encoding="utf-8") as f:
    text = f.read()
  if path.endswith(".ipynb"):  # cell sources only: outputs are what a run printed
    return "\n".join("".join(cell.get("source", "")) for cell in json.loads(text)["cells"])
  return text


def _exists(path: str) -> bool:
  """A cited repository path exists; globs and placeholders (``configs/<name>.py``, ``configs/*.py``) must match."""
  path = path.rstrip(".,:;")
  if re.search(r"/[A-Z]+\.\w+$", path):
    return True
  if re.search(r"[*<>{}]", path):
    pattern = re.sub(r"<[^>]*>|\{[^}]*\}", "*", path)
    return bool(glob.glob(os.path.join(ROOT, pattern)))
  return os.path.exists(os.path.join(ROOT, path)) or _ignored_by_git(path)


@functools.lru_cache(maxsize=None)
def _ignored_by_git(path: str) -> bool:
  """Outputs (``benchmarks/results/…``, ``docs/_build/…``) live where .gitignore keeps them out of the repository."""
  try:
    return subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT, capture_output=True).returncode == 0
  except OSError:  # no git: such a citation is reported
    return False


def _md_exists(path: str) -> bool:
  if os.path.exists(os.path.join(ROOT, path)):
    return True
  name = os.path.basename(path)
  return any(name in files for _, _, files in os.walk(ROOT))


def find_broken_citations(path: str, text: str) -> list[str]:
  """``'<file>:<line>: <problem>'`` for every citation in ``text`` that a reader of the repository cannot follow."""
  problems = []
  for number, line in enumerate(text.splitlines(), 1):
    where = f"{os.path.relpath(path, ROOT)}:{number}"
    if SPEC_SECTION.search(line):
      problems.append(f"{where}: cites a section of a file outside the repository: {line.strip()[:100]}")
    for m in FILE_SECTION.finditer(line):
      if not _md_exists(m["file"]):
        problems.append(f"{where}: cites a section of {m['file']!r}, which is not in the repository")
    for m in REPO_PATH.finditer(line):
      if not _exists(m["path"]):
        problems.append(f"{where}: cites {m['path']!r}, which is not in the repository")
    for m in DOCUMENT.finditer(line):
      if not _md_exists(m["path"]):
        problems.append(f"{where}: cites {m['path']!r}, which is not in the repository")
    for m in MACHINE_PATH.finditer(line):
      problems.append(f"{where}: cites a path of one machine, {m.group(0)!r}")
  return problems


def test_every_citation_can_be_followed():
  files = _scanned_files()
  assert len(files) > 50, files  # the scan really covers the repository
  problems = [p for f in files for p in find_broken_citations(f, _text(f))]
  assert not problems, "citations a reader cannot follow:\n" + "\n".join(problems)


@pytest.mark.parametrize("line, broken", [
    ("All border handling (F-Conv paper §3; " + "SPEC §1).", True),
    ("see " + "SPEC.md §5 for the protocol", True),
    ("the facts are in notes.md §2", True),
    ("the facts are in README.md §2", False),
    ("(F-Conv paper §3; docs/borders.md)", False),
    ("(BlurPool paper §4.2, docs/experiments.md)", False),
    ("padding table of docs/no_such_page.md", True),
    ("``jaxborders/ops/padding.py``", False),
    ("``jaxborders/ops/no_such_module.py``", True),
    ("one file per experiment: configs/<name>.py", False),
    ("CWB ``resnet_fconv.py`` (its authors' repository)", False),
    ("written from /work/shared/notes", True),
    ("writes ``table1.md`` and ``summary.md`` into the workdir", False),
    ("logs train/loss and train/accuracy", False),
    ("python -m train.eval --config configs/X.py --workdir DIR", False),
    ("the notes in NOTES.md", True),
    ("see docs/results/", False),
    ("see docs/no_such_folder/", True),
    ("python -m train.main --config configs/patch_toy.py --workdir /tmp/patch_toy", False),
])
def test_the_checker_flags_exactly_the_broken_citations(line, broken):
  assert bool(find_broken_citations(os.path.join(ROOT, "x.py"), line)) == broken
