"""Shift-invariance metrics (BlurPool paper §4 and App. B, APS paper).

Every metric takes an ``apply_fn`` mapping a batch of images ``(N, *spatial, C)`` to logits ``(N, K)`` (or,
for ``feature_equivariance_distance``, to a dict of named feature maps) and plain arrays. The work runs in one
jitted function per metric; loops over shifts are ``lax.map`` over an int array of shifts, so a metric compiles
once for all shift values (per number of shifts and batch shape). Random shifts are drawn up front from a ``jax.random`` key
(``random_offset_pairs``), so results are deterministic given the key and do not depend on ``batch_size``.

``apply_fn`` becomes part of the compiled program. A closure over parameters bakes them in as constants; pass
``jax.tree_util.Partial(model.apply, variables)`` instead to keep them as arguments (and reuse the compiled
function for new parameters of the same shapes).

Results are host values (NumPy float64 scalars and arrays, ready for JSON reports); accuracy-like metrics are in
percent (as the papers' tables). Shifts come in three kinds, chosen by ``crop_size``: an int / per-dim tuple means
the BlurPool paper's crop shifts (a ``crop_size`` window at an offset of the larger image), ``None`` means
circular shifts (``np.roll``) of the whole image; the ``subpixel_*`` / ``fractional_*`` metrics use real-valued
circular shifts by band-limited interpolation (``fourier_shift``), the sub-pixel shifts of the alias-free
convnets paper (Michaeli, Michaeli & Soudry, CVPR 2023).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxborders.ops.checks import as_tuple, spatial_rank
from jaxborders.ops.shifts import circular_shift, crop_shift, fourier_shift, random_offset_pairs, shift_grid

ApplyFn = Callable[[jax.Array], Any]


# ---------------------------------------------------------------------------------------------------------------
# Argument checks and batching.


def _as_partial(name: str, fn: ApplyFn) -> jax.tree_util.Partial:
  """Wraps ``fn`` in a pytree so that jit caches on it and a Partial's bound arrays stay arguments."""
  if not callable(fn):
    raise ValueError(f"{name} must be a callable mapping images (N, *spatial, C) to outputs, got {fn!r}.")
  return fn if isinstance(fn, jax.tree_util.Partial) else jax.tree_util.Partial(fn)


def _check_images(images: jax.Array) -> int:
  return spatial_rank("images", np.shape(images))


def _check_labels(labels: jax.Array, num_images: int) -> jax.Array:
  labels = jnp.asarray(labels)
  if labels.shape != (num_images,) or not jnp.issubdtype(labels.dtype, jnp.integer):
    raise ValueError(f"labels must be an int array of shape ({num_images},) (one class per image), got shape "
                     f"{labels.shape} and dtype {labels.dtype}.")
  return labels


def _check_batch_size(batch_size: int | None) -> None:
  if batch_size is not None:
    as_tuple("batch_size", batch_size, 1)


def _check_crop(crop_size: int | Sequence[int] | None, rank: int,
                spatial: Sequence[int]) -> tuple[int, ...] | None:
  if crop_size is None:
    return None
  crop = as_tuple("crop_size", crop_size, rank)
  if any(c > n for c, n in zip(crop, spatial)):
    raise ValueError(f"crop_size={crop_size!r} is larger than the image size {tuple(spatial)}.")
  return crop


def _check_offsets(offsets: Any, rank: int, crop: tuple[int, ...] | None, spatial: Sequence[int]) -> np.ndarray:
  """Offsets as a (K, rank) int array: a 1D int sequence means diagonal offsets (o, o, ...)."""
  values = np.asarray(offsets)
  if values.ndim == 1 and values.size:
    values = np.repeat(values[:, None], rank, axis=1)
  if values.ndim != 2 or values.shape[1] != rank or values.shape[0] == 0 or not np.issubdtype(values.dtype,
                                                                                              np.integer):
    raise ValueError(f"offsets must be a non-empty int sequence (diagonal offsets) or an int array of shape "
                     f"(K, {rank}), got {offsets!r}.")
  if crop is not None:
    limit = np.asarray(spatial) - np.asarray(crop)
    if values.min() < 0 or np.any(values > limit):
      raise ValueError(f"offsets must lie in [0, image size - crop_size] = [0, {tuple(int(v) for v in limit)}] per "
                       f"spatial dim, got values in [{values.min(axis=0).tolist()}, {values.max(axis=0).tolist()}].")
  return values.astype(np.int32)


