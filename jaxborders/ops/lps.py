"""Learnable polyphase sampling (LPS; Rojas-Gomez, Lim, Schwing, Do & Yeh, NeurIPS 2022, "Learnable Polyphase
Sampling for Shift Invariant and Equivariant Convolutional Networks"; authors' code:
raymondyeh07/learnable_polyphase_sampling, ``layers/lps_utils.py``, ``lps_logit_layers.py``, ``polydown.py``,
``polyup.py``).

LPD (down): like APS, keep one of the ``P = prod(stride)`` polyphase components per sample, but choose it with a
small learned *scoring network* instead of a fixed norm. The network (the authors' ``LPSLogitLayersV2``) is
``conv3x3 -> ReLU -> conv3x3`` with circular padding applied to every component with shared weights, then the
mean over positions and channels: one logit per component. A circular shift of the input permutes the
components and circularly shifts each of them; circular convolutions followed by a global mean are invariant to
that, so the logits are permuted the same way and the arg-max picks the same content: exact invariance of
circular stacks with global pooling, for *any* weights, in inference mode.

* inference: the arg-max component (ties: the lowest component index, as ``jnp.argmax``);
* training: a Gumbel-softmax sample ``softmax((logits + g) / tau)`` of the logits weighs the components
  (``selection='gumbel'``; the authors' default, soft: ``hard=False``), optionally straight-through
  (``hard=True``: one-hot forward, soft gradient); ``selection='softmax'`` is their ``*_convex`` mode.
* the returned ``index`` is the (N,) int32 arg-max or the (N, P) component weights; passing it back as
  ``index=`` (a ResNet shortcut) or to ``lps_unpool`` reuses the choice.

LPU (up, ``lps_unpool``): the shift-equivariant upsampling that puts each sample back at the phase LPD chose and
zeros elsewhere (the authors' ``lps_upsampleV2``): ``lps_unpool(*lps_pool(x))`` is circularly shift-equivariant.

Differences from the authors' code: any stride and 1-3 spatial dims (theirs: 2D stride 2); the component order is
that of ``polyphase_components`` (the official APS order: the first axis's offset varies fastest), while their
``split_polyV2`` enumerates row-major, which only decides which of two exactly tied components wins; the scoring
network's border mode is an argument (theirs: ``logits_pad``, ``circular`` by default).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp

from jaxborders.ops import padding
from jaxborders.ops.aps import polyphase_components
from jaxborders.ops.checks import as_tuple, check_choice, spatial_rank

LpsSelection = Literal["argmax", "gumbel", "softmax"]
LPS_SELECTIONS: tuple[str, ...] = ("argmax", "gumbel", "softmax")


class LpsScorer(NamedTuple):
  """Weights of the LPS scoring network (shapes for ``rank`` spatial dims, ``C`` inputs, ``H`` hidden)."""

  w1: jax.Array  # (*kernel, C, H)
  b1: jax.Array  # (H,)
  w2: jax.Array  # (*kernel, H, H)
  b2: jax.Array  # (H,)


def _check_divisible(fn: str, shape: Sequence[int], strides: Sequence[int]) -> None:
  for axis, (size, s) in enumerate(zip(shape[1:-1], strides)):
    if size % s:
      raise ValueError(f"{fn} needs spatial sizes divisible by the stride: spatial dim {axis} of x has size {size}, "
                       f"stride {s}; accepted sizes are multiples of {s} (pad circularly first, e.g. "
                       f"jaxborders.pad_to_multiple).")


def lps_logits(x: jax.Array, scorer: LpsScorer, stride: int | Sequence[int] = 2,
               mode: str = "circular") -> jax.Array:
  """One logit per polyphase component: ``mean(conv2(relu(conv1(component))))`` with shared weights.

  Args:
    x: (N, *spatial, C), 1-3 spatial dims divisible by the stride.
    scorer: ``LpsScorer`` weights.
    stride: int or one per spatial dim.
    mode: border mode of both convolutions (``circular`` makes the logits exactly shift-equivariant).

  Returns:
    (N, P) float32 logits, ``P = prod(stride)``, in the component order of ``polyphase_components``.

  Example:
    >>> s = LpsScorer(jnp.ones((3, 3, 1, 1)), jnp.zeros(1), jnp.ones((3, 3, 1, 1)), jnp.zeros(1))
    >>> x = jnp.zeros((1, 4, 4, 1)).at[0, 1, 0, 0].set(1.)
    >>> lps_logits(x, s).tolist()  # only component 1 (rows 1::2, cols 0::2) holds the pixel
    [[0.0, 20.25, 0.0, 0.0]]
  """
  rank = spatial_rank("x", x.shape)
  strides = as_tuple("stride", stride, rank)
  check_choice("mode", mode, padding.MODES)
  _check_divisible("lps_logits", x.shape, strides)
  components = polyphase_components(x, strides)  # (N, P, *small, C)
  n, p = components.shape[:2]
  flat = components.reshape(n * p, *components.shape[2:])
  h = jax.nn.relu(padding.conv(flat, scorer.w1.astype(x.dtype), mode) + scorer.b1.astype(x.dtype))
  h = padding.conv(h, scorer.w2.astype(x.dtype), mode) + scorer.b2.astype(x.dtype)
  return h.astype(jnp.float32).reshape(n, p, -1).mean(axis=-1)


def _selection_weights(logits: jax.Array, selection: str, key: jax.Array | None, temperature: float,
                       hard: bool) -> jax.Array:
  if selection == "gumbel":
    if key is None:
      raise ValueError("selection='gumbel' samples the component: pass a PRNG key as key.")
    logits = logits + jax.random.gumbel(key, logits.shape, jnp.float32)
  weights = jax.nn.softmax(logits / temperature, axis=-1)
  if hard:  # straight-through: one-hot value, softmax gradient
    one_hot = jax.nn.one_hot(jnp.argmax(weights, axis=-1), weights.shape[-1], dtype=weights.dtype)
    weights = one_hot + weights - jax.lax.stop_gradient(weights)
  return weights


def _check_index(index: jax.Array, n: int, p: int) -> jax.Array:
  index = jnp.asarray(index)
  int_ok = index.shape == (n,) and jnp.issubdtype(index.dtype, jnp.integer)
  weights_ok = index.shape == (n, p) and jnp.issubdtype(index.dtype, jnp.floating)
  if not (int_ok or weights_ok):
    raise ValueError(f"index must be an int array of shape ({n},) (one component per sample) or a float array of "
                     f"shape ({n}, {p}) (component weights), got shape {index.shape} and dtype {index.dtype}.")
  return index


def _select(components: jax.Array, index: jax.Array) -> jax.Array:
  if index.ndim == 1:
    picked = jnp.take_along_axis(components, index.reshape(-1, *([1] * (components.ndim - 1))), axis=1)
    return picked[:, 0]
  weights = index.astype(components.dtype).reshape(*index.shape, *([1] * (components.ndim - 2)))
  return jnp.sum(components * weights, axis=1)


def lps_pool(x: jax.Array, logits: jax.Array | None = None, stride: int | Sequence[int] = 2,
             selection: LpsSelection = "argmax", key: jax.Array | None = None, temperature: float = 1.0,
             hard: bool = False, index: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
  """Learnable polyphase downsampling (LPD) given the components' logits.

  ``y = sum_p w_p x_p`` over the polyphase components ``x_p`` with ``w = onehot(argmax(logits))``
  (``argmax``), ``softmax((logits + g) / temperature)``, ``g ~ Gumbel(0, 1)`` (``gumbel``) or
  ``softmax(logits / temperature)`` (``softmax``).

  Args:
    x: (N, *spatial, C), 1-3 spatial dims, each divisible by its stride.
    logits: (N, P) component logits (e.g. ``lps_logits``); not needed when ``index`` is given.
    stride: int or one per spatial dim.
    selection: ``argmax`` (inference), ``gumbel`` (training, needs ``key``) or ``softmax``.
    key: PRNG key for ``gumbel``.
    temperature: softmax temperature ``tau`` (> 0).
    hard: straight-through one-hot weights for ``gumbel``/``softmax``.
    index: a previous call's ``index`` to reuse ((N,) int or (N, P) weights); ``logits`` is then ignored.

  Returns:
    ``(y, index)``: y (N, *spatial // stride, C); index the (N,) int32 arg-max for ``argmax``, else the (N, P)
    float32 weights.

  Example:
    >>> x = jnp.arange(16.).reshape(1, 4, 4, 1)
    >>> y, index = lps_pool(x, jnp.array([[0., 3., 1., 3.]]))  # tie between 1 and 3: the first wins
    >>> int(index[0]), y[0, :, :, 0].tolist()
    (1, [[4.0, 6.0], [12.0, 14.0]])
  """
  rank = spatial_rank("x", x.shape)
  strides = as_tuple("stride", stride, rank)
  check_choice("selection", selection, LPS_SELECTIONS)
  _check_divisible("lps_pool", x.shape, strides)
  n, p = x.shape[0], math.prod(strides)
  if not temperature > 0:
    raise ValueError(f"temperature must be > 0, got {temperature!r}.")
  if index is None:
    if logits is None or logits.shape != (n, p):
      raise ValueError(f"logits must have shape ({n}, {p}) (one per sample and polyphase component), got "
                       f"{None if logits is None else logits.shape}.")
    if selection == "argmax":
      index = jnp.argmax(logits, axis=-1).astype(jnp.int32)
    else:
      index = _selection_weights(logits.astype(jnp.float32), selection, key, temperature, hard)
  index = _check_index(index, n, p)
  return _select(polyphase_components(x, strides), index), index


def polyphase_merge(components: jax.Array, stride: int | Sequence[int] = 2) -> jax.Array:
  """Inverse of ``polyphase_components``: (N, P, *small, C) -> (N, *small * stride, C) (interleaves).

  Example:
    >>> x = jnp.arange(12.).reshape(1, 6, 2, 1)
    >>> bool((polyphase_merge(polyphase_components(x, (2, 1)), (2, 1)) == x).all())
    True
  """
  rank = components.ndim - 3
  strides = as_tuple("stride", stride, rank)
  n, p, small, c = components.shape[0], components.shape[1], components.shape[2:-1], components.shape[-1]
  if p != math.prod(strides):
    raise ValueError(f"components has {p} phases but stride {strides} makes {math.prod(strides)}.")
  # The components' phases run first axis fastest (the official APS order): (N, .., s2, s1, n1, n2, .., C).
  y = components.reshape(n, *strides[::-1], *small, c)
  # -> (N, n1, s1, n2, s2, .., C)
  order = [0]
  for i in range(rank):
    order += [1 + rank + i, rank - i]
  y = y.transpose(*order, 2 * rank + 1)
  return y.reshape(n, *(m * s for m, s in zip(small, strides)), c)


def lps_unpool(y: jax.Array, index: jax.Array, stride: int | Sequence[int] = 2) -> jax.Array:
  """Learnable polyphase upsampling (LPU): puts ``y`` back at the phase(s) ``index`` selected, zeros elsewhere.

  ``out = sum_p w_p * place_p(y)``, ``place_p`` writing ``y`` to polyphase component ``p`` of a zero array.

  Args:
    y: (N, *small, C), 1-3 spatial dims.
    index: (N,) int components or (N, P) weights, e.g. from ``lps_pool``.
    stride: int or one per spatial dim.

  Returns:
    (N, *small * stride, C).

  Example:
    >>> lps_unpool(jnp.ones((1, 2, 1)), jnp.array([1]))[0, :, 0].tolist()
    [0.0, 1.0, 0.0, 1.0]
  """
  rank = spatial_rank("y", y.shape)
  strides = as_tuple("stride", stride, rank)
  p = math.prod(strides)
  index = _check_index(index, y.shape[0], p)
  weights = jax.nn.one_hot(index, p, dtype=y.dtype) if index.ndim == 1 else index.astype(y.dtype)
  components = y[:, None] * weights.reshape(*weights.shape, *([1] * (y.ndim - 1)))
  return polyphase_merge(components, strides)


__all__ = ["LPS_SELECTIONS", "LpsScorer", "lps_logits", "lps_pool", "lps_unpool", "polyphase_merge"]
