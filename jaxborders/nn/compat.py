"""flax.linen.Conv's conventions on top of ``jaxborders.conv``: its ``padding`` forms and its input ranks.

Shared by the linen ``Conv``, the NNX ``Conv`` and the border-mode switch, so that all three read flax's
arguments the same way. ``padding`` is mapped as flax maps it (``flax/linen/linear.py``, ``_Conv.__call__``):

=================================  ==================================================================
flax ``padding``                   runs as
=================================  ==================================================================
``'VALID'``                        mode ``valid``
``'CIRCULAR'`` / ``'REFLECT'``     mode ``circular`` / ``reflect`` (flax pads ``((ke-1)//2, ke//2)``,
                                   which is our split for every effective kernel ``ke``)
``'SAME'`` / ``'SAME_LOWER'``      lax's pads ``(t//2, t - t//2)`` / ``(t - t//2, t//2)`` with
                                   ``t = max((ceil(n/s) - 1) * s + ke - n, 0)``: at stride 2 on an even
                                   input flax pads ``(0, 1)`` where our ``same`` pads ``(1, 1)``
``'CAUSAL'`` (1D only)             pads ``(ke - 1, 0)``
int ``p`` / ``[p or (lo, hi)]``    those zero pads (negative pads crop, as in lax)
=================================  ==================================================================

Explicit zero pads that coincide with ``valid``, ``same`` or ``full`` run as that mode (the op's fast paths);
other pads are applied with ``lax.pad`` followed by a ``valid`` conv. Either way the numbers are flax's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from jaxborders.ops import padding as padding_ops
from jaxborders.ops.checks import as_tuple

FLAX_PADDING_STRINGS: tuple[str, ...] = ("SAME", "SAME_LOWER", "VALID", "CIRCULAR", "REFLECT", "CAUSAL")


def check_mode(mode: Any) -> None:
  """``mode`` is ``None`` (flax's ``padding`` decides), one of ``MODES``, or a sequence of them (one per axis)."""
  if mode is None:
    return
  modes = (mode,) if isinstance(mode, str) else tuple(mode) if isinstance(mode, Sequence) else (mode,)
  if not modes or any(not isinstance(m, str) or m not in padding_ops.MODES for m in modes):
    raise ValueError(f"mode={mode!r} is not supported; accepted values: None (use padding), "
                     f"{', '.join(map(repr, padding_ops.MODES))}, or a sequence of these (one per spatial axis).")


def check_padding(padding: Any) -> None:
  """Accepts flax's padding forms (checked against the rank again at call time)."""
  if isinstance(padding, str):
    if padding not in FLAX_PADDING_STRINGS:
      hint = f" (our border mode {padding!r} is set with mode=, not padding=)" if padding in padding_ops.MODES else ""
      raise ValueError(f"padding={padding!r} is not supported{hint}; accepted values: "
                       f"{', '.join(map(repr, FLAX_PADDING_STRINGS))}, an int, or a sequence of ints / (lo, hi) pairs.")
    return
  if _is_int(padding):
    return
  if isinstance(padding, Sequence) and all(_is_int(p) or _is_pair(p) for p in padding):
    return
  accepted = ", ".join(map(repr, FLAX_PADDING_STRINGS))
  raise ValueError(f"padding={padding!r} is not supported; accepted values: {accepted}, an int, or a sequence of "
                   f"ints / (lo, hi) pairs (one per spatial dim).")


def _is_int(v: Any) -> bool:
  return isinstance(v, int) and not isinstance(v, bool)


def _is_pair(v: Any) -> bool:
  return isinstance(v, Sequence) and not isinstance(v, str) and len(v) == 2 and all(_is_int(p) for p in v)


def flax_pads(padding: Any, spatial: Sequence[int], kernel_size: Sequence[int], strides: Sequence[int],
              dilation: Sequence[int]) -> str | tuple[tuple[int, int], ...]:
  """flax ``padding`` -> a border mode (``'valid'``, ``'circular'``, ``'reflect'``) or explicit zero pads."""
  rank = len(kernel_size)
  effective = [d * (k - 1) + 1 for k, d in zip(kernel_size, dilation)]
  if isinstance(padding, str):
    if padding in ("VALID", "CIRCULAR", "REFLECT"):
      return padding.lower()
    if padding == "CAUSAL":
      if rank != 1:
        raise ValueError(f"padding='CAUSAL' is only defined for 1D convolutions (as in flax); this one has {rank} "
                         f"spatial dims.")
      return ((effective[0] - 1, 0),)
    pads = []
    for n, s, ke in zip(spatial, strides, effective):
      total = max((-(-n // s) - 1) * s + ke - n, 0)
      pads.append((total // 2, total - total // 2) if padding == "SAME" else (total - total // 2, total // 2))
    return tuple(pads)
  if _is_int(padding):
    return ((padding, padding),) * rank
  if len(padding) != rank:
    raise ValueError(f"padding={padding!r} must have one entry per spatial dim ({rank}).")
  return tuple((p, p) if _is_int(p) else (int(p[0]), int(p[1])) for p in padding)


def conv_with_padding(x: jax.Array, kernel: jax.Array, mode: Any, padding: Any, strides: Sequence[int],
                      dilation: Sequence[int], groups: int, precision: Any) -> jax.Array:
  """``jaxborders.conv`` with ``mode``, or, when ``mode`` is None, with flax's ``padding`` (batched x)."""
  if mode is not None:
    return padding_ops.conv(x, kernel, mode, strides, dilation, groups, precision=precision)
  ks = tuple(kernel.shape[:-2])
  resolved = flax_pads(padding, x.shape[1:-1], ks, strides, dilation)
  if isinstance(resolved, str):
    return padding_ops.conv(x, kernel, resolved, strides, dilation, groups, precision=precision)
  for zero_mode in ("same", "valid", "full"):
    if resolved == padding_ops.padding_for(zero_mode, ks, dilation):
      return padding_ops.conv(x, kernel, zero_mode, strides, dilation, groups, precision=precision)
  x = lax.pad(x, jnp.zeros((), x.dtype), [(0, 0, 0), *((lo, hi, 0) for lo, hi in resolved), (0, 0, 0)])
  return padding_ops.conv(x, kernel, "valid", strides, dilation, groups, precision=precision)


def with_batch_dims(x: jax.Array, rank: int, fn: Callable[[jax.Array], Any], name: str = "x") -> Any:
  """Runs ``fn`` on ``x`` with exactly one batch dim, as flax.linen.Conv does.

  ``x`` is ``(*batch, *spatial, C)`` with ``rank`` spatial dims and any number of batch dims (none: a single
  example). Batch dims are flattened into one for ``fn`` and restored on every array ``fn`` returns (for a
  tuple such as APS's ``(y, index)``, each element's leading dim).
  """
  if x.ndim < rank + 1:
    raise ValueError(f"{name} must be (*batch, *spatial, C) with {rank} spatial dims (batch dims optional), got shape "
                     f"{tuple(x.shape)}.")
  batch = x.shape[:x.ndim - rank - 1]
  out = fn(x.reshape((-1, *x.shape[len(batch):])))
  if len(batch) == 1:
    return out
  restore = lambda a: a.reshape((*batch, *a.shape[1:]))  # noqa: E731
  return tuple(map(restore, out)) if isinstance(out, tuple) else restore(out)


def kernel_tuple(kernel_size: Any, default_rank: int) -> tuple[int, ...]:
  """An int kernel size -> ``default_rank`` copies; a sequence is checked (ints >= 1)."""
  if _is_int(kernel_size):
    return as_tuple("kernel_size", kernel_size, default_rank)
  if not isinstance(kernel_size, Sequence) or not 1 <= len(kernel_size) <= 3:
    raise ValueError(f"kernel_size must be an int or a sequence of 1-3 ints, got {kernel_size!r}.")
  return as_tuple("kernel_size", kernel_size, len(kernel_size))


def broadcast(name: str, value: Any, rank: int) -> tuple[int, ...]:
  """flax's ``maybe_broadcast`` (``None`` means 1), with our range checks."""
  return as_tuple(name, 1 if value is None else value, rank)


__all__ = ["FLAX_PADDING_STRINGS", "check_mode", "check_padding", "flax_pads", "conv_with_padding", "with_batch_dims",
           "kernel_tuple", "broadcast"]
