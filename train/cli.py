"""Command-line plumbing shared by ``train.main`` and ``train.eval``: ``--help`` that lists the configs and exits 0,
exit codes and one-line failures, flag parsing, and no INFO lines from the libraries underneath.

absl prints a flag error with a usage hint and exits 1, and ``config_flags`` turns a broken config file into a
long traceback; here every such mistake becomes one line naming the flag, key or file, and exit code 2. orbax logs
every checkpoint at INFO through absl: those lines are silenced.
"""

from __future__ import annotations

import ast
import importlib.util
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from absl import flags

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
HELP_FLAGS = ("-h", "--help", "--helpshort", "-?")


def list_configs(config_dir: str = CONFIG_DIR) -> list[tuple[str, str]]:
  """``(path, first docstring line)`` of every config file, read without running it."""
  out = []
  for name in sorted(os.listdir(config_dir)) if os.path.isdir(config_dir) else []:
    if not name.endswith(".py") or name.startswith("_"):
      continue
    path = os.path.join(config_dir, name)
    with open(path) as f:
      doc = ast.get_docstring(ast.parse(f.read())) or ""
    first = doc.splitlines()[0] if doc else ""
    out.append((os.path.relpath(path), first))
  return out


def help_text(doc: str, flag_lines: str) -> str:
  """The usage text: the module's docstring, its flags, the configs and where the config schema is."""
  width = max((len(p) for p, _ in list_configs()), default=0)
  configs = "\n".join(f"  {p:<{width}}  {d}" for p, d in list_configs())
  return (f"{doc.strip()}\n\nflags:\n{flag_lines.rstrip()}\n\nconfigs:\n{configs}\n\n"
          "Config keys: configs/default.py is the schema (every key with its default and a comment); "
          "train/README.md explains it. Override any key with --config.KEY=VALUE, e.g. --config.num_epochs=2.\n")


def exit_on_help(argv: list[str], doc: str) -> None:
  """Prints ``help_text`` and exits 0 when ``argv`` asks for help (absl would exit 1)."""
  if not any(a in HELP_FLAGS for a in argv[1:]):
    return
  from absl import flags
  flag_lines = flags.FLAGS.module_help(sys.argv[0])
  print(help_text(doc, "\n".join(line for line in flag_lines.splitlines() if not line.endswith(".py:"))))
  sys.exit(0)


def quiet_library_logs() -> None:
  """Warnings and errors only from absl, orbax and jax (their INFO lines are not about the user's run)."""
  from absl import logging as absl_logging
  absl_logging.set_verbosity(absl_logging.WARNING)
  for name in ("absl", "orbax", "jax"):
    logging.getLogger(name).setLevel(logging.WARNING)


EXIT_CODES = {"done": 0, "bug": 1, "config": 2, "nonfinite": 3, "data": 4, "storage": 5, "distributed": 6, "worker": 7}


def fail(code: str, message: str) -> NoReturn:
  """Prints one line and exits with ``EXIT_CODES[code]`` (``os._exit`` after a storage or peer fault: orbax's and
  JAX's exit hooks would wait minutes on a dead peer or an unwritable directory)."""
  line = " ".join(str(message).split())
  print(f"{'error' if code != 'done' else 'preempted'}: {line}", file=sys.stderr, flush=True)
  if code in ("storage", "distributed"):
    sys.stdout.flush()
    os._exit(EXIT_CODES[code])
  sys.exit(EXIT_CODES[code])


def config_path(argv: list[str]) -> str | None:
  """The ``--config`` file path of a command line (without a ``:arg`` suffix), or ``None``."""
  for i, arg in enumerate(argv):
    if arg == "--config" and i + 1 < len(argv):
      return argv[i + 1].split(":")[0]
    if arg.startswith("--config="):
      return arg.split("=", 1)[1].split(":")[0]
  return None


def load_config_module(path: str) -> Any:
  """Imports a config file; every way it can fail is a ValueError naming the file (one line)."""
  if not path:
    raise ValueError("--config is required; accepted values: a config file, e.g. configs/redgreen.py.")
  if not os.path.isfile(path):
    raise ValueError(f"--config={path!r}: no such file (configs: "
                     f"{', '.join(sorted(f for f in os.listdir('configs') if f.endswith('.py')))})."
                     if os.path.isdir("configs") else f"--config={path!r}: no such file.")
  spec = importlib.util.spec_from_file_location("_config_precheck", path)
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
  except SyntaxError as e:
    raise ValueError(f"--config={path!r}: syntax error at line {e.lineno}: {e.msg}.") from None
  except Exception as e:  # noqa: BLE001  (whatever the config file raises while importing)
    raise ValueError(f"--config={path!r} fails on import: {type(e).__name__}: {e}.") from None
  if not callable(getattr(module, "get_config", None)):
    raise ValueError(f"--config={path!r} defines no get_config() function.")
  return module


def precheck(argv: list[str], config_required: bool = True) -> None:
  """Before absl parses: the config file imports, has ``get_config``, and every ``--config.x`` key exists."""
  from train import config as config_lib
  if any(a in ("--help", "--helpshort", "--helpfull", "-h", "-?") for a in argv[1:]):
    return
  if not config_required and config_path(argv) is None:
    return
  try:
    module = load_config_module(config_path(argv) or "")
    paths = [a[len("--config."):].split("=", 1)[0] for a in argv if a.startswith("--config.")]
    try:
      config = module.get_config()
    except Exception as e:  # noqa: BLE001
      raise ValueError(f"--config={config_path(argv)!r}: get_config() fails: {type(e).__name__}: {e}.") from None
    if paths:
      config_lib.check_override_paths(config, paths)
  except ValueError as e:
    fail("config", e)


def parse_flags(argv: list[str], config_required: bool = True) -> list[str]:
  """absl flag parsing with every error as one line and exit code 2 (absl's own exit code is 1)."""
  precheck(argv, config_required)
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    fail("config", f"command line: {e}")
  except Exception as e:  # noqa: BLE001  (config_flags raises plain errors for bad override values)
    fail("config", f"command line: {type(e).__name__}: {e}")




def optional_config_parser() -> Callable[[list[str]], list[str]]:
  """``parse_flags`` for a command whose ``--config`` may be left out (``train.eval``)."""
  return lambda argv: parse_flags(argv, config_required=False)


__all__ = ["list_configs", "help_text", "exit_on_help", "quiet_library_logs", "CONFIG_DIR", "EXIT_CODES", "fail",
           "config_path", "load_config_module", "precheck", "parse_flags", "optional_config_parser"]
