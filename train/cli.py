"""Command-line plumbing shared by ``train.main`` and ``train.eval``: exit codes, one-line failures, flag parsing.

absl prints a flag error with a usage hint and exits 1, and ``config_flags`` turns a broken config file into a
long traceback; here every such mistake becomes one line naming the flag, key or file, and exit code 2.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from absl import flags

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


__all__ = ["EXIT_CODES", "fail", "config_path", "load_config_module", "precheck", "parse_flags",
           "optional_config_parser"]
