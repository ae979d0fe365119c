"""``train.eval``: metrics against hand-computed values, exact invariance of a circular + APS ResNet, every report
file of a tiny trained sweep (in process and through the command line), and the natural-image data source."""

from __future__ import annotations

import doctest
import json
import os
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxborders.data import natural
from jaxborders.ops import metrics as M
from jaxborders.ops import shifts as S
from train import eval as eval_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class PositionReader(nn.Module):
  """Linear read-out of absolute pixel positions: logits[k] = sum(x * pattern[..., k]) (no invariance at all)."""

  size: int = 8
  num_classes: int = 3

  @nn.compact
  def __call__(self, x, train=False):
    del train
    pattern = self.param("pattern", nn.initializers.normal(1.0), (self.size, self.size, x.shape[-1], self.num_classes))
    logits = jnp.einsum("nhwc,hwck->nk", x, pattern)
    self.sow("intermediates", "pixels", x, init_fn=lambda: None, reduce_fn=lambda _, new: new)
    self.sow("intermediates", "pre_logits", logits, init_fn=lambda: None, reduce_fn=lambda _, new: new)
    return logits


def _softmax(z):
  e = np.exp(z - z.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def test_metrics_agree_with_hand_computed_values():
  rng = np.random.default_rng(0)
  n, crop, margin, k = 12, 8, 4, 3
  images = rng.normal(size=(n, crop + margin, crop + margin, 1)).astype(np.float32)
  labels = rng.integers(0, k, n).astype(np.int32)
  model = PositionReader(crop, k)
  variables = model.init(jax.random.key(1), jnp.zeros((1, crop, crop, 1)))
  pattern = np.asarray(variables["params"]["pattern"], np.float64)
  logits = lambda x: np.einsum("nhwc,hwck->nk", x.astype(np.float64), pattern)
  settings = dict(eval_lib.SHIFT_DEFAULTS, passes=2, equivariance_max_shift=3, seed=5)
  proto = eval_lib.protocol(settings, (crop, crop, 1), images.shape[1:])
  assert (proto["crop"], proto["max_offset"], proto["circular_max_shift"], proto["adversarial_max_shift"]) == (
      (8, 8), 4, 2, 2)
  out = eval_lib.evaluate_variables(model, variables, images, labels, proto, settings)

  window = lambda o: images[:, o[0]:o[0] + crop, o[1]:o[1] + crop]
  centred = window((2, 2))
  assert out["accuracy"] == pytest.approx(100 * np.mean(logits(centred).argmax(-1) == labels))
  diag = [100 * np.mean(logits(window((o, o))).argmax(-1) == labels) for o in range(margin + 1)]
  np.testing.assert_allclose(out["diagonal"]["accuracy"], diag)
  assert out["diagonal"]["mean"] == pytest.approx(np.mean(diag))
  # Consistency: the same offset draw as the metric (key = seed), recomputed image by image.
  key = jax.random.key(5)
  pairs = np.asarray(S.random_offset_pairs(key, n, 2, 0, margin, 2))
  same = [logits(window(pairs[p, i, 0])[i:i + 1]).argmax() == logits(window(pairs[p, i, 1])[i:i + 1]).argmax()
          for p in range(2) for i in range(n)]
  assert out["consistency"] == pytest.approx(100 * np.mean(same))
  pairs = np.asarray(S.random_offset_pairs(jax.random.fold_in(key, 1), n, 2, -2, 2, 2))
  roll = lambda i, s: np.roll(centred[i:i + 1], tuple(s), axis=(1, 2))
  same = [logits(roll(i, pairs[p, i, 0])).argmax() == logits(roll(i, pairs[p, i, 1])).argmax()
          for p in range(2) for i in range(n)]
  assert out["circular_consistency"] == pytest.approx(100 * np.mean(same))
  # Sub-pixel: the metric's documented draw (key fold 2), each image Fourier-shifted with NumPy's FFT.
  def fourier(x, shift):
    for axis, t in zip((1, 2), shift):
      k = np.fft.fftfreq(x.shape[axis]) * x.shape[axis]
      phase = np.exp(-2j * np.pi * k * t / x.shape[axis]).reshape([-1 if a == axis else 1 for a in range(x.ndim)])
      x = np.fft.ifft(np.fft.fft(x, axis=axis) * phase, axis=axis).real  # crop 8 even: Nyquist keeps cos(pi t)
    return x
  pairs = np.asarray(jax.random.uniform(jax.random.fold_in(key, 2), (2, n, 2, 2), jnp.float32, -0.5, 0.5))
  same = [logits(fourier(centred[i:i + 1], pairs[p, i, 0])).argmax() ==
          logits(fourier(centred[i:i + 1], pairs[p, i, 1])).argmax() for p in range(2) for i in range(n)]
  assert out["subpixel_consistency"] == pytest.approx(100 * np.mean(same))
  sub = [100 * np.mean(logits(fourier(centred, (s, s))).argmax(-1) == labels) for s in (0, 0.25, 0.5, 0.75, 1)]
  assert out["subpixel_accuracy"]["shifts"] == [0.0, 0.25, 0.5, 0.75, 1.0]
  np.testing.assert_allclose(out["subpixel_accuracy"]["accuracy"], sub)
  assert out["subpixel_accuracy"]["mean"] == pytest.approx(np.mean(sub))
  # Adversary: correct at every window within ±m of the centre.
  for m, acc in zip(out["adversarial"]["max_shift"], out["adversarial"]["accuracy"]):
    ok = np.ones(n, bool)
    for dy in range(-m, m + 1):
      for dx in range(-m, m + 1):
        ok &= logits(window((2 + dy, 2 + dx))).argmax(-1) == labels
    assert acc == pytest.approx(100 * ok.mean())
  p = np.stack([_softmax(logits(window((o, o))))[np.arange(n), labels] for o in range(margin + 1)], 1)
  assert out["classification_variation"] == pytest.approx(np.mean(p.std(1)), abs=1e-6)
  # The identity map is exactly equivariant; position-read logits are not invariant.
  assert np.max(out["equivariance"]["pixels"]) < 1e-6
  assert np.mean(out["equivariance"]["pre_logits"]) > 0.05
  assert np.asarray(out["equivariance"]["pixels"]).shape == (3, 3)
  w = pattern
  tv = (np.abs(np.diff(w, axis=0)).sum((0, 1, 2)) + np.abs(np.diff(w, axis=1)).sum((0, 1, 2))) / np.abs(w).sum((0, 1, 2))
  assert out["filter_tv"]["pattern"] == pytest.approx(tv.mean())


def test_circular_aps_resnet_is_exactly_circular_invariant():
  """docs/antialiasing.md: circular padding + APS + global average pooling: 100% circular consistency before training."""
  from jaxborders.models import get_model
  model = get_model("resnet18", conv_mode="circular", antialias="aps", num_classes=10, width=2)
  images = jax.random.normal(jax.random.key(0), (4, 32, 32, 3))
  variables = jax.jit(model.init)(jax.random.key(1), images[:1])
  apply = jax.tree_util.Partial(lambda v, x: model.apply(v, x), variables)
  # Shifts up to ±16 on 32 px: every phase of the network's total stride 32 is met.
  assert float(M.circular_consistency(apply, images, jax.random.key(2), max_shift=16, passes=2)) == 100.0


def test_equivariant_layers():
  """Same-size maps are compared (their size divides the input); grown F-Conv maps are skipped, with a reason."""
  from jaxborders.models import get_model
  shape = (1, 32, 32, 3)
  same = get_model("resnet18", conv_mode="same", num_classes=10, width=2)
  variables = jax.eval_shape(same.init, jax.random.key(1), jnp.zeros(shape))
  names, skipped = eval_lib.equivariant_layers(same, variables, shape)
  blocks = [n for s in range(1, 5) for n in (f"layer{s}.0", f"layer{s}.1", f"stage{s}")]
  assert names == ["stem", *blocks, "pre_logits"] and not skipped  # network order
  full = get_model("resnet18", conv_mode="full", num_classes=10, width=2)
  variables = jax.eval_shape(full.init, jax.random.key(1), jnp.zeros(shape))
  names, skipped = eval_lib.equivariant_layers(full, variables, shape)
  assert "pre_logits" in names and "stem" in skipped and "does not divide" in skipped["stem"]


TINY = '''
import ml_collections
from configs import default


def get_config():
  c = default.get_config()
  c.batch_size = 8
  c.num_steps = 2
  c.model.name = "redgreen_net"
  c.model.conv_mode = "same"
  c.model.num_classes = 2
  c.data.source = "natural"
  c.data.images = ("camera", "moon")
  c.data.image_size = 16
  c.data.eval_margin = 4
  c.data.source_size = 128
  c.data.train_per_class = 8
  c.data.val_per_class = 4
  c.data.test_per_class = 6
  c.optimizer.name = "adamw"
  c.optimizer.learning_rate = 1e-3
  c.eval.batch_size = 12
  c.log.tensorboard = False
  c.sweep.model = ml_collections.ConfigDict({"conv_mode": ("same", "circular")})
  # Read by train.eval only (not yet in the trainer's schema: the fixture drops it before training).
  c.eval.shift = ml_collections.ConfigDict({"equivariance_max_shift": 2, "passes": 1, "grid_examples": 4})
  return c
'''


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """A tiny two-run sweep (redgreen_net same / circular on natural images), trained in process."""
  from train import trainer
  tmp = tmp_path_factory.mktemp("eval")
  path = tmp / "tiny.py"
  path.write_text(TINY)
  namespace = {}
  exec(compile(TINY, str(path), "exec"), namespace)  # pylint: disable=exec-used
  config = namespace["get_config"]()
  del config.eval["shift"]
  trainer.train_and_evaluate(config, str(tmp / "work"))
  return config, str(path), str(tmp / "work")


def test_eval_command_line_writes_every_report_file(trained):
  _, config_path, workdir = trained
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
  proc = subprocess.run([sys.executable, "-m", "train.eval", "--config", config_path, "--workdir", workdir], cwd=ROOT,
                        env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "Diagonal accuracy" in proc.stdout and "eval.json" in proc.stdout
  for f in ("eval.json", "eval.md", "diagonal_shift.png", "adversarial_shift.png", "subpixel_shift.png",
            "consistency_accuracy.png",
            "filter_tv.png", "equivariance_conv_mode=same.png", "equivariance_conv_mode=circular.png"):
    assert os.path.getsize(os.path.join(workdir, f)) > 0, f
  with open(os.path.join(workdir, "eval.json")) as fh:
    summary = json.load(fh)
  assert [r["name"] for r in summary["runs"]] == ["conv_mode=same", "conv_mode=circular"]
  assert summary["settings"]["equivariance_max_shift"] == 2  # eval.shift of the config file
  for r in summary["runs"]:
    with open(os.path.join(r["run_dir"], "eval.json")) as fh:
      per_run = json.load(fh)
    assert per_run["protocol"]["crop"] == [16, 16] and per_run["protocol"]["max_offset"] == 4
    assert len(per_run["diagonal"]["accuracy"]) == 5 and 0 <= per_run["consistency"] <= 100
    assert 0 <= per_run["subpixel_consistency"] <= 100 and len(per_run["subpixel_accuracy"]["accuracy"]) == 5
    assert list(per_run["equivariance"]) == ["relu1", "relu2", "relu3", "relu4", "pre_logits"]
  text = open(os.path.join(workdir, "eval.md")).read()
  assert "| model | S | C |" in text and "| redgreen_net |" in text and "sub-px cons." in text
  proc = subprocess.run([sys.executable, "-m", "train.eval", "--config", config_path, "--workdir",
                         os.path.join(workdir, "missing")], cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=600)
  assert proc.returncode == 2 and "no checkpoints" in proc.stderr


def test_unknown_shift_key_lists_valid_keys():
  config = ml_collections.ConfigDict({"eval": {"shift": {"pases": 2}}})
  with pytest.raises(ValueError, match="unknown eval.shift key.*pases.*valid keys: split"):
    eval_lib.shift_settings(config)


def test_natural_source():
  assert doctest.testmod(natural).failed == 0
  cfg = ml_collections.ConfigDict(dict(natural.DEFAULTS, images=("camera", "moon", "grass"), train_per_class=5,
                                       test_per_class=4, source_size=128, image_size=16))
  a, b = natural.load(cfg, "train", seed=0), natural.load(cfg, "train", seed=7)
  np.testing.assert_array_equal(a["image"], b["image"])  # the run seed does not change the data
  assert np.bincount(a["label"]).tolist() == [5, 5, 5]
  assert a["image"].min() >= 0 and a["image"].max() <= 1
  test = natural.load(cfg, "test", seed=0)
  assert test["image"].shape == (12, 24, 24, 1)
  cfg.data_seed = 1
  assert not np.array_equal(natural.load(cfg, "train", 0)["image"], a["image"])
  with pytest.raises(ValueError, match="data.images entry.*accepted values"):
    natural.load(ml_collections.ConfigDict(dict(natural.DEFAULTS, images=("camera", "cat"))), "train", 0)
  with pytest.raises(ValueError, match="band .* smaller than its crops"):
    natural.load(ml_collections.ConfigDict(dict(natural.DEFAULTS, source_size=64)), "test", 0)


def test_has_checkpoint_needs_a_saved_step(tmp_path):
  assert not eval_lib.has_checkpoint(str(tmp_path))
  (tmp_path / "checkpoints").mkdir()  # created by a run that was stopped before its first save
  assert not eval_lib.has_checkpoint(str(tmp_path))
  (tmp_path / "checkpoints" / "240").mkdir()
  assert eval_lib.has_checkpoint(str(tmp_path))