def _map_batches(fn: Callable[..., Any], arrays: Sequence[jax.Array], batch_size: int | None) -> Any:
  """Applies ``fn`` to batches of ``arrays`` (split on axis 0) and concatenates its per-image outputs.

  The last batch is padded with copies of its last image so that every call has the same shape (one compile);
  the padded outputs are dropped.
  """
  n = arrays[0].shape[0]
  if batch_size is None or batch_size >= n:
    return jax.tree_util.tree_map(np.asarray, fn(*arrays))
  outputs = []
  for start in range(0, n, batch_size):
    chunk = [a[start:start + batch_size] for a in arrays]
    valid = chunk[0].shape[0]
    if valid < batch_size:
      chunk = [jnp.concatenate([c, jnp.repeat(c[-1:], batch_size - valid, axis=0)]) for c in chunk]
    outputs.append(jax.tree_util.tree_map(lambda o, v=valid: np.asarray(o)[:v], fn(*chunk)))
  return jax.tree_util.tree_map(lambda *os: np.concatenate(os), *outputs)


FOURIER = "fourier"  # the ``crop`` value of the kernels below meaning a real-valued Fourier shift


def _view(images: jax.Array, shift: jax.Array, crop: tuple[int, ...] | str | None) -> jax.Array:
  """The image batch seen at ``shift``: a crop at that offset, a circular shift by it when crop is None, a
  band-limited fractional shift by it when crop is ``FOURIER``."""
  if crop == FOURIER:
    return fourier_shift(images, shift)
  return circular_shift(images, shift) if crop is None else crop_shift(images, shift, crop)


# ---------------------------------------------------------------------------------------------------------------
# Jitted kernels: ``fn`` is a jax.tree_util.Partial (a pytree), shifts are int arrays (dynamic, so one compile).


@jax.jit
def _correct(fn, images, labels):
  return jnp.argmax(fn(images), axis=-1) == labels


@functools.partial(jax.jit, static_argnames=("crop",))
def _same_argmax(fn, images, pairs, crop):
  # pairs: (N, passes, 2, rank); one forward pass per pass on both views stacked into one batch of 2N.
  n = images.shape[0]

  def one_pass(pair):
    views = jnp.concatenate([_view(images, pair[:, 0], crop), _view(images, pair[:, 1], crop)])
    predicted = jnp.argmax(fn(views), axis=-1)
    return predicted[:n] == predicted[n:]

  return lax.map(one_pass, jnp.swapaxes(pairs, 0, 1)).T  # (N, passes)


@functools.partial(jax.jit, static_argnames=("crop",))
def _per_shift(fn, images, labels, shifts, crop):
  """Per image and shift: (correct, probability of the correct class), each (N, K)."""

  def one(shift):
    logits = fn(_view(images, shift, crop)).astype(jnp.float32)
    correct = jnp.argmax(logits, axis=-1) == labels
    p_true = jnp.take_along_axis(jax.nn.softmax(logits, axis=-1), labels[:, None], axis=-1)[:, 0]
    return correct, p_true

  correct, p_true = lax.map(one, shifts)
  return correct.T, p_true.T


# ---------------------------------------------------------------------------------------------------------------
# Output metrics.


def accuracy(apply_fn: ApplyFn, images: jax.Array, labels: jax.Array, batch_size: int | None = None) -> jax.Array:
  """Top-1 accuracy in percent.

  Args:
    apply_fn: images (N, *spatial, C) -> logits (N, K).
    images: (N, *spatial, C), 1-3 spatial dims.
    labels: (N,) int class indices.
    batch_size: images per ``apply_fn`` call (None: all at once).

  Returns:
    NumPy float64 scalar in [0, 100].

  Example:
    >>> logits_of = lambda x: x.mean(axis=(1, 2))  # channel means as logits
    >>> images = jnp.zeros((2, 4, 4, 3)).at[0, ..., 1].set(1.).at[1, ..., 2].set(1.)
    >>> float(accuracy(logits_of, images, jnp.array([1, 0])))
    50.0
  """
  _check_images(images)
  labels = _check_labels(labels, np.shape(images)[0])
  _check_batch_size(batch_size)
  fn = _as_partial("apply_fn", apply_fn)
  correct = _map_batches(lambda x, y: _correct(fn, x, y), [jnp.asarray(images), labels], batch_size)
  return 100.0 * np.mean(correct)


