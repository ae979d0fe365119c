"""Shifts of images: circular, crop and inside a zero canvas (F-Conv paper, BlurPool and APS evaluations).

Three ways to move image content by an integer number of pixels, and one by a real number of pixels, for
channels-last batched arrays ``(N, *spatial, C)`` with 1-3 spatial dims:

- ``circular_shift``: ``np.roll`` over the spatial dims, ``out[i] = x[(i - s) mod n]``. Nothing is lost; the
  shift that circular convolutions and APS are exactly equivariant/invariant to (APS paper's circular
  consistency).
- ``crop_shift``: a ``size`` window at ``offset``, ``out[i] = x[i + offset]``. Two crops at different offsets are
  the same image shifted by their difference — the BlurPool paper's evaluation shift, where real image content
  (not padding) enters at the border.
- ``canvas_shift``: the content moves inside a zero canvas of the same size, ``out[i] = x[i - s]`` where
  ``0 <= i - s < n``, else 0. Zeros enter on one side and content pushed past the other side is **lost**; embed
  the image in a larger canvas first (``embed_in_canvas``) when nothing may be lost — then a stride-1 F-Conv
  stack is exactly equivariant to it (F-Conv paper).
- ``fourier_shift``: a circular shift by a real number of pixels under band-limited (Fourier) interpolation —
  the sub-pixel shift that ideal low-pass downsampling commutes with (alias-free convnets, Michaeli et al. CVPR
  2023). Integer shifts equal ``circular_shift`` exactly.

A shift (or offset) is either static — an int (same in every spatial dim) or a sequence of one int per dim — or
an integer array, possibly traced: shape ``(rank,)`` applies to every sample, shape ``(N, rank)`` gives one per
sample. Array shifts compile once for all values (``lax.dynamic_slice`` + ``vmap``), which is what the metrics
use to loop over many shifts with a single compiled function.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxborders.ops.checks import as_tuple, spatial_rank

Shift = int | Sequence[int] | jax.Array | np.ndarray


def _is_array(value: object) -> bool:
  return isinstance(value, (jax.Array, np.ndarray))


def _static_ints(name: str, value: int | Sequence[int], rank: int) -> tuple[int, ...]:
  """An int or per-dim sequence of ints (any sign) as a `rank`-tuple."""
  if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
    return (int(value),) * rank
  try:
    values = tuple(value)  # type: ignore[arg-type]
  except TypeError:
    raise ValueError(f"{name} must be an int, a sequence of {rank} ints or an int array, got {value!r}.") from None
  if len(values) != rank or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
    raise ValueError(f"{name} must have one int per spatial dimension ({rank}), got {value!r}.")
  return tuple(int(v) for v in values)


def _shift_array(name: str, value: jax.Array | np.ndarray, rank: int, batch: int) -> jax.Array:
  """Checks an int shift array: () or (rank,) for all samples, (N, rank) per sample; returns (N, rank)."""
  value = jnp.asarray(value)
  if not jnp.issubdtype(value.dtype, jnp.integer):
    raise ValueError(f"{name} must be an integer array, got dtype {value.dtype}.")
  if value.shape == ():
    value = jnp.full((rank,), value)
  if value.shape == (rank,):
    return jnp.broadcast_to(value, (batch, rank))
  if value.shape == (batch, rank):
    return value
  raise ValueError(f"{name} must have shape ({rank},) (all samples) or ({batch}, {rank}) (one per sample), got "
                   f"shape {value.shape}.")


def _concrete(value: jax.Array | np.ndarray) -> np.ndarray | None:
  """The values of a non-traced array (to validate them), None under tracing."""
  if isinstance(value, jax.core.Tracer):
    return None
  return np.asarray(value)


def circular_shift(x: jax.Array, shift: Shift) -> jax.Array:
  """Rolls the spatial dims: ``out[:, i] = x[:, (i - shift) mod n]`` (``np.roll`` over spatial axes).

  Args:
    x: (N, *spatial, C), 1-3 spatial dims.
    shift: int (every spatial dim), one int per spatial dim, or an int array of shape (rank,) or (N, rank)
      (one shift per sample; may be traced). Any sign; taken modulo the size.

  Returns:
    Array of the same shape and dtype as ``x``.

  Example:
    >>> x = jnp.arange(4.).reshape(1, 4, 1)
    >>> circular_shift(x, 1)[0, :, 0].tolist()
    [3.0, 0.0, 1.0, 2.0]
  """
  rank = spatial_rank("x", x.shape)
  axes = tuple(range(1, rank + 1))
  if not _is_array(shift):
    return jnp.roll(x, _static_ints("shift", shift, rank), axis=axes)  # type: ignore[arg-type]
  shifts = _shift_array("shift", shift, rank, x.shape[0])
  # jnp.roll with a traced shift is a dynamic slice of the doubled array: one compiled program for all shifts.
  return jax.vmap(lambda xi, si: jnp.roll(xi, si, axis=tuple(range(rank))))(x, shifts)


def crop_shift(x: jax.Array, offset: Shift, size: int | Sequence[int]) -> jax.Array:
  """The ``size`` window at ``offset``: ``out[:, i] = x[:, offset + i]`` (the BlurPool paper's shift by cropping).

  Args:
    x: (N, *spatial, C), 1-3 spatial dims.
    offset: int, one int per spatial dim, or an int array of shape (rank,) or (N, rank) (one window per sample;
      may be traced). Must satisfy ``0 <= offset`` and ``offset + size <= spatial``; this is checked for static
      and concrete offsets, while traced offsets are clamped into range by ``lax.dynamic_slice``.
    size: int or one int per spatial dim, each ``<=`` the spatial size.

  Returns:
    (N, *size, C) array, dtype of ``x``.

  Example:
    >>> x = jnp.arange(16.).reshape(1, 4, 4, 1)
    >>> crop_shift(x, (1, 2), 2)[0, ..., 0].tolist()
    [[6.0, 7.0], [10.0, 11.0]]
  """
  rank = spatial_rank("x", x.shape)
  spatial = x.shape[1:-1]
  sizes = as_tuple("size", size, rank)
  if any(s > n for s, n in zip(sizes, spatial)):
    raise ValueError(f"size={size!r} is larger than the spatial shape {tuple(spatial)} of x.")
  if not _is_array(offset):
    offsets = _static_ints("offset", offset, rank)  # type: ignore[arg-type]
    _check_window("offset", np.asarray(offsets), sizes, spatial)
    return x[(slice(None), *(slice(o, o + s) for o, s in zip(offsets, sizes)), slice(None))]
  offsets = _shift_array("offset", offset, rank, x.shape[0])  # type: ignore[arg-type]
  values = _concrete(offsets)
  if values is not None:
    _check_window("offset", values, sizes, spatial)
  channels = x.shape[-1]
  return jax.vmap(lambda xi, oi: lax.dynamic_slice(xi, (*oi, 0), (*sizes, channels)))(x, offsets)


def _check_window(name: str, offsets: np.ndarray, sizes: Sequence[int], spatial: Sequence[int]) -> None:
  """Checks ``0 <= offsets`` and ``offsets + sizes <= spatial`` (offsets: (..., rank))."""
  offsets = offsets.reshape(-1, len(sizes))
  limit = np.asarray(spatial) - np.asarray(sizes)
  if offsets.size and (offsets.min() < 0 or np.any(offsets > limit)):
    raise ValueError(f"{name} must lie in [0, spatial - size] = [0, {tuple(int(v) for v in limit)}] per spatial "
                     f"dim (window {tuple(sizes)} in {tuple(spatial)}), got values in "
                     f"[{offsets.min(axis=0).tolist()}, {offsets.max(axis=0).tolist()}].")


def canvas_shift(x: jax.Array, shift: Shift) -> jax.Array:
  """Moves the content inside a zero canvas of the same size: ``out[:, i] = x[:, i - shift]``, zero outside.

  Zeros enter on the side the content moves away from; content pushed past the other border is **lost** (a
  shift of at least the size gives all zeros). This is a circular shift whose wrapped-around part is zeroed. To
  shift without loss, first place the image in a larger canvas with ``embed_in_canvas``.

  Args:
    x: (N, *spatial, C), 1-3 spatial dims.
    shift: int, one int per spatial dim, or an int array of shape (rank,) or (N, rank) (may be traced); any
      sign.

  Returns:
    Array of the same shape and dtype as ``x``.

  Example:
    >>> x = jnp.arange(1., 5.).reshape(1, 4, 1)
    >>> canvas_shift(x, 1)[0, :, 0].tolist(), canvas_shift(x, -2)[0, :, 0].tolist()
    ([0.0, 1.0, 2.0, 3.0], [3.0, 4.0, 0.0, 0.0])
  """
  rank = spatial_rank("x", x.shape)
  if _is_array(shift):
    shifts = _shift_array("shift", shift, rank, x.shape[0])  # type: ignore[arg-type]
  else:
    static = _static_ints("shift", shift, rank)  # type: ignore[arg-type]
    shifts = jnp.broadcast_to(jnp.asarray(static), (x.shape[0], rank))
  rolled = circular_shift(x, shifts)
  # Keep output position i only where its source i - shift lies inside the image (per dim, per sample).
  keep = jnp.ones((x.shape[0], *x.shape[1:-1]), bool)
  for d, n in enumerate(x.shape[1:-1]):
    source = jnp.arange(n)[None, :] - shifts[:, d:d + 1]  # (N, n)
    inside = (source >= 0) & (source < n)
    keep = keep & inside.reshape(x.shape[0], *([1] * d), n, *([1] * (rank - d - 1)))
  return jnp.where(keep[..., None], rolled, jnp.zeros((), x.dtype))


def embed_in_canvas(x: jax.Array, canvas_size: int | Sequence[int], offset: Shift = 0) -> jax.Array:
  """Places ``x`` in a zero canvas: ``out[:, offset + i] = x[:, i]``, zero elsewhere.

  Args:
    x: (N, *spatial, C), 1-3 spatial dims.
    canvas_size: int or one int per spatial dim, each ``>=`` the spatial size of ``x``.
    offset: top-left corner of the image in the canvas: int, one int per spatial dim, or an int array of
      shape (rank,) or (N, rank) (may be traced). ``0 <= offset <= canvas_size - spatial``; checked when static
      or concrete, clamped into range by ``lax.dynamic_update_slice`` when traced.

  Returns:
    (N, *canvas_size, C) array, dtype of ``x``.

  Example:
    >>> x = jnp.ones((1, 2, 1))
    >>> embed_in_canvas(x, 5, 2)[0, :, 0].tolist()
    [0.0, 0.0, 1.0, 1.0, 0.0]
  """
  rank = spatial_rank("x", x.shape)
  spatial = x.shape[1:-1]
  canvas = as_tuple("canvas_size", canvas_size, rank)
  if any(c < n for c, n in zip(canvas, spatial)):
    raise ValueError(f"canvas_size={canvas_size!r} must be >= the spatial shape {tuple(spatial)} of x in every dim.")
  if not _is_array(offset):
    offsets = _static_ints("offset", offset, rank)  # type: ignore[arg-type]
    _check_window("offset", np.asarray(offsets), spatial, canvas)
    widths = [(0, 0)] + [(o, c - o - n) for o, c, n in zip(offsets, canvas, spatial)] + [(0, 0)]
    return jnp.pad(x, widths)
  offsets = _shift_array("offset", offset, rank, x.shape[0])  # type: ignore[arg-type]
  values = _concrete(offsets)
  if values is not None:
    _check_window("offset", values, spatial, canvas)
  zeros = jnp.zeros((*canvas, x.shape[-1]), x.dtype)
  return jax.vmap(lambda xi, oi: lax.dynamic_update_slice(zeros, xi, (*oi, 0)))(x, offsets)


def _float_shifts(shift: float | Sequence[float] | jax.Array | np.ndarray, rank: int, batch: int) -> jax.Array:
  """Checks a real shift: a float, one float per dim, or a float/int array () / (rank,) / (N, rank); returns
  float32 (N, rank)."""
  if _is_array(shift):
    value = jnp.asarray(shift)
    if not (jnp.issubdtype(value.dtype, jnp.floating) or jnp.issubdtype(value.dtype, jnp.integer)):
      raise ValueError(f"shift must be a real array, got dtype {value.dtype}.")
    if value.shape == ():
      value = jnp.full((rank,), value)
    if value.shape == (rank,):
      value = jnp.broadcast_to(value, (batch, rank))
    if value.shape != (batch, rank):
      raise ValueError(f"shift must have shape ({rank},) (all samples) or ({batch}, {rank}) (one per sample), got "
                       f"shape {value.shape}.")
    return value.astype(jnp.float32)
  if isinstance(shift, (int, float, np.integer, np.floating)) and not isinstance(shift, bool):
    values = (float(shift),) * rank
  else:
    try:
      values = tuple(float(t) for t in shift)  # type: ignore[union-attr]
    except (TypeError, ValueError):
      raise ValueError(f"shift must be a float or one float per spatial dimension ({rank}), got {shift!r}.") from None
    if len(values) != rank:
      raise ValueError(f"shift must be a float or one float per spatial dimension ({rank}), got {shift!r}.")
  if not all(np.isfinite(values)):
    raise ValueError(f"shift must be finite, got {shift!r}.")
  return jnp.broadcast_to(jnp.asarray(values, jnp.float32), (batch, rank))


def fourier_shift(x: jax.Array, shift: float | Sequence[float] | jax.Array | np.ndarray) -> jax.Array:
  """Circular shift by a real number of pixels: ``out(i) = x(i - shift)`` under band-limited interpolation.

  Per spatial axis of size ``n`` and shift ``t`` (the axes are shifted one after the other):
  ``out = irfft(rfft(x) * exp(-2 pi i k t / n))``, i.e. the trigonometric interpolant of ``x`` sampled at
  ``i - t``. ``t`` is split into ``round(t) + f`` with ``|f| <= 1/2``: the integer part is a ``circular_shift``
  (exact), the fraction the Fourier phase; a sample whose fractions are all zero returns the rolled input
  itself, so **integer shifts equal ``circular_shift`` bit for bit** (also for traced shifts).

  Nyquist caveat: for an even ``n`` the bin ``k = n/2`` of a real signal is real, so it cannot carry a
  fractional shift; it keeps the real part of its phase factor, ``cos(pi t)`` times the bin (``numpy.fft.irfft``
  ignores the imaginary part there). Hence shifts compose, ``fourier_shift(fourier_shift(x, a), b) ==
  fourier_shift(x, a + b)``, for odd sizes, for integer ``a`` or ``b``, and for inputs without Nyquist content
  (every ideal low-pass output, ``ideal_downsample``); for other inputs the Nyquist component of a composition is
  damped by ``cos(pi a) cos(pi b)`` instead of ``cos(pi (a + b))``. We keep this (rather than, say, rotating the
  bin into an impossible complex value) because it is the unique real, linear choice that is exact for integer
  shifts and equals the authors' convention in alias-free convnets (hmichaeli/alias_free_convnets).

  Args:
    x: (N, *spatial, C), 1-3 spatial dims. Float dtypes are kept (transformed in float32, float64 kept); other
      dtypes give float32.
    shift: a float (every spatial dim), one float per spatial dim, or a real array of shape (rank,) (all
      samples) or (N, rank) (one shift per sample; may be traced, so one compile serves every shift). Any sign.

  Returns:
    Real array of the shape of ``x``.

  Example:
    >>> x = jnp.array([0., 1., 0., 0., 0.]).reshape(1, 5, 1)
    >>> fourier_shift(x, 2)[0, :, 0].tolist()  # integer: exactly circular_shift
    [0.0, 0.0, 0.0, 1.0, 0.0]
    >>> half = fourier_shift(fourier_shift(x, 0.5), 0.5)  # odd size: half shifts compose to one pixel
    >>> [round(v, 4) + 0.0 for v in half[0, :, 0].tolist()]
    [0.0, 0.0, 1.0, 0.0, 0.0]
  """
  rank = spatial_rank("x", x.shape)
  return _fourier_shift(x, _float_shifts(shift, rank, x.shape[0]))


@jax.jit
def _fourier_shift(x: jax.Array, shifts: jax.Array) -> jax.Array:
  """``fourier_shift`` on checked (N, rank) float32 shifts: one compiled program per input shape and dtype."""
  rank = x.ndim - 2
  out_dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32
  whole = jnp.round(shifts)
  fraction = shifts - whole
  rolled = circular_shift(x.astype(out_dtype), whole.astype(jnp.int32))
  y = rolled.astype(jnp.float32) if out_dtype != jnp.float64 else rolled  # jnp.fft has no 16-bit kernels
  for axis in range(1, rank + 1):
    n = y.shape[axis]
    k = jnp.arange(n // 2 + 1, dtype=jnp.float32)
    phase = jnp.exp(-2j * jnp.pi * fraction[:, axis - 1:axis] * k / n)  # (N, n//2 + 1)
    phase = phase.reshape(y.shape[0], *([1] * (axis - 1)), n // 2 + 1, *([1] * (y.ndim - axis - 1)))
    y = jnp.fft.irfft(jnp.fft.rfft(y, axis=axis) * phase.astype(jnp.complex64 if y.dtype == jnp.float32 else
                                                                  jnp.complex128), n=n, axis=axis)
  integer = jnp.all(fraction == 0, axis=1).reshape(-1, *([1] * (x.ndim - 1)))
  return jnp.where(integer, rolled, y.astype(out_dtype))


def diagonal_offsets(max_offset: int, rank: int = 2, step: int = 1) -> np.ndarray:
  """Offsets ``(o, o, ...)`` for ``o = 0, step, ..., max_offset`` (inclusive; the F-Conv paper's diagonal shifts 0..64).

  Args:
    max_offset: largest offset, >= 0.
    rank: number of spatial dims (1-3).
    step: spacing between offsets, >= 1.

  Returns:
    int32 array of shape (K, rank).

  Example:
    >>> diagonal_offsets(4, step=2).tolist()
    [[0, 0], [2, 2], [4, 4]]
  """
  _check_rank_arg(rank)
  as_tuple("max_offset", max_offset, 1, minimum=0)
  as_tuple("step", step, 1)
  values = np.arange(0, max_offset + 1, step, dtype=np.int32)
  return np.repeat(values[:, None], rank, axis=1)


def shift_grid(max_shift: int, rank: int = 2) -> np.ndarray:
  """Every shift in ``[-max_shift, max_shift]`` per dim (a ``(2m+1)**rank`` window), in row-major order.

  Args:
    max_shift: m >= 0.
    rank: number of spatial dims (1-3).

  Returns:
    int32 array of shape ((2m+1)**rank, rank).

  Example:
    >>> shift_grid(1, rank=1).tolist()
    [[-1], [0], [1]]
    >>> shift_grid(1).shape
    (9, 2)
  """
  _check_rank_arg(rank)
  as_tuple("max_shift", max_shift, 1, minimum=0)
  axis = np.arange(-max_shift, max_shift + 1, dtype=np.int32)
  grids = np.meshgrid(*([axis] * rank), indexing="ij")
  return np.stack([g.reshape(-1) for g in grids], axis=1)


def random_offset_pairs(key: jax.Array, num_images: int, rank: int, low: int | Sequence[int],
                        high: int | Sequence[int], passes: int = 1) -> jax.Array:
  """Two independent random offsets per image and pass, uniform integers in ``[low, high)`` per dim.

  This is the draw behind ``consistency`` (``low=0, high=max_offset``) and ``circular_consistency``
  (``low=-max_shift, high=max_shift``), exposed so that results can be recomputed independently.

  Args:
    key: a ``jax.random`` key.
    num_images: N >= 1.
    rank: number of spatial dims (1-3).
    low: smallest value (inclusive): int, or one int per spatial dim.
    high: largest value (exclusive), > low: int, or one int per spatial dim.
    passes: number of passes over the images, >= 1.

  Returns:
    int32 array of shape (passes, N, 2, rank).

  Example:
    >>> pairs = random_offset_pairs(jax.random.key(0), 3, 2, 0, 4)
    >>> pairs.shape, bool(pairs.min() >= 0), bool(pairs.max() < 4)
    ((1, 3, 2, 2), True, True)
  """
  _check_rank_arg(rank)
  as_tuple("num_images", num_images, 1)
  as_tuple("passes", passes, 1)
  lows, highs = _static_ints("low", low, rank), _static_ints("high", high, rank)
  if any(h <= lo for lo, h in zip(lows, highs)):
    raise ValueError(f"high must be > low in every spatial dim, got low={low!r}, high={high!r}.")
  # Bounds broadcast along the last (spatial) axis.
  return jax.random.randint(key, (passes, num_images, 2, rank), jnp.asarray(lows), jnp.asarray(highs),
                            dtype=jnp.int32)


def _check_rank_arg(rank: int) -> None:
  if rank not in (1, 2, 3):
    raise ValueError(f"rank must be 1, 2 or 3 (spatial dims), got {rank!r}.")


__all__ = ["circular_shift", "crop_shift", "canvas_shift", "embed_in_canvas", "fourier_shift", "diagonal_offsets",
           "shift_grid", "random_offset_pairs"]
