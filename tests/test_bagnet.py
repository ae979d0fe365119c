"""BagNets: parameter count, receptive field (measured by gradients), map sizes, border modes, anti-aliasing."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxborders.models import get_model, intermediate_shapes, intermediates

TINY = dict(width=8)


def _feature_shapes(model, size: int) -> dict[str, tuple[int, ...]]:
  return intermediate_shapes(model, (1, size, size, 3))


def test_bagnet33_parameter_count():
  # ResNet-50 (25,557,032) with the 7×7 stem (9,408) replaced by a 1×1 (192) and a 3×3 (36,864) conv, and the
  # 3×3 convs of all non-first blocks (2, 3, 5, 2 of them with 64, 128, 256, 512 planes) made 1×1: each
  # saves 8·planes².
  saved = 8 * (2 * 64**2 + 3 * 128**2 + 5 * 256**2 + 2 * 512**2)
  expected = 25_557_032 - 9_408 + 192 + 36_864 - saved
  model = get_model("bagnet33")
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 33, 33, 3)), train=False))
  assert sum(int(np.prod(p.shape)) for p in jax.tree.leaves(shapes["params"])) == expected == 18_310_184


@pytest.mark.parametrize("name,rf", [("bagnet9", 9), ("bagnet17", 17), ("bagnet33", 33)])
def test_receptive_field_measured_by_gradients(name, rf):
  model = get_model(name, layers=(1, 1, 1, 1), **TINY)  # the 1×1 blocks do not change the receptive field
  assert model.receptive_field() == rf and model.min_input_size() == (rf, rf)
  x = jax.random.normal(jax.random.key(0), (1, 48, 48, 3))
  variables = jax.jit(lambda x: model.init(jax.random.key(1), x, train=False))(x)

  def top_left(x):
    return jnp.sum(intermediates(model, variables, x)["stage4"][0, 0, 0] ** 2)

  support = np.argwhere(np.abs(np.asarray(jax.jit(jax.grad(top_left))(x)[0])).sum(-1) > 0)
  assert support.min(0).tolist() == [0, 0] and support.max(0).tolist() == [rf - 1, rf - 1]


def test_original_map_sizes_at_224():
  # BagNet-33 yields a 24×24 map of patch logits at 224 (Brendel & Bethge).
  shapes = _feature_shapes(get_model("bagnet33", **TINY), 224)
  assert shapes["stem"][1] == 222 and shapes["stage4"][1:3] == (24, 24)
  assert shapes["stage4"][-1] == 8 * 8 * 4


@pytest.mark.parametrize("conv_mode", ["same", "full", "circular"])
@pytest.mark.parametrize("antialias", [None, "blur:binomial:3", "aps"])
def test_border_modes_and_antialiasing_run(conv_mode, antialias):
  model = get_model("bagnet9", conv_mode=conv_mode, antialias=antialias, **TINY)
  shapes = _feature_shapes(model, 32)
  growth = {"same": 0, "circular": 0, "full": 2}[conv_mode]
  assert shapes["stem"][1] == 32 + growth
  assert shapes["pre_logits"] == (1, 256)
  blocks = [f"layer{s}.{j}" for s, n in enumerate((3, 4, 6, 3), 1) for j in range(n)]
  assert list(shapes) == ["stem"] + [n for s in range(1, 5) for n in [b for b in blocks if b.startswith(f"layer{s}.")]
                                     + [f"stage{s}"]] + ["pre_logits"]  # network order


def test_full_mode_shortcut_is_padded_to_the_grown_branch():
  model = get_model("bagnet33", conv_mode="full", **TINY)
  # stem 34; stride-2 3×3 p2 blocks: (n + 1)//2 + 1 -> 18, 10, 6; layer4's 3×3 s1 p2 -> 8.
  shapes = _feature_shapes(model, 32)
  assert [shapes[f"stage{i}"][1] for i in range(1, 5)] == [18, 10, 6, 8]


def test_aps_circular_stride2_blocks_reuse_the_index():
  # With circular 3×3 convs and APS, BagNet-9's downsampling commutes with circular shifts.
  model = get_model("bagnet9", conv_mode="circular", antialias="aps", layers=(1, 1, 1, 1), **TINY)
  x = jax.random.normal(jax.random.key(0), (2, 16, 16, 3))
  variables = jax.jit(lambda x: model.init(jax.random.key(1), x, train=False))(x)
  apply = jax.jit(lambda x: model.apply(variables, x, train=False))
  np.testing.assert_allclose(apply(jnp.roll(x, (3, 1), axis=(1, 2))), apply(x), rtol=1e-5, atol=1e-5)


def test_errors():
  with pytest.raises(ValueError, match="conv_mode='zero'"):
    get_model("bagnet33", conv_mode="zero")
  with pytest.raises(ValueError, match="antialias="):
    get_model("bagnet33", antialias=3)
  with pytest.raises(ValueError, match="one entry per stage"):
    get_model("bagnet33", layers=(1, 1))
  model = get_model("bagnet33", **TINY)
  with pytest.raises(ValueError, match=r"smaller than the minimum \(33, 33\)"):
    model.init(jax.random.key(0), jnp.zeros((1, 32, 40, 3)), train=False)
