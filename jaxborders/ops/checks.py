"""Argument validation shared by every op.

Every public op checks its arguments here, in plain Python on static shapes, so that bad input fails with a
`ValueError` naming the argument and the accepted values *before* anything is traced or computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
  """Returns `value` if it is one of `choices`, else raises a ValueError listing them."""
  if not isinstance(value, str) or value not in choices:
    raise ValueError(f"{name}={value!r} is not supported; accepted values: {', '.join(map(repr, choices))}.")
  return value


def as_modes(name: str, mode: str | Sequence[str], rank: int, choices: Sequence[str]) -> tuple[str, ...]:
  """One border mode per spatial dim: a single mode is broadcast to all ``rank`` dims, a sequence must hold
  exactly ``rank`` modes. Raises a ValueError naming ``name`` and listing ``choices`` otherwise."""
  if isinstance(mode, str):
    return (check_choice(name, mode, choices),) * rank
  if not isinstance(mode, Sequence):
    raise ValueError(f"{name}={mode!r} is not supported; pass one mode or a tuple of {rank} modes (one per spatial "
                     f"dim) from: {', '.join(map(repr, choices))}.")
  modes = tuple(mode)
  if len(modes) != rank:
    raise ValueError(f"{name}={mode!r} has {len(modes)} entries but there are {rank} spatial dims; pass one mode or "
                     f"one per spatial dim, each one of: {', '.join(map(repr, choices))}.")
  for m in modes:
    check_choice(name, m, choices)
  return modes


def as_tuple(name: str, value: int | Sequence[int], rank: int, minimum: int = 1) -> tuple[int, ...]:
  """Broadcasts an int (or checks a sequence) to a `rank`-tuple of ints >= `minimum`."""
  if isinstance(value, (int,)) and not isinstance(value, bool):
    values = (int(value),) * rank
  else:
    try:
      values = tuple(int(v) for v in value)  # type: ignore[union-attr]
    except TypeError:
      raise ValueError(f"{name} must be an int or a sequence of {rank} ints, got {value!r}.") from None
    if len(values) != rank:
      raise ValueError(f"{name} must have one entry per spatial dimension ({rank}), got {value!r}.")
  if any(v < minimum for v in values):
    raise ValueError(f"{name} must be >= {minimum} in every spatial dimension, got {value!r}.")
  return values


def check_rank(name: str, shape: Sequence[int], rank: int) -> None:
  """Checks a channels-last batched array: (N, *spatial, C) with `rank` spatial dims."""
  if len(shape) != rank + 2:
    layouts = {1: "(N, L, C)", 2: "(N, H, W, C)", 3: "(N, D, H, W, C)"}
    expected = layouts.get(rank, f"(N, {rank} spatial dims, C)")
    raise ValueError(f"{name} must have shape {expected} for {rank} spatial dims, got shape {tuple(shape)}.")


def spatial_rank(name: str, shape: Sequence[int]) -> int:
  """Spatial rank of a channels-last batched array; 1, 2 or 3 accepted."""
  rank = len(shape) - 2
  if rank not in (1, 2, 3):
    raise ValueError(
        f"{name} must be channels-last and batched with 1-3 spatial dims: (N, L, C), (N, H, W, C) or "
        f"(N, D, H, W, C); got shape {tuple(shape)}.")
  return rank
