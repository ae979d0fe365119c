"""HardNet patch descriptor (Mishchuk et al., NIPS 2017) in every border mode, its loss and its metric.

Network (DagnyT/hardnet ``HardNet``; docs/models.md): per-patch input normalisation ((x - mean) / (std + 1e-7), std
unbiased), six 3×3 convs without bias with channels 32, 32, 64 (stride 2), 64, 128 (stride 2), 128, each →
BatchNorm without affine parameters → ReLU; Dropout(0.3); an 8×8 conv without padding → BatchNorm without affine;
L2 normalisation (``x / sqrt(sum x² + 1e-10)``). Input: 32×32 grayscale patches, (N, 32, 32, 1).

``conv_mode`` changes the six 3×3 convs (``same``: padding 1 as the original; ``full``: padding 2, the F-Conv
HardNet of docs/models.md). The final 8×8 conv always runs unpadded. At 32×32 the ``same`` net ends at 1×1×128 as the
original; ``full`` grows the maps (32 → 34 → 36 → 19 → 21 → 12 → 14) and the 8×8 conv leaves 7×7, so the final map is
averaged over its positions before the L2 normalisation (the global pooling that absorbs F-Conv's growth; for a
1×1 map it is the identity, so ``same`` is exactly the original).

Downsampling (``antialias``): a stride-2 conv becomes conv s1 → BN → ReLU → BlurPool s2 (or APSPool), as the
BlurPool paper's strided convs.

Parameter names: ``features_<i>`` = torchvision-style ``features.<i>`` of the reference ``nn.Sequential``
(convs at 0, 3, 6, 9, 12, 15, 19; BNs, which hold only running statistics, at 1, 4, …, 16, 20). The reference
initialises convs orthogonally with gain 0.6; so does this port.

``triplet_margin_loss`` is HardNet's loss with hardest-in-batch negative mining, ``fpr_at_95_recall`` its
evaluation metric (false positive rate at 95% true positive rate on the Brown patch pairs).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxborders.models import common
from jaxborders.models.common import check_conv_mode, parse_antialias
from jaxborders.models.registry import register_model
from jaxborders.nn.layers import APSPool, BlurPool, Conv
from jaxborders.ops import aps as aps_ops

CHANNELS = (32, 32, 64, 64, 128, 128)
STRIDES = (1, 1, 2, 1, 2, 1)
conv_init = nn.initializers.orthogonal(scale=0.6)


class HardNet(nn.Module):
  """HardNet descriptor network (see the module docstring).

  Attributes:
    conv_mode: border mode of the six 3×3 convs.
    antialias: ``None``, ``'blur:<kind>:<size>'`` or ``'aps'``.
    dtype: computation dtype (parameters stay float32).
    dim: descriptor length (128).
    width: channels of the first conv (32); the others scale with it.
    dropout: dropout rate before the final conv (0.3; uses the ``'dropout'`` rng when ``train``).

  ``__call__(x, train, return_features=False)``: ``x`` is (N, H, W, 1); returns unit-norm descriptors
  (N, dim), or ``(descriptors, features)`` with ``conv1``..``conv6``, ``conv7`` (the final map) and
  ``pre_logits`` (the pooled descriptor before normalisation).
  """

  conv_mode: str = "same"
  antialias: Any = None
  dtype: Any = jnp.float32
  dim: int = 128
  width: int = 32
  dropout: float = 0.3

  def __post_init__(self):
    check_conv_mode(self.conv_mode)
    parse_antialias(self.antialias)
    for name in ("dim", "width"):
      value = getattr(self, name)
      if not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}.")
    super().__post_init__()

  # -- input-size convention (jaxborders.models.common) --------------------------------------------------------

  def _size_steps(self) -> list:
    aa = parse_antialias(self.antialias)
    steps = []
    for stride in STRIDES:
      if stride == 1 or aa.is_none:
        steps.append(common.conv_step(3, stride, self.conv_mode))
      elif aa.method == "blur":
        steps += [common.conv_step(3, 1, self.conv_mode),
                  common.blur_step(aa.size, stride, common.blur_pad_mode(self.conv_mode))]
      else:
        steps += [common.conv_step(3, 1, self.conv_mode), common.aps_step(stride, aa.size)]
    return steps + [common.conv_step(8, 1, "valid")]

  def min_input_size(self) -> tuple[int, int]:
    """Smallest (H, W) this configuration can process (29×29 for ``same``; patches are 32×32)."""
    n = common.min_length(self._size_steps())
    return (n, n)

  def example_input_shape(self, batch: int = 2) -> tuple[int, int, int, int]:
    """The reference patch shape, (N, 32, 32, 1), or the minimum if that is larger."""
    n = max(32, self.min_input_size()[0])
    return (batch, n, n, 1)

  # -- network ---------------------------------------------------------------------------------------------------

  def _bn(self, train: bool, name: str) -> nn.BatchNorm:
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, use_scale=False, use_bias=False,
                        dtype=self.dtype, name=name)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False, return_features: bool = False):
    common.check_input_size("hardnet", x.shape, self.min_input_size())
    aa = parse_antialias(self.antialias)
    x = x.astype(jnp.float32)
    flat = x.reshape(x.shape[0], -1)
    mean = jnp.mean(flat, axis=1).reshape(-1, 1, 1, 1)
    std = jnp.std(flat, axis=1, ddof=1).reshape(-1, 1, 1, 1) + 1e-7  # torch.std is unbiased
    x = ((x - jax.lax.stop_gradient(mean)) / jax.lax.stop_gradient(std)).astype(self.dtype)
    features: dict[str, jax.Array] = {}
    for i, (channels, stride) in enumerate(zip(CHANNELS, STRIDES)):
      anti = stride != 1 and not aa.is_none
      x = Conv(channels * self.width // 32, 3, 1 if anti else stride, mode=self.conv_mode, use_bias=False,
               dtype=self.dtype, kernel_init=conv_init, name=f"features_{3 * i}")(x)
      x = nn.relu(self._bn(train, f"features_{3 * i + 1}")(x))
      if anti and aa.method == "blur":
        x = BlurPool(aa.size, stride, aa.kind, common.blur_pad_mode(self.conv_mode), name=f"blur{i + 1}")(x)
      elif anti:
        x, _ = APSPool(stride, aa.norm, aa.size, name=f"aps{i + 1}")(aps_ops.pad_to_multiple(x, stride))
      features[f"conv{i + 1}"] = x
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    x = Conv(self.dim, 8, mode="valid", use_bias=False, dtype=self.dtype, kernel_init=conv_init, name="features_19")(x)
    x = self._bn(train, "features_20")(x)
    features["conv7"] = x
    x = jnp.mean(x.astype(jnp.float32), axis=(1, 2))
    features["pre_logits"] = x
    x = x / jnp.sqrt(jnp.sum(x * x, axis=-1, keepdims=True) + 1e-10)
    return (x, features) if return_features else x


@register_model("hardnet")
def hardnet(conv_mode: str = "same", antialias: Any = None, dtype: Any = jnp.float32, **kwargs: Any) -> HardNet:
  """HardNet: 128-d unit-norm descriptors of 32×32 grayscale patches (``conv_mode='full'``: F-Conv HardNet)."""
  return HardNet(conv_mode=conv_mode, antialias=antialias, dtype=dtype, **kwargs)


def pairwise_distances(a: jax.Array, b: jax.Array, eps: float = 1e-6) -> jax.Array:
  """Euclidean distances between the rows of ``a`` (N, D) and ``b`` (M, D): ``sqrt(|a|² + |b|² - 2ab + eps)``.

  The ``eps`` inside the root keeps the gradient finite at zero distance (HardNet's ``distance_matrix_vector``).
  """
  sq = jnp.sum(a * a, 1)[:, None] + jnp.sum(b * b, 1)[None, :] - 2.0 * (a @ b.T)
  return jnp.sqrt(jnp.maximum(sq, 0.0) + eps)


def triplet_margin_loss(anchor: jax.Array, positive: jax.Array, margin: float = 1.0, anchor_swap: bool = True,
                        eps: float = 1e-6, min_negative_distance: float = 0.008) -> jax.Array:
  """HardNet's triplet margin loss with hardest-in-batch negative mining.

  Row ``i`` of ``anchor`` and ``positive`` describe the same 3D point; every other row is a non-match. With
  ``d`` = ``pairwise_distances(anchor, positive, eps)``, each pair's hardest negative is
  ``min_j≠i d[i, j]`` (and, with ``anchor_swap``, also ``min_j≠i d[j, i]``: the closest non-matching anchor to
  the positive), ignoring distances below ``min_negative_distance`` (near-duplicate patches in the batch, as the
  reference does by adding 10 to them). The loss is ``mean_i max(0, margin + d[i, i] - hardest_i)``.

  Args:
    anchor: (N, D) descriptors, N >= 2.
    positive: (N, D) descriptors of the matching patches.
    margin: triplet margin (1.0 in HardNet).
    anchor_swap: also mine negatives among the anchors (HardNet's default training setting).
    eps: added under the square root of the distances.
    min_negative_distance: negatives closer than this are treated as duplicates and skipped.

  Returns:
    Scalar loss (float32).

  Example:
    >>> a = jnp.array([[1., 0.], [0., 1.]]); p = jnp.array([[1., 0.], [0., 1.]])
    >>> round(float(triplet_margin_loss(a, p, eps=0.0)), 4)  # d(i,i) = 0, hardest negative sqrt(2)
    0.0
  """
  if anchor.ndim != 2 or anchor.shape != positive.shape or anchor.shape[0] < 2:
    raise ValueError(f"anchor and positive must both have shape (N, D) with N >= 2, got {anchor.shape} and "
                     f"{positive.shape}.")
  d = pairwise_distances(anchor.astype(jnp.float32), positive.astype(jnp.float32), eps)
  n = d.shape[0]
  pos = jnp.diagonal(d)
  masked = d + 10.0 * jnp.eye(n, dtype=d.dtype) + 10.0 * (d < min_negative_distance)
  hardest = jnp.min(masked, axis=1)
  if anchor_swap:
    hardest = jnp.minimum(hardest, jnp.min(masked, axis=0))
  return jnp.mean(jnp.maximum(margin + pos - hardest, 0.0))


def fpr_at_95_recall(distances: Any, labels: Any, recall: float = 0.95) -> float:
  """False positive rate at the distance threshold that reaches ``recall`` of the matching pairs.

  HardNet's ``ErrorRateAt95Recall``: sort the pairs by distance (ascending, stable), take the first position
  where the cumulative number of matches reaches ``recall`` × all matches, and return the fraction of all
  non-matching pairs that come before it (they would be accepted as matches).

  Args:
    distances: (P,) descriptor distances of the pairs.
    labels: (P,) 1 for matching pairs, 0 for non-matching ones (bool or int).
    recall: the true positive rate at which the FPR is read (0.95).

  Returns:
    The false positive rate, a Python float in [0, 1].

  Example:
    >>> fpr_at_95_recall([0.1, 0.2, 0.3, 0.4], [1, 0, 1, 0])  # both matches needed: 1 of 2 negatives passes
    0.5
  """
  distances = np.asarray(distances, dtype=np.float64).reshape(-1)
  labels = np.asarray(labels).reshape(-1)
  if distances.shape != labels.shape:
    raise ValueError(f"distances and labels must have the same length, got {distances.shape} and {labels.shape}.")
  if not np.all((labels == 0) | (labels == 1)):
    raise ValueError("labels must be 0 (non-matching) or 1 (matching).")
  labels = labels.astype(np.int64)
  if labels.sum() == 0 or labels.sum() == labels.size:
    raise ValueError("fpr_at_95_recall needs at least one matching and one non-matching pair.")
  if not 0.0 < recall <= 1.0:
    raise ValueError(f"recall must be in (0, 1], got {recall!r}.")
  ordered = labels[np.argsort(distances, kind="stable")]
  threshold = int(np.argmax(np.cumsum(ordered) >= recall * ordered.sum()))
  false_positives = int(np.sum(ordered[:threshold] == 0))
  return false_positives / int(np.sum(ordered == 0))


__all__ = ["HardNet", "hardnet", "pairwise_distances", "triplet_margin_loss", "fpr_at_95_recall"]