def consistency(apply_fn: ApplyFn, images: jax.Array, key: jax.Array, crop_size: int | Sequence[int],
                max_offset: int | Sequence[int], passes: int = 1, batch_size: int | None = None) -> jax.Array:
  """Classification consistency under crop shifts, in percent (BlurPool paper §4.2).

  For every image and pass, two crops of ``crop_size`` at independent random offsets, uniform in
  ``[0, max_offset)`` per spatial dim, are classified; the metric is the percentage of (image, pass) pairs with
  the same argmax. Offsets are drawn per image (the reference AA code draws one pair per batch; per image has the
  same expectation and lower variance) with ``random_offset_pairs(key, N, rank, 0, max_offset, passes)``.

  Args:
    apply_fn: images (N, *crop_size, C) -> logits (N, K).
    images: (N, *spatial, C), 1-3 spatial dims.
    key: a ``jax.random`` key.
    crop_size: int or one per spatial dim.
    max_offset: int >= 1 or one per spatial dim, with ``crop_size + max_offset - 1 <= spatial`` (e.g. 224
      crops of 288 images with offsets in [0, 64)); all-equal values reproduce the papers' protocol.
    passes: number of passes over the images, each with fresh offsets (the paper uses 5).
    batch_size: images per ``apply_fn`` call (each call sees ``2 * batch_size`` crops); None: all at once.

  Returns:
    NumPy float64 scalar in [0, 100].

  Example:
    >>> global_mean = lambda x: x.mean(axis=(1, 2))  # exactly invariant to crops of a constant image
    >>> images = jnp.ones((3, 8, 8, 2)).at[:, ..., 1].set(2.)
    >>> float(consistency(global_mean, images, jax.random.key(0), crop_size=5, max_offset=4))
    100.0
  """
  rank = _check_images(images)
  spatial = np.shape(images)[1:-1]
  crop = _check_crop(crop_size, rank, spatial)
  offsets = as_tuple("max_offset", max_offset, rank)
  if any(c + o - 1 > n for c, o, n in zip(crop, offsets, spatial)):  # type: ignore[arg-type]
    raise ValueError(f"crop_size + max_offset - 1 must be <= the image size {tuple(spatial)}, got crop_size="
                     f"{crop_size!r}, max_offset={max_offset!r}.")
  as_tuple("passes", passes, 1)
  _check_batch_size(batch_size)
  fn = _as_partial("apply_fn", apply_fn)
  pairs = random_offset_pairs(key, np.shape(images)[0], rank, 0, offsets, passes)
  return _pair_agreement(fn, images, pairs, crop, batch_size)


def circular_consistency(apply_fn: ApplyFn, images: jax.Array, key: jax.Array, max_shift: int, passes: int = 1,
                         batch_size: int | None = None) -> jax.Array:
  """Classification consistency under circular shifts, in percent (APS paper).

  Like ``consistency`` with ``np.roll`` shifts instead of crops: two independent shifts per image and pass,
  uniform in ``[-max_shift, max_shift)`` per spatial dim (``random_offset_pairs(key, N, rank, -max_shift,
  max_shift, passes)``). A circular-padding network with APS and global pooling scores exactly 100.

  Args:
    apply_fn: images (N, *spatial, C) -> logits (N, K).
    images: (N, *spatial, C), 1-3 spatial dims.
    key: a ``jax.random`` key.
    max_shift: int >= 1 (the APS paper uses 32 on 224 images).
    passes: number of passes over the images, each with fresh shifts.
    batch_size: images per ``apply_fn`` call (each call sees ``2 * batch_size`` images); None: all at once.

  Returns:
    NumPy float64 scalar in [0, 100].

  Example:
    >>> global_max = lambda x: x.max(axis=(1, 2))
    >>> images = jax.random.normal(jax.random.key(1), (4, 6, 6, 3))
    >>> float(circular_consistency(global_max, images, jax.random.key(0), max_shift=3))
    100.0
  """
  rank = _check_images(images)
  as_tuple("max_shift", max_shift, 1)
  as_tuple("passes", passes, 1)
  _check_batch_size(batch_size)
  fn = _as_partial("apply_fn", apply_fn)
  pairs = random_offset_pairs(key, np.shape(images)[0], rank, -max_shift, max_shift, passes)
  return _pair_agreement(fn, images, pairs, None, batch_size)


