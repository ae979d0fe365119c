"""What every model shares: the ``antialias`` spec and the ``conv_mode`` check.

``antialias`` is ``None`` (plain strided downsampling), ``'blur:<kind>:<size>'`` (BlurPool, e.g.
``'blur:triangle:3'``, ``'blur:binomial:5'``; ``'blur'`` alone means ``'blur:triangle:3'``) or ``'aps'``
(adaptive polyphase sampling; ``'aps:<norm>'`` or ``'aps:<norm>:<blur_size>'`` with a circular binomial blur
before sampling).
"""

from __future__ import annotations

import dataclasses

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


__all__ = ["AntiAlias", "parse_antialias", "check_conv_mode", "ANTIALIAS_FORMS"]
