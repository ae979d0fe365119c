"""Trainer failures: bad configs, unwritable workdir, model/data mismatch, missing data, NaN loss (in-process)."""

import os

import pytest

from train import config as config_lib
from train import data as data_lib
from train import synthetic
from train import trainer


def tiny_config(**data):
  c = synthetic.tiny_config()
  c.num_steps = 4
  c.data.shuffle = True
  for k, v in data.items():
    c.data[k] = v
  c.optimizer.name = "sgd"
  c.optimizer.learning_rate = 0.05
  return c


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c.optimizer.__setattr__("lrate", 1.0),
     r"unknown config key\(s\) 'optimizer.lrate'; valid keys: .*optimizer.learning_rate"),
    (lambda c: c.model.__setattr__("conv_mdoe", "same"), r"unknown model key\(s\) 'model.conv_mdoe'.*model.conv_mode"),
    (lambda c: c.data.__setattr__("trian_size", 3), r"unknown data key\(s\) 'data.trian_size'.*data.train_size"),
    (lambda c: c.optimizer.__setattr__("name", "adam"), r"optimizer.name='adam' is not supported; accepted values: 'sgd'"),
    (lambda c: c.model.__setattr__("conv_mode", "zero"), r"conv_mode='zero' is not supported; accepted values: 'valid'"),
    (lambda c: c.model.__setattr__("name", "resnet_9000"), r"model.name='resnet_9000' is not registered"),
    (lambda c: c.early_stopping.__setattr__("metric", "val/acc"), r"early_stopping.metric='val/acc'.*'val/loss'"),
    (lambda c: c.data.__setattr__("source", "nope"), r"data.source='nope' is not a data source; accepted values: .*'redgreen'"),
    (lambda c: c.model.__setattr__("antialias", "blur"), r"antialias='blur' is not supported by redgreen_net"),
])
def test_bad_configs_fail_with_message(mutate, message):
  c = tiny_config()
  mutate(c)
  with pytest.raises(ValueError, match=message):
    config_lib.validate(c)


def test_bad_sweep_key_and_override_path():
  c = tiny_config()
  c.sweep.model = {"conv_mode": ("same", "bogus")}
  with pytest.raises(ValueError, match="conv_mode='bogus'"):
    config_lib.validate(c)
  c = tiny_config()
  c.sweep.optimizer = {"lr": (0.1,)}
  with pytest.raises(ValueError, match=r"unknown sweep key\(s\) 'sweep.optimizer.lr'"):
    config_lib.validate(c)
  with pytest.raises(ValueError, match=r"unknown command-line config key\(s\) 'optimizer.lr'; valid keys: .*optimizer.learning_rate"):
    config_lib.check_override_paths(tiny_config(), ["optimizer.lr", "seed"])


def test_unwritable_workdir_fails_before_training(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("x")
  with pytest.raises(trainer.ConfigError, match="is not writable"):
    trainer.train_and_evaluate(tiny_config(), str(blocker / "sub"))


def test_image_too_small_for_model_fails_before_training(tmp_path):
  c = tiny_config(image_size=12)
  c.model.conv_mode = "valid"  # the valid Red-Green net needs >= 17 pixels
  with pytest.raises(trainer.ConfigError, match=r"does not fit the model.*\(12, 12, 3\)"):
    trainer.train_and_evaluate(c, str(tmp_path))
  assert not (tmp_path / "checkpoints").exists()


def test_missing_data_explains(tmp_path):
  with pytest.raises(data_lib.DataMissingError, match="obtain it"):
    trainer.train_and_evaluate(tiny_config(missing=True), str(tmp_path))


def test_nan_loss_stops_naming_step_and_keeps_last_good_checkpoint(tmp_path):
  c = tiny_config()
  c.num_steps = 8  # 2 steps per epoch
  c.debug.nan_at_step = 5
  with pytest.raises(trainer.NonFiniteLossError, match=r"at step 5 \(epoch 2\).*last good checkpoint is step 4"):
    trainer.train_and_evaluate(c, str(tmp_path))
  assert sorted(os.listdir(tmp_path / "checkpoints"))[-1] == "4"