def subpixel_consistency(apply_fn: ApplyFn, images: jax.Array, key: jax.Array, max_shift: float = 1.0,
                         passes: int = 1, batch_size: int | None = None) -> jax.Array:
  """Classification consistency under sub-pixel (band-limited, circular) shifts, in percent.

  Like ``circular_consistency`` with real-valued shifts: two independent shifts per image and pass, uniform in
  ``[-max_shift, max_shift)`` per spatial dim (``jax.random.uniform(key, (passes, N, 2, rank), minval=-max_shift,
  maxval=max_shift)``), each applied with ``fourier_shift``; the metric is the percentage of (image, pass) pairs
  with the same argmax. The alias-free convnets paper (Michaeli, Michaeli & Soudry, CVPR 2023) reports this kind of
  fractional-shift consistency; a stack of ideal low-pass downsamplings and alias-free activations followed by
  global pooling scores exactly 100, a strided convolution does not.

  Args:
    apply_fn: images (N, *spatial, C) -> logits (N, K).
    images: (N, *spatial, C), 1-3 spatial dims.
    key: a ``jax.random`` key.
    max_shift: float > 0, in pixels (e.g. 0.5 for shifts within half a pixel; values > 1 mix integer and
      fractional parts).
    passes: number of passes over the images, each with fresh shifts.
    batch_size: images per ``apply_fn`` call (each call sees ``2 * batch_size`` images); None: all at once.

  Returns:
    NumPy float64 scalar in [0, 100].

  Example:
    >>> global_mean = lambda x: x.mean(axis=(1, 2))  # the mean (DC bin) is untouched by any Fourier shift
    >>> images = jax.random.normal(jax.random.key(1), (4, 6, 6, 3))
    >>> float(subpixel_consistency(global_mean, images, jax.random.key(0), max_shift=0.5))
    100.0
  """
  rank = _check_images(images)
  _check_max_shift(max_shift)
  as_tuple("passes", passes, 1)
  _check_batch_size(batch_size)
  fn = _as_partial("apply_fn", apply_fn)
  pairs = jax.random.uniform(key, (passes, np.shape(images)[0], 2, rank), jnp.float32, -max_shift, max_shift)
  return _pair_agreement(fn, images, pairs, FOURIER, batch_size)


def _check_max_shift(max_shift: float) -> None:
  if isinstance(max_shift, bool) or not isinstance(max_shift, (int, float, np.integer, np.floating)) or not (
      0 < max_shift < np.inf):
    raise ValueError(f"max_shift must be a finite number of pixels > 0, got {max_shift!r}.")


def _check_fractional_shifts(shifts: Any, rank: int) -> np.ndarray:
  """Real shifts as a (K, rank) float32 array: a 1D sequence means diagonal shifts (s, s, ...)."""
  try:
    values = np.asarray(list(shifts) if isinstance(shifts, range) else shifts, dtype=np.float64)
  except (TypeError, ValueError):
    values = np.zeros((0,))
  if values.ndim == 1 and values.size:
    values = np.repeat(values[:, None], rank, axis=1)
  if values.ndim != 2 or values.shape[1] != rank or values.shape[0] == 0 or not np.all(np.isfinite(values)):
    raise ValueError(f"shifts must be a non-empty sequence of real numbers (diagonal shifts, e.g. (0, 0.25, 0.5)) or "
                     f"a real array of shape (K, {rank}), got {shifts!r}.")
  return values.astype(np.float32)


def fractional_shift_accuracy(apply_fn: ApplyFn, images: jax.Array, labels: jax.Array, shifts: Any,
                              batch_size: int | None = None) -> np.ndarray:
  """Accuracy at each of a list of real-valued (sub-pixel) circular shifts, in percent.

  The sub-pixel counterpart of ``diagonal_shift_accuracy(..., crop_size=None, ...)``: every image is shifted by
  each shift with ``fourier_shift`` (band-limited interpolation) and classified.

  Args:
    apply_fn: images (N, *spatial, C) -> logits (N, K).
    images: (N, *spatial, C), 1-3 spatial dims.
    labels: (N,) int class indices.
    shifts: a 1D sequence of diagonal shifts ``s`` (meaning ``(s, s, ...)``, e.g. ``(0, .25, .5, .75, 1.)``) or a
      real array (K, rank).
    batch_size: images per ``apply_fn`` call (None: all at once).

  Returns:
    NumPy float64 (K,) accuracies in percent, one per shift.

  Example:
    >>> global_mean = lambda x: x.mean(axis=(1, 2))
    >>> images = jnp.zeros((2, 6, 6, 2)).at[0, ..., 1].set(1.).at[1, ..., 0].set(1.)
    >>> fractional_shift_accuracy(global_mean, images, jnp.array([1, 1]), (0, 0.5, 1)).tolist()
    [50.0, 50.0, 50.0]
  """
  rank = _check_images(images)
  labels = _check_labels(labels, np.shape(images)[0])
  values = _check_fractional_shifts(shifts, rank)
  _check_batch_size(batch_size)
  correct, _ = _per_shift_all(apply_fn, images, labels, values, FOURIER, batch_size)
  return 100.0 * np.mean(correct, axis=0, dtype=np.float64)


