"""HardNet: descriptors, F-Conv growth, a PyTorch re-statement, the triplet loss and FPR95 by hand, errors."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxborders.models import get_model, intermediate_shapes, intermediates
from jaxborders.models.hardnet import fpr_at_95_recall, pairwise_distances, triplet_margin_loss


def _patches(n: int = 4, size: int = 32) -> jax.Array:
  return jax.random.uniform(jax.random.key(0), (n, size, size, 1)) * 255.0


def test_descriptors_are_unit_norm_and_parameters_match_the_reference():
  model = get_model("hardnet")
  x = _patches()
  variables = jax.jit(lambda x: model.init(jax.random.key(1), x, train=False))(x)
  # Six 3×3 convs and the 8×8 conv, no biases, BN without affine parameters.
  convs = 9 * (1 * 32 + 32 * 32 + 32 * 64 + 64 * 64 + 64 * 128 + 128 * 128) + 64 * 128 * 128
  assert sum(p.size for p in jax.tree.leaves(variables["params"])) == convs == 1_334_560
  desc, feats = jax.jit(lambda x: (model.apply(variables, x, train=False), intermediates(model, variables, x)))(x)
  assert desc.shape == (4, 128)
  np.testing.assert_allclose(np.linalg.norm(desc, axis=1), 1.0, rtol=1e-5)
  assert feats["conv7"].shape == (4, 1, 1, 128)
  # Train mode: dropout needs its rng, batch statistics update.
  out, state = jax.jit(lambda x: model.apply(variables, x, train=True, rngs={"dropout": jax.random.key(2)},
                                             mutable=["batch_stats"]))(x)
  np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
  assert set(state["batch_stats"]) == {f"features_{i}" for i in (1, 4, 7, 10, 13, 16, 20)}


def test_full_mode_map_sizes():
  model = get_model("hardnet", conv_mode="full")
  shapes = intermediate_shapes(model, (1, 32, 32, 1))
  assert list(shapes) == [f"conv{i}" for i in range(1, 8)] + ["pre_logits"]  # network order
  assert [shapes[f"conv{i}"][1] for i in range(1, 8)] == [34, 36, 19, 21, 12, 14, 7]


@pytest.mark.parametrize("antialias", ["blur:binomial:3", "aps"])
def test_antialiased_strided_convs_keep_the_sizes(antialias):
  model = get_model("hardnet", antialias=antialias, width=8)
  shapes = intermediate_shapes(model, (1, 32, 32, 1))
  assert [shapes[f"conv{i}"][1] for i in range(1, 8)] == [32, 32, 16, 16, 8, 8, 1]


def _torch_hardnet(torch, padding: int):
  """An independent PyTorch statement of DagnyT/hardnet's HardNet (``padding`` 1, or 2 for F-Conv + mean pool)."""
  tnn = torch.nn
  layers, c_in = [], 1
  for c, s in zip((32, 32, 64, 64, 128, 128), (1, 1, 2, 1, 2, 1)):
    layers += [tnn.Conv2d(c_in, c, 3, stride=s, padding=padding, bias=False), tnn.BatchNorm2d(c, affine=False),
               tnn.ReLU()]
    c_in = c
  layers += [tnn.Dropout(0.3), tnn.Conv2d(128, 128, 8, bias=False), tnn.BatchNorm2d(128, affine=False)]
  features = tnn.Sequential(*layers)

  class Net(tnn.Module):
    def __init__(self):
      super().__init__()
      self.features = features

    def forward(self, x):
      flat = x.view(x.size(0), -1)
      mean, std = flat.mean(1), flat.std(1) + 1e-7
      x = (x - mean[:, None, None, None]) / std[:, None, None, None]
      y = self.features(x).mean((2, 3))
      return y / torch.sqrt((y * y).sum(1, keepdim=True) + 1e-10)

  return Net()


