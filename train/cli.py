"""What the command lines (``train.main``, ``train.eval``) share: ``--help`` that lists the configs and exits 0, and
no INFO lines from the libraries underneath (orbax logs every checkpoint at INFO through absl)."""

from __future__ import annotations

import ast
import logging
import os
import re
import sys

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
    first = re.sub(r"\s*\(SPEC §[\d, §]+\)|[;,]\s*SPEC §[\d, §]+", "", first)  # notes kept outside the repository
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


__all__ = ["list_configs", "help_text", "exit_on_help", "quiet_library_logs", "CONFIG_DIR"]