def _pair_agreement(fn: jax.tree_util.Partial, images: jax.Array, pairs: jax.Array, crop: tuple[int, ...] | str | None,
                    batch_size: int | None) -> jax.Array:
  per_image_pairs = np.asarray(pairs).swapaxes(0, 1)  # (N, passes, 2, rank): batch on axis 0
  same = _map_batches(lambda x, p: _same_argmax(fn, x, p, crop),
                      [jnp.asarray(images), per_image_pairs], batch_size)
  return 100.0 * np.mean(same)


def _per_shift_all(apply_fn: ApplyFn, images: jax.Array, labels: jax.Array, shifts: np.ndarray,
                   crop: tuple[int, ...] | str | None, batch_size: int | None) -> tuple[jax.Array, jax.Array]:
  fn = _as_partial("apply_fn", apply_fn)
  shifts_j = jnp.asarray(shifts)
  return _map_batches(lambda x, y: _per_shift(fn, x, y, shifts_j, crop), [jnp.asarray(images), labels],
                      batch_size)


def diagonal_shift_accuracy(apply_fn: ApplyFn, images: jax.Array, labels: jax.Array,
                            crop_size: int | Sequence[int] | None, offsets: Any,
                            batch_size: int | None = None) -> tuple[jax.Array, jax.Array]:
  """Accuracy at each of a list of shifts, and its mean (F-Conv paper Exp 3 / Table 2).

  Args:
    apply_fn: images -> logits (N, K).
    images: (N, *spatial, C), 1-3 spatial dims.
    labels: (N,) int class indices.
    crop_size: crop shifts: the window at each offset is classified (the F-Conv paper: 224 crops of 288 images);
      None: circular shifts by each offset.
    offsets: a 1D int sequence of diagonal offsets ``o`` (meaning ``(o, o, ...)``, e.g. ``range(65)``) or an int
      array (K, rank) such as ``diagonal_offsets(64)``. Crop offsets must lie in ``[0, spatial - crop_size]``.
    batch_size: images per ``apply_fn`` call (None: all at once).

  Returns:
    ``(per_offset, mean)``: NumPy float64 (K,) accuracies in percent and their mean.

  Example:
    >>> global_mean = lambda x: x.mean(axis=(1, 2))
    >>> images = jnp.zeros((2, 6, 6, 2)).at[0, ..., 1].set(1.).at[1, ..., 0].set(1.)
    >>> per_offset, mean = diagonal_shift_accuracy(global_mean, images, jnp.array([1, 1]), 4, range(3))
    >>> per_offset.tolist(), float(mean)
    ([50.0, 50.0, 50.0], 50.0)
  """
  rank = _check_images(images)
  spatial = np.shape(images)[1:-1]
  labels = _check_labels(labels, np.shape(images)[0])
  crop = _check_crop(crop_size, rank, spatial)
  shifts = _check_offsets(list(offsets) if isinstance(offsets, range) else offsets, rank, crop, spatial)
  _check_batch_size(batch_size)
  correct, _ = _per_shift_all(apply_fn, images, labels, shifts, crop, batch_size)
  per_offset = 100.0 * np.mean(correct, axis=0)
  return per_offset, np.mean(per_offset)