@pytest.mark.parametrize("conv_mode,padding", [("same", 1), ("full", 2)])
def test_equals_pytorch_restatement(conv_mode, padding):
  torch = pytest.importorskip("torch")
  torch.manual_seed(0)
  ref = _torch_hardnet(torch, padding).eval()
  with torch.no_grad():
    for m in ref.modules():
      if isinstance(m, torch.nn.BatchNorm2d):
        m.running_mean.uniform_(-0.2, 0.2)
        m.running_var.uniform_(0.5, 2.0)
  params, stats = {}, {}
  for key, value in ref.state_dict().items():
    _, index, leaf = key.split(".")
    name = f"features_{index}"
    if leaf == "weight":
      params[name] = {"kernel": value.numpy().transpose(2, 3, 1, 0)}
    elif leaf in ("running_mean", "running_var"):
      stats.setdefault(name, {})[leaf[8:]] = value.numpy()
  model = get_model("hardnet", conv_mode=conv_mode)
  x = np.array(_patches(3))
  ours = jax.jit(lambda v, x: model.apply(v, x, train=False))({"params": params, "batch_stats": stats}, jnp.asarray(x))
  with torch.no_grad():
    expected = ref(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
  np.testing.assert_allclose(np.asarray(ours), expected, rtol=1e-4, atol=1e-5)


# Hand-made descriptors: anchors (0,0), (4,0), (0,3); positives (0,1), (4,2), (1,3). Distances d[i, j]:
#   row 0: 1, √20, √10     row 1: √17, 2, √18     row 2: 2, √17, 1
# Hardest negative per row (j ≠ i): √10, √17, 2; per column (i ≠ j): 2, √17, √10.
ANCHOR = jnp.array([[0.0, 0.0], [4.0, 0.0], [0.0, 3.0]])
POSITIVE = jnp.array([[0.0, 1.0], [4.0, 2.0], [1.0, 3.0]])


def test_pairwise_distances_by_hand():
  d = pairwise_distances(ANCHOR, POSITIVE, eps=0.0)
  r = math.sqrt
  np.testing.assert_allclose(d, [[1, r(20), r(10)], [r(17), 2, r(18)], [2, r(17), 1]], rtol=1e-6)


def test_triplet_loss_equals_hand_computation():
  # anchor_swap: hardest = min(row, column) = 2, √17, 2 -> losses 3+1-2, 3+2-√17, 3+1-2.
  swap = triplet_margin_loss(ANCHOR, POSITIVE, margin=3.0, eps=0.0)
  np.testing.assert_allclose(swap, (9 - math.sqrt(17)) / 3, rtol=1e-6)
  # rows only: 3+1-√10, 3+2-√17, 3+1-2.
  rows = triplet_margin_loss(ANCHOR, POSITIVE, margin=3.0, anchor_swap=False, eps=0.0)
  np.testing.assert_allclose(rows, (11 - math.sqrt(10) - math.sqrt(17)) / 3, rtol=1e-6)
  # margin 1: every hardest negative is at least 1 farther than its positive -> 0.
  assert float(triplet_margin_loss(ANCHOR, POSITIVE, margin=1.0, eps=0.0)) == 0.0


def test_triplet_loss_skips_near_duplicate_negatives_and_has_finite_gradients():
  # Positive 2 := anchor 0 = (0, 0). Rows (no swap): row 0 is 1, √20, 0 -> the 0 is a duplicate (< 0.008), not
  # a negative, so its hardest is √20; row 1 is √17, 2, 4 -> 4; row 2 is 2, √17, 3 -> 2.
  # Losses with margin 3: max(0, 4 - √20) = 0, 3 + 2 - 4 = 1, 3 + 3 - 2 = 4 -> mean 5/3 (counting the duplicate as
  # a negative would give 3).
  positive = POSITIVE.at[2].set(ANCHOR[0])
  loss = triplet_margin_loss(ANCHOR, positive, margin=3.0, anchor_swap=False, eps=0.0)
  np.testing.assert_allclose(loss, 5.0 / 3.0, rtol=1e-6)
  grads = jax.grad(lambda a: triplet_margin_loss(a, positive))(ANCHOR)
  assert np.all(np.isfinite(np.asarray(grads)))


def test_fpr_at_95_recall_on_twenty_pairs_by_hand():
  # Labels in order of increasing distance: 10 matches, 10 non-matches.
  ordered = np.array([1, 1, 0, 1, 1, 1, 0, 1, 1, 0, 1, 0, 0, 1, 0, 1, 0, 0, 0, 0])
  distances = np.arange(20) * 0.1 + 0.05
  perm = np.random.default_rng(0).permutation(20)  # the pairs come in any order
  # 95% of 10 matches needs all 10: the 10th match is at position 15, preceded by 6 non-matches (2, 6, 9, 11,
  # 12, 14) of the 10 -> 0.6. At 90% recall the 9th match (position 13) is preceded by 5 -> 0.5.
  assert fpr_at_95_recall(distances[perm], ordered[perm]) == pytest.approx(0.6)
  assert fpr_at_95_recall(distances[perm], ordered[perm].astype(bool), recall=0.9) == pytest.approx(0.5)
  perfect = np.array([1] * 10 + [0] * 10)
  assert fpr_at_95_recall(distances, perfect) == 0.0


def test_errors():
  with pytest.raises(ValueError, match="conv_mode='zero'"):
    get_model("hardnet", conv_mode="zero")
  with pytest.raises(ValueError, match="antialias='blur:triangle:9'"):
    get_model("hardnet", antialias="blur:triangle:9")
  model = get_model("hardnet")
  assert model.min_input_size() == (29, 29)
  with pytest.raises(ValueError, match=r"smaller than the minimum \(29, 29\)"):
    model.init(jax.random.key(0), jnp.zeros((1, 28, 32, 1)), train=False)
  with pytest.raises(ValueError, match=r"shape \(N, D\) with N >= 2"):
    triplet_margin_loss(ANCHOR, POSITIVE[:2])
  with pytest.raises(ValueError, match="same length"):
    fpr_at_95_recall([0.1, 0.2], [1])
  with pytest.raises(ValueError, match="0 \\(non-matching\\) or 1"):
    fpr_at_95_recall([0.1, 0.2], [1, 2])
  with pytest.raises(ValueError, match="at least one matching and one non-matching"):
    fpr_at_95_recall([0.1, 0.2], [1, 1])
