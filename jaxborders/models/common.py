"""What every model shares: the ``antialias`` spec and the ``conv_mode`` check.

``antialias`` is ``None`` (plain strided downsampling), ``'blur:<kind>:<size>'`` (BlurPool, e.g.
``'blur:triangle:3'``, ``'blur:binomial:5'``; ``'blur'`` alone means ``'blur:triangle:3'``) or ``'aps'``
(adaptive polyphase sampling; ``'aps:<norm>'`` or ``'aps:<norm>:<blur_size>'`` with a circular binomial blur
before sampling).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Optional

from jaxborders.ops import filters
from jaxborders.ops.aps import APS_NORMS
from jaxborders.ops.checks import check_choice
from jaxborders.ops.padding import MODES

ANTIALIAS_FORMS = ("None", "'blur'", "'blur:<kind>:<size>'", "'aps'", "'aps:<norm>'", "'aps:<norm>:<blur_size>'")


@dataclasses.dataclass(frozen=True)
class AntiAlias:
  """A parsed ``antialias`` spec. ``method`` is ``'none'``, ``'blur'`` or ``'aps'``."""

  method: str = "none"
  kind: str = "triangle"  # blur filter kind
  size: int = 3  # blur taps (for APS: the pre-blur size, 1 = none)
  norm: str = "l2"  # APS norm

  @property
  def is_none(self) -> bool:
    return self.method == "none"


def parse_antialias(spec: str | AntiAlias | None) -> AntiAlias:
  """Parses an ``antialias`` spec; a bad one raises ``ValueError`` listing the accepted forms.

  >>> parse_antialias('blur:binomial:5')
  AntiAlias(method='blur', kind='binomial', size=5, norm='l2')
  >>> parse_antialias('aps').method
  'aps'
  """
  if spec is None or spec == "none":
    return AntiAlias()
  if isinstance(spec, AntiAlias):
    return spec
  error = ValueError(f"antialias={spec!r} is not supported; accepted forms: {', '.join(ANTIALIAS_FORMS)} "
                     f"with kind in {filters.FILTER_KINDS} and norm in {APS_NORMS}.")
  if not isinstance(spec, str):
    raise error
  parts = spec.split(":")
  try:
    if parts[0] == "blur" and len(parts) in (1, 3):
      kind, size = (parts[1], int(parts[2])) if len(parts) == 3 else ("triangle", 3)
      filters.filter_taps(kind, size)
      return AntiAlias("blur", kind, size)
    if parts[0] == "aps" and len(parts) <= 3:
      norm = parts[1] if len(parts) > 1 else "l2"
      size = int(parts[2]) if len(parts) > 2 else 1
      check_choice("norm", norm, APS_NORMS)
      filters.filter_taps("binomial", size)
      return AntiAlias("aps", "binomial", size, norm)
  except ValueError as e:
    raise ValueError(f"{error} ({e})") from None
  raise error


def check_conv_mode(conv_mode: str) -> str:
  """Raises ``ValueError`` listing the accepted border modes unless ``conv_mode`` is one."""
  return check_choice("conv_mode", conv_mode, MODES)




# ---------------------------------------------------------------------------------------------------------------
# Input-size convention (shared by every model family).
#
# Every model module offers two plain (non-compact) methods that work on an unbound module:
#   ``min_input_size() -> tuple[int, ...]``  the smallest spatial shape ((H, W), or (T, H, W) for video) that
#       the network can process with its ``conv_mode`` / ``antialias``; ``__call__`` raises ``ValueError``
#       stating it, before any conv runs, for a smaller input;
#   ``example_input_shape(batch=2) -> tuple[int, ...]``  a small valid channels-last input shape for tests.
# Families compute the minimum by running the chain of per-dimension size steps below, which mirror the
# ops' own size arithmetic and validity checks, instead of tracing the network.
# ---------------------------------------------------------------------------------------------------------------

SizeStep = Callable[[int], Optional[int]]  # an input length -> output length, or None when the op would refuse


def conv_step(kernel: int, stride: int = 1, mode: str = "same", dilation: int = 1) -> SizeStep:
  """Size step of ``jaxborders.conv`` along one dim (``None`` where the conv would raise)."""
  from jaxborders.ops.padding import padding_for  # local: keeps this module's import surface small

  (lo, hi), = padding_for(mode, kernel, dilation)
  ke = dilation * (kernel - 1) + 1

  def step(n: int) -> int | None:
    if n + lo + hi < ke or (mode == "reflect" and max(lo, hi) > n - 1) or (mode == "circular" and max(lo, hi) > n):
      return None
    return (n + lo + hi - ke) // stride + 1

  return step


def pad_step(lo: int, hi: int | None = None) -> SizeStep:
  """Size step of an explicit pad (negative values crop)."""
  hi = lo if hi is None else hi
  return lambda n: n + lo + hi if n + lo + hi >= 1 else None


def pool_step(window: int, stride: int, padding: int = 0) -> SizeStep:
  """Size step of a max / average pool with symmetric ``padding``."""
  return lambda n: (n + 2 * padding - window) // stride + 1 if n + 2 * padding >= window else None


def blur_step(size: int, stride: int = 2, pad_mode: str = "reflect") -> SizeStep:
  """Size step of ``jaxborders.blur_pool``."""
  lo, hi = filters.blur_padding(size, pad_mode)

  def step(n: int) -> int | None:
    if n + lo + hi < size or (pad_mode == "reflect" and max(lo, hi) > n - 1) or (
        pad_mode == "circular" and max(lo, hi) > n):
      return None
    return (n + lo + hi - size) // stride + 1

  return step


def aps_step(stride: int = 2, blur_size: int = 1) -> SizeStep:
  """Size step of ``pad_to_multiple`` + ``APSPool`` (optional circular stride-1 blur first)."""
  blur = blur_step(blur_size, 1, "circular")

  def step(n: int) -> int | None:
    m = blur(n)
    return None if m is None else -(-m // stride)

  return step


def run_steps(n: int, steps: Sequence[SizeStep]) -> int | None:
  """Pushes length ``n`` through ``steps``; ``None`` if any step refuses or a length drops below 1."""
  for step in steps:
    n = step(n)
    if n is None or n < 1:
      return None
  return n


def min_length(steps: Sequence[SizeStep], limit: int = 4096) -> int:
  """Smallest input length that every step accepts (sizes are monotone in the input, so a scan suffices)."""
  for n in range(1, limit + 1):
    if run_steps(n, steps) is not None:
      return n
  raise ValueError(f"no input length up to {limit} fits this network")


def check_input_size(model: str, shape: Sequence[int], minimum: Sequence[int]) -> None:
  """Raises ``ValueError`` stating ``minimum`` unless every spatial dim of ``shape`` (N, *spatial, C) reaches it."""
  spatial = tuple(shape[1:-1])
  if len(spatial) != len(minimum):
    raise ValueError(f"{model}: input must be channels-last (N, {', '.join('HW' if len(minimum) == 2 else 'THW')}, "
                     f"C), got shape {tuple(shape)}.")
  if any(n < m for n, m in zip(spatial, minimum)):
    raise ValueError(f"{model}: input spatial size {spatial} is smaller than the minimum {tuple(minimum)} this "
                     f"network can process with its conv_mode / antialias settings.")


def blur_pad_mode(conv_mode: str) -> str:
  """The BlurPool pad type that matches a border mode: F-Conv's full zero blur for ``full`` (CWB),
  wrap-around for ``circular`` (the BlurPool paper's CIFAR setting, APS), AA's ``reflect`` otherwise."""
  return {"full": "full", "circular": "circular"}.get(conv_mode, "reflect")


__all__ = ["AntiAlias", "parse_antialias", "check_conv_mode", "ANTIALIAS_FORMS", "conv_step", "pad_step", "pool_step",
           "blur_step", "aps_step", "run_steps", "min_length", "check_input_size", "blur_pad_mode"]