def adversarial_shift_accuracy(apply_fn: ApplyFn, images: jax.Array, labels: jax.Array,
                               crop_size: int | Sequence[int] | None, max_shifts: Sequence[int],
                               batch_size: int | None = None) -> jax.Array:
  """Accuracy against a shift adversary, in percent, for each maximum shift m (BlurPool paper App. B, Fig. 9).

  An image counts as correct at ``m`` only if it is classified correctly at every shift in ``[-m, m]`` per
  spatial dim (a ``(2m+1)**rank`` window; m = 0 is plain accuracy, so the curve never increases with m).
  All shifts of the largest m are evaluated once and reused for the smaller ones.

  Args:
    apply_fn: images -> logits (N, K).
    images: (N, *spatial, C), 1-3 spatial dims.
    labels: (N,) int class indices.
    crop_size: crop shifts: the window is the centred crop (top-left ``(spatial - crop_size) // 2``) moved by
      each shift, which must stay inside the image; None: circular shifts of the whole image (the paper's CIFAR
      setting, where m = 16 on 32×32 covers all 1024 positions).
    max_shifts: non-negative ints m, e.g. ``range(17)``.
    batch_size: images per ``apply_fn`` call (None: all at once).

  Returns:
    NumPy float64 (len(max_shifts),) accuracies in percent.

  Example:
    >>> global_mean = lambda x: x.mean(axis=(1, 2))
    >>> images = jnp.zeros((2, 6, 6, 2)).at[0, ..., 1].set(1.).at[1, ..., 0].set(1.)
    >>> adversarial_shift_accuracy(global_mean, images, jnp.array([1, 0]), None, [0, 2]).tolist()
    [100.0, 100.0]
  """
  rank = _check_images(images)
  spatial = np.shape(images)[1:-1]
  labels = _check_labels(labels, np.shape(images)[0])
  crop = _check_crop(crop_size, rank, spatial)
  ms = np.asarray(list(max_shifts))
  if ms.ndim != 1 or ms.size == 0 or not np.issubdtype(ms.dtype, np.integer) or ms.min() < 0:
    raise ValueError(f"max_shifts must be a non-empty sequence of ints >= 0, got {max_shifts!r}.")
  _check_batch_size(batch_size)
  grid = shift_grid(int(ms.max()), rank)
  shifts = grid
  if crop is not None:
    centre = (np.asarray(spatial) - np.asarray(crop)) // 2
    shifts = _check_offsets(grid + centre, rank, crop, spatial)
  correct, _ = _per_shift_all(apply_fn, images, labels, shifts, crop, batch_size)
  radius = np.abs(grid).max(axis=1)  # Chebyshev radius of each shift
  return np.array([100.0 * np.mean(np.all(correct[:, radius <= m], axis=1)) for m in ms])


def classification_variation(apply_fn: ApplyFn, images: jax.Array, labels: jax.Array,
                             crop_size: int | Sequence[int] | None, offsets: Any,
                             batch_size: int | None = None) -> jax.Array:
  """Mean over images of the standard deviation over shifts of p(correct class) (BlurPool paper §4.2, Fig. 6).

  The probability is ``softmax(logits)`` at the label; the standard deviation is the population one (ddof 0)
  over the given shifts.

  Args:
    apply_fn: images -> logits (N, K).
    images: (N, *spatial, C), 1-3 spatial dims.
    labels: (N,) int class indices.
    crop_size: crop shifts at each offset, or None for circular shifts by each offset.
    offsets: a 1D int sequence of diagonal offsets or an int array (K, rank) (e.g. ``shift_grid(16)`` with
      ``crop_size=None`` for all circular shifts).
    batch_size: images per ``apply_fn`` call (None: all at once).

  Returns:
    NumPy float64 scalar >= 0 (0 for an exactly shift-invariant classifier).

  Example:
    >>> global_max = lambda x: x.max(axis=(1, 2))  # exact under any reordering, so exactly invariant
    >>> images = jax.random.normal(jax.random.key(0), (2, 6, 6, 3))
    >>> float(classification_variation(global_max, images, jnp.array([0, 2]), None, shift_grid(1)))
    0.0
  """
  rank = _check_images(images)
  spatial = np.shape(images)[1:-1]
  labels = _check_labels(labels, np.shape(images)[0])
  crop = _check_crop(crop_size, rank, spatial)
  shifts = _check_offsets(list(offsets) if isinstance(offsets, range) else offsets, rank, crop, spatial)
  _check_batch_size(batch_size)
  _, p_true = _per_shift_all(apply_fn, images, labels, shifts, crop, batch_size)
  # Centre on the first shift's value before the std: equal probabilities then give exactly 0 (a float32 mean
  # of K equal values can be off by an ulp, leaving ~1e-8 for a perfectly invariant model).
  p_true = p_true.astype(np.float64)
  return np.mean(np.std(p_true - p_true[:, :1], axis=1))


# ---------------------------------------------------------------------------------------------------------------
# Internal representations.


