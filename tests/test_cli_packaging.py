"""Layering (the library never imports its trainer; no import cycle in train/), the wheel, and the command line:
``--help`` exits 0, a progress bar on a terminal and none in logs, step-based runs reported in steps."""

import ast
import fcntl
import glob
import json
import os
import pty
import select
import shutil
import struct
import subprocess
import sys
import termios
import textwrap
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _imported_modules(path):
  """Every module a file imports, at any depth (lazy imports inside functions count too)."""
  tree = ast.parse(open(path).read())
  out = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      out.update(a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      out.add(node.module)
      out.update(f"{node.module}.{a.name}" for a in node.names)
  return out


def _module_name(path):
  rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
  return rel[:-len(".__init__")] if rel.endswith(".__init__") else rel


def test_library_never_imports_the_trainer_or_configs():
  offenders = {}
  for path in glob.glob(os.path.join(ROOT, "jaxborders", "**", "*.py"), recursive=True):
    bad = sorted(m for m in _imported_modules(path) if m.split(".")[0] in ("train", "configs"))
    if bad:
      offenders[os.path.relpath(path, ROOT)] = bad
  assert not offenders, f"jaxborders imports the trainer: {offenders}"


def _find_cycle(graph):
  """A cycle of ``graph`` (dict node -> set of nodes) as a list, or None (depth-first search)."""
  state, stack = {}, []

  def visit(node):
    state[node] = "open"
    stack.append(node)
    for nxt in sorted(graph.get(node, ())):
      if state.get(nxt) == "open":
        return stack[stack.index(nxt):] + [nxt]
      if nxt not in state and (cycle := visit(nxt)):
        return cycle
    state[node] = "done"
    stack.pop()
    return None

  for node in sorted(graph):
    if node not in state and (cycle := visit(node)):
      return cycle
  return None


def test_find_cycle_finds_one():
  assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
  assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_trainer_has_no_import_cycle():
  paths = glob.glob(os.path.join(ROOT, "train", "**", "*.py"), recursive=True)
  names = {_module_name(p) for p in paths}
  graph = {}
  for path in paths:
    me = _module_name(path)
    graph[me] = {m for m in _imported_modules(path) if m in names and m != me and m != "train"}
  assert "train.run" in graph["train.parallel"]  # the graph sees lazy imports
  assert _find_cycle(graph) is None, f"import cycle in train/: {' -> '.join(_find_cycle(graph))}"


def test_wheel_holds_only_the_library(tmp_path):
  src = tmp_path / "src"
  src.mkdir()
  for name in ("pyproject.toml", "README.md"):
    shutil.copy(os.path.join(ROOT, name), src / name)
  shutil.copytree(os.path.join(ROOT, "jaxborders"), src / "jaxborders",
                  ignore=shutil.ignore_patterns("__pycache__"))
  for extra in ("train", "configs"):  # present in the source tree, as in a checkout: must stay out of the wheel
    shutil.copytree(os.path.join(ROOT, extra), src / extra, ignore=shutil.ignore_patterns("__pycache__"))
  proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                         str(tmp_path / "out"), str(src)], capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  (wheel,) = glob.glob(str(tmp_path / "out" / "*.whl"))
  names = zipfile.ZipFile(wheel).namelist()
  top = {n.split("/")[0] for n in names}
  assert {t for t in top if not t.endswith(".dist-info")} == {"jaxborders"}, top
  assert "jaxborders/py.typed" in names and "jaxborders/ops/__init__.py" in names


@pytest.mark.parametrize("module", ["train.main", "train.eval"])
def test_help_exits_0_and_lists_configs_and_schema(module):
  proc = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True,
                        timeout=120)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "configs/redgreen_table1.py" in proc.stdout and "--workdir" in proc.stdout
  assert "configs/default.py is the schema" in proc.stdout


CONFIG = textwrap.dedent('''
from train.synthetic import tiny_config

def get_config():
  c = tiny_config()
  c.num_epochs = 3
  c.debug.step_sleep_s = 0.3  # each epoch outlasts tqdm's redraw interval
  return c
''')


def _cmd(tmp_path, *extra):
  config = tmp_path / "tiny.py"
  config.write_text(CONFIG)
  return [sys.executable, "-m", "train.main", "--config", str(config), "--workdir", str(tmp_path / "run"), *extra]


def _env():
  return dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT, JAXBORDERS_XLA_CACHE="", COLUMNS="120")


def test_progress_bar_on_a_terminal(tmp_path):
  leader, follower = pty.openpty()
  fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a real terminal has a size
  proc = subprocess.Popen(_cmd(tmp_path), cwd=ROOT, env=_env(), stdin=subprocess.DEVNULL, stdout=follower,
                          stderr=follower)
  os.close(follower)
  out = b""
  while True:
    ready, _, _ = select.select([leader], [], [], 1.0)
    if ready:
      try:
        chunk = os.read(leader, 65536)
      except OSError:  # the terminal closed: the process ended
        break
      if not chunk:
        break
      out += chunk
    elif proc.poll() is not None:
      break
  proc.wait(timeout=300)
  os.close(leader)
  text = out.decode(errors="replace")
  assert proc.returncode == 0, text[-3000:]
  assert "\r" in text and "/6 steps [" in text, text[-3000:]  # tqdm redraws one line: 2 steps x 3 epochs
  assert "img/s, ETA" in text, text[-3000:]
  assert "epoch 3/3 step 6" in text


def test_no_progress_bar_in_logs_and_steps_counted_in_steps(tmp_path):
  proc = subprocess.run(_cmd(tmp_path, "--config.num_steps=2", "--config.debug.step_sleep_s=0"), cwd=ROOT,
                        env=_env(), capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "\r" not in proc.stdout + proc.stderr and "steps [" not in proc.stdout + proc.stderr
  assert "step 2/2 loss" in proc.stdout and "epoch 1/1" not in proc.stdout, proc.stdout
  assert "INFO" not in proc.stdout + proc.stderr
  with open(tmp_path / "run" / "summary.json") as f:
    summary = json.load(f)
  assert summary["epochs"] == 1 and summary["images_per_s"] > 0  # a 1-epoch run still measures its throughput
