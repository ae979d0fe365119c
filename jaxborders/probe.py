"""How much absolute position a network's features encode (Islam, Jia & Bruce, ICLR 2020, "How much position
information do convolutional neural networks encode?").

The paper freezes a network, takes the feature maps of some of its layers on images whose content carries no
position, and trains a tiny read-out ("PosENet") to predict a fixed ground-truth position map from them: a
horizontal or vertical gradient, a centred Gaussian, horizontal or vertical stripes. The same map is the target
for every image, so the read-out can only succeed if the features themselves say where each pixel is. Its
measures are the Spearman correlation (SPC) between predicted and true map and the mean absolute error (MAE).

* ``position_patterns(height, width)``: the ground-truth maps, values in [0, 1].
* ``probe_position(features, pattern, key=...)``: one read-out trained on part of the images, scored on the rest.
* ``position_information(model, variables, images, key=...)``: one probe per named layer of a model, in network
  order.
* ``position_free_images(key, n, shape, kind)``: the paper's synthetic inputs (noise, black, white) and a smooth
  stationary noise; every pixel of them is distributed alike, so any position the probe finds comes from the
  network (its borders), not from the content.

**Where we match the authors' code** (the paper's release, ``train_network.py`` with its ``decoder`` build; the
read-out is the ``PosENet`` of the paper): the backbone is frozen; features of several layers are resized
bilinearly to one size and concatenated on channels; the read-out is one 3×3 convolution with a bias and **no
padding** (their ``decoder_pad=0`` default) trained with a mean squared error to the same map for every image;
the ground truths are min-max normalised to [0, 1]; the five patterns are theirs.

**Where we differ, on purpose:**

* The read-out's valid 3×3 output is ``(H - 2, W - 2)``; we score it against the pattern's interior (its
  one-pixel border dropped) instead of resizing the output back up. A zero-padded read-out would itself
  inject position through its padding, which is exactly what is being measured.
* Full-batch Adam (``optax.adam``) for ``steps`` steps on features standardised per channel with the training
  images' statistics, instead of 15 epochs of SGD with momentum on mini-batches: the read-out is affine, so the
  standardisation changes its conditioning, not what it can express, and a few hundred full-batch steps converge
  in well under a second at the sizes used here. All patterns of a call are fitted at once (``jax.vmap``).
* Features are resized to the pattern's size (the authors resize to a fixed 28×28 and resize the target); the
  target size is the pattern's.
* The data split is random from ``key`` (``holdout`` of the images are scored); the authors train on one data
  set (DUT-S) and score on another (PASCAL-S) and on their synthetic images.
* Spearman correlation: per held-out image, Pearson's correlation of the *ranks* of the predicted and true maps
  over pixels (ties get their average rank, as ``scipy.stats.spearmanr``), then averaged over images; an image
  whose prediction (or target) is constant scores 0 (no order information). A common re-implementation
  (TaoranJ/CNN_encodes_position_information) averages Pearson's correlation per image instead. MAE is the mean
  absolute error over every scored pixel of every held-out image, as the authors' ``L1Loss``.

**Position-free content.** A constant map and a circularly shift-invariant one (e.g. a circular convolution of
i.i.d. noise: every location distributed alike) carry no position: the read-out can do no better than predicting
the pattern's mean everywhere (Spearman ~0, MAE ~ the mean predictor's). A coordinate channel gives it the
position outright (Spearman ~1, MAE ~0 for the gradients). ``tests/test_probe.py`` checks all three.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from jaxborders.models.common import INTERMEDIATES, intermediates

PATTERNS = ("horizontal", "vertical", "gaussian", "horizontal_stripes", "vertical_stripes")
READOUTS = ("conv3x3", "linear")
IMAGE_KINDS = ("noise", "smooth_noise", "black", "white")
STRIPE_PERIODS = 4  # periods per stripe pattern on large maps (the paper's figure shows a few; ours is a choice)


# ---------------------------------------------------------------------------------------------------------------
# Argument checks (plain Python on static values, before any work).


def _check_names(name: str, values: Any, choices: Sequence[str]) -> tuple[str, ...]:
  if isinstance(values, str):
    values = (values,)
  try:
    values = tuple(values)
  except TypeError:
    values = (values,)
  bad = [v for v in values if v not in choices]
  if bad or not values:
    raise ValueError(f"{name}={values!r} is not supported; pass a non-empty sequence of: "
                     f"{', '.join(map(repr, choices))}.")
  return values


def _check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
    raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}.")
  return int(value)


def _check_positive_float(name: str, value: Any) -> float:
  if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not (
      0 < value < np.inf):
    raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")
  return float(value)


def _check_holdout(holdout: Any) -> float:
  if isinstance(holdout, bool) or not isinstance(holdout, (int, float, np.floating)) or not 0 < holdout < 1:
    raise ValueError(f"holdout must be a fraction of the images in (0, 1), got {holdout!r}.")
  return float(holdout)


def _check_readout(readout: Any) -> str:
  if readout not in READOUTS:
    raise ValueError(f"readout={readout!r} is not supported; accepted values: {', '.join(map(repr, READOUTS))}.")
  return readout


def _check_features(features: Any) -> list[jax.Array]:
  maps = [features] if not isinstance(features, (list, tuple)) else list(features)
  if not maps:
    raise ValueError("features must be an array (N, H, W, C) or a non-empty list of them, got an empty list.")
  for i, f in enumerate(maps):
    if np.ndim(f) != 4:
      raise ValueError(f"features must be an array (N, H, W, C) or a list of them (2D maps, channels last); entry "
                       f"{i} has shape {np.shape(f)}.")
  batch = {np.shape(f)[0] for f in maps}
  if len(batch) != 1:
    raise ValueError(f"features must all hold the same images (same N), got N = {sorted(batch)}.")
  return [jnp.asarray(f) for f in maps]


# ---------------------------------------------------------------------------------------------------------------
# Ground truth and inputs.


def _pattern(name: str, height: int, width: int) -> np.ndarray:
  rows = np.linspace(0.0, 1.0, height)[:, None] * np.ones((1, width))
  cols = np.ones((height, 1)) * np.linspace(0.0, 1.0, width)[None, :]
  # At least 4 samples per stripe period (fewer would alias the stripes away on small maps).
  periods_rows = max(1, min(STRIPE_PERIODS, (height - 1) // 4))
  periods_cols = max(1, min(STRIPE_PERIODS, (width - 1) // 4))
  if name == "horizontal":  # left to right
    values = cols
  elif name == "vertical":  # top to bottom
    values = rows
  elif name == "gaussian":  # centred, sigma a quarter of each side
    values = np.exp(-((rows - 0.5) ** 2 + (cols - 0.5) ** 2) / (2 * 0.25 ** 2))
  elif name == "horizontal_stripes":  # horizontal bands: varies from top to bottom
    values = 0.5 - 0.5 * np.cos(2 * np.pi * periods_rows * rows)
  else:  # vertical_stripes: vertical bands, varies from left to right
    values = 0.5 - 0.5 * np.cos(2 * np.pi * periods_cols * cols)
  low, high = values.min(), values.max()
  return ((values - low) / (high - low if high > low else 1.0)).astype(np.float32)


def position_patterns(height: int, width: int, names: Sequence[str] = PATTERNS) -> dict[str, np.ndarray]:
  """The paper's ground-truth position maps, min-max normalised to [0, 1] (as the authors normalise theirs).

  With ``r = i / (H - 1)`` and ``c = j / (W - 1)`` (row ``i``, column ``j``):
  ``horizontal = c``, ``vertical = r``, ``gaussian = exp(-((r - 1/2)^2 + (c - 1/2)^2) / (2 * (1/4)^2))``,
  ``horizontal_stripes = (1 - cos(2 pi p_H r)) / 2`` (horizontal bands), ``vertical_stripes = (1 - cos(2 pi p_W
  c)) / 2`` with ``p = min(4, (side - 1) // 4)`` periods (at least 1; so that each period spans at least 4
  pixels), each then min-max normalised. The authors ship their maps as images; the Gaussian's width and the
  stripes' count and profile here are ours.

  Args:
    height: H >= 2.
    width: W >= 2.
    names: which patterns, from ``PATTERNS``.

  Returns:
    dict name -> float32 (H, W) array with min 0 and max 1, in the order of ``names``.

  Example:
    >>> maps = position_patterns(2, 3, ('horizontal', 'vertical'))
    >>> maps['horizontal'].tolist(), maps['vertical'].tolist()
    ([[0.0, 0.5, 1.0], [0.0, 0.5, 1.0]], [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
  """
  height = _check_positive_int("height", height, 2)
  width = _check_positive_int("width", width, 2)
  names = _check_names("names", names, PATTERNS)
  return {name: _pattern(name, height, width) for name in names}


def position_free_images(key: jax.Array, n: int, shape: Sequence[int], kind: str = "noise") -> jax.Array:
  """Inputs whose content carries no position: every pixel distributed alike (the paper's synthetic images).

  ``'noise'``: i.i.d. uniform [0, 1) (the paper's noise images); ``'smooth_noise'``: that noise circularly
  blurred by a 5×5 box (stationary, spatially correlated, rescaled to [0, 1] per image); ``'black'`` / ``'white'``:
  all 0 / all 1 (the paper's constant images; every image is the same).

  Args:
    key: a ``jax.random`` key.
    n: number of images, >= 1.
    shape: (H, W, C).
    kind: one of ``IMAGE_KINDS``.

  Returns:
    float32 (n, H, W, C).

  Example:
    >>> x = position_free_images(jax.random.key(0), 2, (4, 4, 3))
    >>> x.shape, bool(x.min() >= 0), bool(x.max() < 1)
    ((2, 4, 4, 3), True, True)
    >>> float(position_free_images(jax.random.key(0), 1, (2, 2, 1), 'white').sum())
    4.0
  """
  n = _check_positive_int("n", n)
  try:
    dims = tuple(_check_positive_int("shape", int(d) if isinstance(d, np.integer) else d) for d in shape)
  except TypeError:
    dims = ()
  if len(dims) != 3:
    raise ValueError(f"shape must be (H, W, C) with ints >= 1, got {shape!r}.")
  if kind not in IMAGE_KINDS:
    raise ValueError(f"kind={kind!r} is not supported; accepted values: {', '.join(map(repr, IMAGE_KINDS))}.")
  if kind == "black":
    return jnp.zeros((n, *dims), jnp.float32)
  if kind == "white":
    return jnp.ones((n, *dims), jnp.float32)
  return _noise_images(key, (n, *dims), kind == "smooth_noise")


@functools.partial(jax.jit, static_argnames=("shape", "smooth"))
def _noise_images(key: jax.Array, shape: tuple[int, ...], smooth: bool) -> jax.Array:
  noise = jax.random.uniform(key, shape, jnp.float32)
  if not smooth:
    return noise
  blurred = sum(jnp.roll(noise, (di, dj), axis=(1, 2)) for di in range(-2, 3) for dj in range(-2, 3)) / 25.0
  low = blurred.min(axis=(1, 2, 3), keepdims=True)
  high = blurred.max(axis=(1, 2, 3), keepdims=True)
  return jnp.clip((blurred - low) / jnp.where(high > low, high - low, 1.0), 0.0, 1.0 - 1e-7)


# ---------------------------------------------------------------------------------------------------------------
# Measures (NumPy, on concrete held-out predictions).


def _average_ranks(values: np.ndarray) -> np.ndarray:
  """Ranks 1..M along the last axis, ties sharing their average rank (as ``scipy.stats.rankdata``)."""
  order = np.argsort(values, axis=-1, kind="stable")
  ordered = np.take_along_axis(values, order, axis=-1)
  m = values.shape[-1]
  ranks = np.empty(values.shape, np.float64)
  for row in np.ndindex(values.shape[:-1]):
    sorted_row = ordered[row]
    starts = np.flatnonzero(np.r_[True, sorted_row[1:] != sorted_row[:-1]])
    ends = np.r_[starts[1:], m]
    average = (starts + ends + 1) / 2.0  # ranks starts+1 .. ends, averaged
    ranks[row][order[row]] = np.repeat(average, ends - starts)
  return ranks


def spearman_correlation(predicted: Any, target: Any) -> np.ndarray:
  """Spearman's rank correlation per sample: Pearson's correlation of average ranks over the non-batch axes.

  A sample whose prediction or target is constant has no order to correlate and scores 0.

  Args:
    predicted: (N, ...) array.
    target: array of the same shape.

  Returns:
    float64 (N,) correlations in [-1, 1].

  Example:
    >>> spearman_correlation(np.array([[1., 5., 9.], [3., 2., 1.], [2., 2., 2.]]), np.array([[0., 1., 4.]] * 3))
    array([ 1., -1.,  0.])
  """
  a = np.asarray(predicted, np.float64)
  b = np.asarray(target, np.float64)
  if a.shape != b.shape or a.ndim < 2:
    raise ValueError(f"predicted and target must have the same shape (N, ...), got {a.shape} and {b.shape}.")
  ra = _average_ranks(a.reshape(a.shape[0], -1))
  rb = _average_ranks(b.reshape(b.shape[0], -1))
  ra -= ra.mean(axis=1, keepdims=True)
  rb -= rb.mean(axis=1, keepdims=True)
  norms = np.sqrt((ra * ra).sum(axis=1) * (rb * rb).sum(axis=1))
  return np.where(norms > 0, (ra * rb).sum(axis=1) / np.where(norms > 0, norms, 1.0), 0.0)


# ---------------------------------------------------------------------------------------------------------------
# The read-out.


@functools.partial(jax.jit, static_argnames=("size",))
def _resize_concat(maps: Sequence[jax.Array], size: tuple[int, int]) -> jax.Array:
  """Every map bilinearly resized to ``size`` (half-pixel centres, like PyTorch's ``align_corners=False``; no
  anti-aliasing) and concatenated on channels."""
  resized = [m.astype(jnp.float32) if m.shape[1:3] == size else
             jax.image.resize(m.astype(jnp.float32), (m.shape[0], *size, m.shape[3]), "bilinear", antialias=False)
             for m in maps]
  return jnp.concatenate(resized, axis=-1)


def _predict(params: dict[str, jax.Array], x: jax.Array) -> jax.Array:
  """The read-out: a valid (unpadded) conv of ``params['kernel']`` (k, k, C) plus bias -> (N, H-k+1, W-k+1)."""
  kernel = params["kernel"][..., None]  # (k, k, C, 1)
  y = lax.conv_general_dilated(x, kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                               precision=lax.Precision.HIGHEST)
  return y[..., 0] + params["bias"]


@functools.partial(jax.jit, static_argnames=("kernel_size", "steps"))
def _fit(x, targets, train_idx, test_idx, key, learning_rate, kernel_size, steps):
  """One read-out per target (vmapped), in one compiled program: standardise the features x (N, H, W, C) with
  the training images' statistics, fit by Adam, predict the held-out images. targets: (P, H, W) full-size maps.
  Returns the held-out predictions (P, N_test, h, w) and the scored targets (P, h, w), ``h = H - kernel_size + 1``.
  (Resizing stays outside: layers of one network then share this program per channel count.)
  """
  size = targets.shape[1:]
  train_x, test_x = x[train_idx], x[test_idx]
  mean = train_x.mean(axis=(0, 1, 2))
  std = train_x.std(axis=(0, 1, 2))
  scale = jnp.where(std > 1e-6 * (1.0 + jnp.abs(mean)), std, 1.0)  # constant channels: centred to exactly 0
  train_x, test_x = (train_x - mean) / scale, (test_x - mean) / scale
  crop = (kernel_size - 1) // 2
  inner = targets[:, crop:size[0] - crop, crop:size[1] - crop]
  channels = x.shape[-1]
  fan = kernel_size * kernel_size * channels
  limit = jnp.sqrt(6.0 / (fan + kernel_size * kernel_size))  # Glorot uniform (PosENet: xavier_uniform_)
  optimizer = optax.adam(learning_rate)

  def one(target):
    params = {"kernel": jax.random.uniform(key, (kernel_size, kernel_size, channels), jnp.float32, -limit, limit),
              "bias": jnp.zeros((), jnp.float32)}

    def loss(p):
      return jnp.mean((_predict(p, train_x) - target) ** 2)

    def step(carry, _):
      p, state = carry
      grads = jax.grad(loss)(p)
      updates, state = optimizer.update(grads, state, p)
      return (optax.apply_updates(p, updates), state), None

    (params, _), _ = lax.scan(step, (params, optimizer.init(params)), None, length=steps)
    return _predict(params, test_x)

  return jax.vmap(one)(inner), inner


def _split(key: jax.Array, n: int, holdout: float) -> tuple[np.ndarray, np.ndarray]:
  n_test = min(max(1, int(round(n * holdout))), n - 1)
  order = np.asarray(jax.random.permutation(key, n))
  return np.sort(order[n_test:]), np.sort(order[:n_test])


def _probe(maps: list[jax.Array], patterns: Mapping[str, np.ndarray], key: jax.Array, steps: int,
           learning_rate: float, readout: str, holdout: float) -> dict[str, dict[str, float]]:
  """Fits one read-out per pattern (all patterns share a size) and scores it on the held-out images."""
  size = next(iter(patterns.values())).shape
  kernel_size = 3 if readout == "conv3x3" else 1
  if kernel_size == 3 and min(size) < 3:
    raise ValueError(f"readout='conv3x3' needs a pattern of at least 3×3 (its valid output drops a border), got "
                     f"{size}; use readout='linear' or a larger pattern.")
  split_key, init_key = jax.random.split(key)
  train_idx, test_idx = _split(split_key, maps[0].shape[0], holdout)
  targets = jnp.stack([jnp.asarray(p, jnp.float32) for p in patterns.values()])
  x = _resize_concat(maps, tuple(size))
  predictions, inner = _fit(x, targets, train_idx, test_idx, init_key, jnp.float32(learning_rate),
                            kernel_size, steps)
  predictions, targets = np.asarray(predictions), np.asarray(inner)
  results = {}
  for name, predicted, target in zip(patterns, predictions, targets):
    target_maps = np.broadcast_to(target, predicted.shape)
    results[name] = {"spearman": float(np.mean(spearman_correlation(predicted, target_maps))),
                     "mae": float(np.mean(np.abs(predicted.astype(np.float64) - target_maps)))}
  return results


def _check_common(key: Any, steps: Any, learning_rate: Any, readout: Any, holdout: Any) -> None:
  if not (isinstance(key, jax.Array) or isinstance(key, np.ndarray)):
    raise ValueError(f"key must be a jax.random key (jax.random.key(seed)), got {key!r}.")
  _check_positive_int("steps", steps)
  _check_positive_float("learning_rate", learning_rate)
  _check_readout(readout)
  _check_holdout(holdout)


def probe_position(features: Any, pattern: str | Any, *, key: jax.Array, steps: int = 300,
                   learning_rate: float = 0.05, readout: str = "conv3x3",
                   holdout: float = 0.5) -> dict[str, float]:
  """Trains a read-out to predict a position map from frozen features; its held-out Spearman correlation and MAE.

  The features of every image are resized (bilinear) to the pattern's size and concatenated on channels; a
  read-out (``'conv3x3'``: the paper's PosENet, one valid 3×3 conv with bias; ``'linear'``: a per-pixel affine
  map, a 1×1 conv) is trained by full-batch Adam on the squared error to the pattern — the same target for every
  image — on ``1 - holdout`` of the images, and scored on the rest (see the module docstring for the measures
  and where this matches the authors' code).

  Args:
    features: (N, H_l, W_l, C_l) array, or a list of them (same N; e.g. several layers) at any resolutions.
    pattern: a float (H, W) map (e.g. from ``position_patterns``) or a name from ``PATTERNS`` (then made at the
      largest features' size).
    key: ``jax.random`` key; it fixes the data split and the read-out's initialisation (deterministic).
    steps: Adam steps, >= 1.
    learning_rate: Adam's step size, > 0.
    readout: ``'conv3x3'`` or ``'linear'``.
    holdout: fraction of the images scored (at least one image on each side), in (0, 1).

  Returns:
    ``{"spearman": float, "mae": float}`` on the held-out images.

  Example:
    >>> coordinate = jnp.broadcast_to(jnp.linspace(0., 1., 8)[None, None, :, None], (6, 8, 8, 1))
    >>> result = probe_position(coordinate, 'horizontal', key=jax.random.key(0))
    >>> round(result['spearman'], 3), result['mae'] < 0.02
    (1.0, True)
  """
  _check_common(key, steps, learning_rate, readout, holdout)
  maps = _check_features(features)
  if maps[0].shape[0] < 2:
    raise ValueError(f"features must hold at least 2 images (one to train on, one to score), got N = "
                     f"{maps[0].shape[0]}.")
  if isinstance(pattern, str):
    _check_names("pattern", (pattern,), PATTERNS)
    height = max(m.shape[1] for m in maps)
    width = max(m.shape[2] for m in maps)
    target = position_patterns(height, width, (pattern,))[pattern]
  else:
    target = np.asarray(pattern, np.float32)
    if target.ndim != 2 or min(target.shape) < 1 or not np.all(np.isfinite(target)):
      raise ValueError(f"pattern must be a finite float (H, W) map or one of {', '.join(map(repr, PATTERNS))}, got "
                       f"shape {target.shape}.")
  return _probe(maps, {"pattern": target}, key, steps, learning_rate, readout, holdout)["pattern"]


# ---------------------------------------------------------------------------------------------------------------
# Per layer of a model.


def _accepts_train(model: Any) -> bool:
  try:
    return "train" in inspect.signature(type(model).__call__).parameters
  except (TypeError, ValueError):
    return False


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, jax.Array]:
  """Nested sown values as ``'Sub/name'`` -> array, in insertion order; Flax's default ``sow`` keeps a tuple of
  every value sown under a name: the last one is taken."""
  flat: dict[str, jax.Array] = {}
  for name, value in tree.items():
    path = f"{prefix}{name}"
    if isinstance(value, Mapping):
      flat.update(_flatten(value, path + "/"))
    elif isinstance(value, (tuple, list)):
      flat[path] = value[-1]
    else:
      flat[path] = value
  return flat


def layer_features(model: Any, variables: Any, images: jax.Array, train: bool = False) -> dict[str, jax.Array]:
  """Every sown intermediate map of ``model`` on ``images``, in network order, as ``name -> array``.

  Registered models go through ``jaxborders.models.intermediates``; any other Flax linen module works if it
  records its maps in the ``'intermediates'`` collection — with ``jaxborders.models.common.sow(self, name, x)``
  (one value per name) or Flax's own ``self.sow('intermediates', name, x)`` (a tuple; the last value is taken).
  Maps sown by submodules are named ``'Submodule/name'``. ``train`` is passed only to modules whose
  ``__call__`` takes it.

  Example:
    >>> import flax.linen as nn
    >>> class Tiny(nn.Module):
    ...   @nn.compact
    ...   def __call__(self, x):
    ...     x = nn.Conv(2, (3, 3))(x)
    ...     self.sow('intermediates', 'conv', x)
    ...     return x.mean(axis=(1, 2))
    >>> x = jnp.zeros((1, 4, 4, 1))
    >>> {k: v.shape for k, v in layer_features(Tiny(), Tiny().init(jax.random.key(0), x), x).items()}
    {'conv': (1, 4, 4, 2)}
  """
  def run(variables: Any, images: jax.Array) -> Any:
    if _accepts_train(model):
      return intermediates(model, variables, images, train=train)
    _, state = model.apply(variables, images, mutable=[INTERMEDIATES])
    return state.get(INTERMEDIATES, {})

  # One compiled forward pass (an OrderedDict keeps its order through jit) instead of op-by-op dispatch.
  return _flatten(jax.jit(run)(variables, images))


def position_information(model: Any, variables: Any, images: jax.Array, *, key: jax.Array,
                         layers: Sequence[str] | None = None, patterns: Sequence[str] = PATTERNS,
                         steps: int = 300, learning_rate: float = 0.05, readout: str = "conv3x3",
                         holdout: float = 0.5, pattern_size: Sequence[int] | None = None,
                         train: bool = False) -> dict[str, dict[str, dict[str, float]]]:
  """Position information of every named layer of a frozen network: one ``probe_position`` per layer and pattern.

  Args:
    model: a registered model (``jaxborders.models.get_model``) or any Flax linen module that sows its maps
      into ``'intermediates'`` (see ``layer_features``).
    variables: its variables (frozen: nothing is trained but the read-outs).
    images: (N, H, W, C) inputs, e.g. ``position_free_images`` or natural images; N >= 2.
    key: ``jax.random`` key; every layer gets the same data split and initialisation, so layers are compared
      on the same images.
    layers: names of the layers to probe, in any order (reported in network order); None: every sown map with
      two spatial dims (maps without space, e.g. ``pre_logits`` (N, C), carry no position map to read).
    patterns: names from ``PATTERNS``.
    steps, learning_rate, readout, holdout: as ``probe_position``.
    pattern_size: (H, W) of the patterns, every layer's features resized to it; None: the input's size.
    train: run the model in training mode (BatchNorm batch statistics).

  Returns:
    ``{layer: {pattern: {"spearman": float, "mae": float}}}``, layers in network order.

  Example:
    >>> from jaxborders.models import get_model
    >>> model = get_model('redgreen_net', conv_mode='same')
    >>> x = position_free_images(jax.random.key(0), 4, (8, 8, 3))
    >>> result = position_information(model, model.init(jax.random.key(1), x), x, key=jax.random.key(2),
    ...                               patterns=('horizontal',), steps=20)
    >>> list(result), sorted(result['relu1']['horizontal'])
    (['relu1', 'relu2', 'relu3', 'relu4'], ['mae', 'spearman'])
  """
  _check_common(key, steps, learning_rate, readout, holdout)
  names = _check_names("patterns", patterns, PATTERNS)
  if np.ndim(images) != 4 or np.shape(images)[0] < 2:
    raise ValueError(f"images must have shape (N, H, W, C) with N >= 2, got shape {np.shape(images)}.")
  if pattern_size is None:
    size = tuple(np.shape(images)[1:3])
  else:
    size = tuple(pattern_size)
    if len(size) != 2:
      raise ValueError(f"pattern_size must be (H, W) with ints >= 2, got {pattern_size!r}.")
    for s in size:
      _check_positive_int("pattern_size", s, 2)
  if layers is not None:
    layers = [layers] if isinstance(layers, str) else list(layers)
  maps = layer_features(model, variables, jnp.asarray(images), train=train)
  spatial = [name for name, value in maps.items() if np.ndim(value) == 4]
  if layers is None:
    chosen = spatial
  else:
    unknown = [name for name in layers if name not in spatial]
    if unknown or not layers:
      raise ValueError(f"layers={layers!r} is not supported; accepted layer names (maps with two spatial dims, in "
                       f"network order): {', '.join(map(repr, spatial))}.")
    chosen = [name for name in spatial if name in layers]
  targets = position_patterns(size[0], size[1], names)
  return {name: _probe([maps[name]], targets, key, steps, learning_rate, readout, holdout) for name in chosen}


__all__ = ["PATTERNS", "READOUTS", "IMAGE_KINDS", "position_patterns", "position_free_images", "spearman_correlation",
           "probe_position", "layer_features", "position_information"]