def cosine_distance(a: jax.Array, b: jax.Array) -> jax.Array:
  """Per-sample cosine distance ``1 - <a, b> / (|a| |b|)`` over all non-batch axes.

  Two all-zero samples are at distance 0 (identical); one all-zero sample against a non-zero one at distance 1.

  Args:
    a: (N, ...) array.
    b: array of the same shape.

  Returns:
    float32 (N,) distances in [0, 2].

  Example:
    >>> cosine_distance(jnp.array([[1., 0.], [1., 1.]]), jnp.array([[0., 2.], [2., 2.]])).tolist()
    [1.0, 0.0]
  """
  if np.shape(a) != np.shape(b) or len(np.shape(a)) < 1:
    raise ValueError(f"a and b must have the same shape (N, ...), got {np.shape(a)} and {np.shape(b)}.")
  a = jnp.reshape(a, (a.shape[0], -1)).astype(jnp.float32)
  b = jnp.reshape(b, (b.shape[0], -1)).astype(jnp.float32)
  dot = jnp.sum(a * b, axis=1)
  norms = jnp.linalg.norm(a, axis=1) * jnp.linalg.norm(b, axis=1)
  both_zero = (jnp.max(jnp.abs(a), axis=1) == 0) & (jnp.max(jnp.abs(b), axis=1) == 0)
  # Clipped because rounding can push the cosine of identical vectors just past 1.
  distance = jnp.clip(1.0 - dot / jnp.where(norms > 0, norms, 1.0), 0.0, 2.0)
  return jnp.where(both_zero, 0.0, distance)


