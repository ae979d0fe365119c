"""``model.pretrained`` in a config: a fresh run starts from the named weights, a resumed run from its checkpoint.

A run A trains and writes ``params.msgpack``; run B (another seed) names it as ``model.pretrained`` and trains one
step with a vanishing learning rate, so B ends where it started: on A's parameters. Without ``pretrained`` B starts
from its own initialisation and ends elsewhere. A missing file is refused before training (exit-2 error type).
"""

import os

import numpy as np
import pytest

from train import synthetic, trainer


def _config(seed, pretrained=None, learning_rate=0.01):
  c = synthetic.tiny_config()
  c.seed = seed
  c.num_steps = 1
  c.optimizer.name = "sgd"
  c.optimizer.learning_rate = learning_rate
  c.early_stopping.metric = ""
  if pretrained is not None:
    c.model.pretrained = pretrained
  return c


def _flat(params):
  return np.concatenate([np.ravel(np.asarray(v)) for v in _leaves(params)])


def _leaves(tree):
  if isinstance(tree, dict):
    for k in sorted(tree):
      yield from _leaves(tree[k])
  else:
    yield tree


def test_fresh_run_starts_from_pretrained_weights(tmp_path):
  a = trainer.train_and_evaluate(_config(seed=0), str(tmp_path / "a"))
  source = os.path.join(str(tmp_path / "a"), "params.msgpack")
  b = trainer.train_and_evaluate(_config(seed=1, pretrained=source, learning_rate=1e-30), str(tmp_path / "b"))
  plain = trainer.train_and_evaluate(_config(seed=1, learning_rate=1e-30), str(tmp_path / "plain"))
  pa, pb, pp = (_flat(trainer.load_params(str(tmp_path / d))) for d in ("a", "b", "plain"))
  np.testing.assert_allclose(pb, pa, rtol=1e-6, atol=1e-12)
  assert np.max(np.abs(pp - pa)) > 1e-3  # without pretrained weights the same seed ends elsewhere
  assert a["params_fingerprint"] != plain["params_fingerprint"]
  del b


def test_missing_pretrained_file_is_refused(tmp_path):
  with pytest.raises(trainer.ConfigError, match="model.pretrained"):
    trainer.train_and_evaluate(_config(seed=0, pretrained=str(tmp_path / "nope.msgpack")), str(tmp_path / "run"))