def _layer_stride(name: str, input_spatial: Sequence[int], shape: Sequence[int]) -> tuple[int, ...] | None:
  """Total stride of a feature map (N, *spatial_l, C) relative to the input; None for (N, C) (no space)."""
  if len(shape) == 2:
    return None
  if len(shape) != len(input_spatial) + 2:
    raise ValueError(f"feature {name!r} must have shape (N, C) or (N, *spatial, C) with {len(input_spatial)} "
                     f"spatial dims, got shape {tuple(shape)}.")
  spatial = shape[1:-1]
  if any(s == 0 or n % s for n, s in zip(input_spatial, spatial)):
    raise ValueError(f"feature {name!r} has spatial shape {tuple(spatial)}, which does not divide the input size "
                     f"{tuple(input_spatial)}: circular equivariance is only defined for maps whose size is the "
                     f"input size over an integer stride (no growing full/valid maps).")
  return tuple(n // s for n, s in zip(input_spatial, spatial))


def _upsample(f: jax.Array, stride: tuple[int, ...]) -> jax.Array:
  for d, s in enumerate(stride):
    f = jnp.repeat(f, s, axis=d + 1)
  return f


@jax.jit
def _equivariance(fn, images, shifts):
  input_spatial = images.shape[1:-1]
  base = fn(images)
  if not isinstance(base, Mapping):
    raise ValueError(f"features_fn must return a dict of named feature maps, got {type(base).__name__}.")
  strides = {name: _layer_stride(name, input_spatial, f.shape) for name, f in base.items()}

  def one(shift):
    moved = fn(circular_shift(images, shift))
    out = {}
    for name, f in base.items():
      if strides[name] is None:  # no spatial dims left: equivariance is invariance
        out[name] = cosine_distance(f, moved[name])
      else:
        # Compare at input resolution (BlurPool paper §3.1): nearest-upsample both maps by the layer's stride,
        # then roll the unshifted one by the full input shift. For shifts that are multiples of the stride this
        # equals rolling the map by shift / stride (repeating entries does not change a cosine).
        up = _upsample(f, strides[name])
        out[name] = cosine_distance(circular_shift(up, shift), _upsample(moved[name], strides[name]))
    return out

  distances = lax.map(one, shifts)  # name -> (K, N)
  return {name: d.T for name, d in distances.items()}


def feature_equivariance_distance(features_fn: ApplyFn, images: jax.Array, shifts: Any,
                                  batch_size: int | None = None) -> dict[str, jax.Array]:
  """Distance from circular shift-equivariance per layer and shift (BlurPool paper Fig. 4).

  For each named feature map ``F`` and input shift ``s``: the cosine distance between ``Shift_s(F(X))`` and
  ``F(Shift_s(X))`` (circular shifts), averaged over images. A map of stride ``r`` (input size / map size per
  dim, which must be an integer) is compared at input resolution, as in the paper: both maps are
  nearest-upsampled by ``r`` and the first is rolled by the full ``s``. Shifts that are multiples of ``r``
  therefore test exact equivariance (``F(Shift_s X) = Shift_{s/r} F(X)``), and other shifts measure how far the
  map is from the nearest representable shift (the modulo-N pattern of the paper's heat maps). Feature arrays
  of shape (N, C) (after global pooling) give the invariance distance ``d(F(X), F(Shift_s X))``.

  Args:
    features_fn: images (N, *spatial, C) -> dict name -> (N, *spatial_l, C_l) or (N, C_l).
    images: (N, *spatial, C), 1-3 spatial dims.
    shifts: int array (K, rank) of input shifts (e.g. ``shift_grid(4)`` for a heat map) or a 1D int sequence
      of diagonal shifts.
    batch_size: images per ``features_fn`` call (None: all at once).

  Returns:
    dict name -> NumPy float64 (K,) mean cosine distance per shift (reshape to the shift grid for a heat map).

  Example:
    >>> features = lambda x: {'pixels': x, 'pooled': x[:, ::2, ::2]}
    >>> images = jax.random.normal(jax.random.key(0), (2, 4, 4, 1))
    >>> d = feature_equivariance_distance(features, images, [0, 1, 2])
    >>> [round(v, 4) for v in d['pixels'].tolist()], bool(d['pooled'][1] > 0), round(float(d['pooled'][2]), 4)
    ([0.0, 0.0, 0.0], True, 0.0)
  """
  rank = _check_images(images)
  shifts_np = _check_offsets(list(shifts) if isinstance(shifts, range) else shifts, rank, None,
                             np.shape(images)[1:-1])
  _check_batch_size(batch_size)
  fn = _as_partial("features_fn", features_fn)
  shifts_j = jnp.asarray(shifts_np)
  per_image = _map_batches(lambda x: _equivariance(fn, x, shifts_j), [jnp.asarray(images)], batch_size)
  return {name: np.mean(d, axis=0, dtype=np.float64) for name, d in per_image.items()}


def _path_name(path: Sequence[Any]) -> str:
  parts = []
  for entry in path:
    for attr in ("key", "name", "idx"):
      if hasattr(entry, attr):
        parts.append(str(getattr(entry, attr)))
        break
    else:
      parts.append(str(entry))
  return "/".join(parts)


def filter_total_variation(params: Any, spatial_dims: int = 2, per_filter: bool = False) -> dict[str, Any]:
  """Normalised total variation of every conv kernel in a params pytree (BlurPool paper Fig. 7).

  For each output filter ``w = kernel[..., o]`` (spatial taps × input channels) of a kernel with layout
  ``(*spatial, I, O)`` (Flax HWIO):

      TV(w) = sum_{axis d} sum |w[i + e_d] - w[i]|  /  sum |w|,

  the absolute differences between neighbouring taps along each spatial axis (horizontal and vertical in 2D),
  summed over input channels, divided by the filter's l1 norm (scale invariant, after Ruderman et al. 2018; an
  all-zero filter has TV 0). A 1×1 kernel has TV 0; a k×k constant filter has TV 0; lower is smoother.

  Args:
    params: a pytree (e.g. Flax ``variables['params']``); every leaf with ``spatial_dims + 2`` dims is taken to
      be a conv kernel (4D HWIO for 2D convs; Dense kernels are 2D and biases 1D, so they are skipped).
    spatial_dims: 1, 2 or 3.
    per_filter: return each kernel's (O,) per-filter values instead of their mean.

  Returns:
    dict ``'path/to/kernel'`` -> mean TV over output filters (Python float), or a float64 (O,) NumPy array if
    ``per_filter``.

  Example:
    >>> kernel = jnp.array([[1., 0.], [0., 0.]]).reshape(2, 2, 1, 1)
    >>> filter_total_variation({'conv': {'kernel': kernel}})
    {'conv/kernel': 2.0}
  """
  if spatial_dims not in (1, 2, 3):
    raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims!r}.")
  leaves = jax.tree_util.tree_flatten_with_path(params)[0]
  result = {}
  for path, leaf in leaves:
    if np.ndim(leaf) != spatial_dims + 2:
      continue
    # NumPy in float64: a reporting metric on concrete parameters, no per-shape compiles needed.
    w = np.asarray(leaf, np.float64)
    filter_axes = tuple(range(w.ndim - 1))
    variation = sum(np.abs(np.diff(w, axis=d)).sum(axis=filter_axes) for d in range(spatial_dims))
    l1 = np.abs(w).sum(axis=filter_axes)
    tv = np.where(l1 > 0, variation / np.where(l1 > 0, l1, 1.0), 0.0)
    result[_path_name(path)] = tv if per_filter else float(tv.mean())
  return result


__all__ = ["accuracy", "consistency", "circular_consistency", "subpixel_consistency", "diagonal_shift_accuracy",
           "fractional_shift_accuracy", "adversarial_shift_accuracy",
           "classification_variation", "cosine_distance", "feature_equivariance_distance", "filter_total_variation"]
