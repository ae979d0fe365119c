"""Red-Green (F-Conv paper Exp 2, docs/experiments.md): one border mode, one seed.

    python -m train.main --config configs/redgreen.py --config.model.conv_mode=full --workdir /tmp/rg_full

Adadelta lr 1.0 rho 0.9 eps 1e-6, weight decay 5e-5 (PyTorch-style L2), batch 200, up to 50 epochs, early
stopping on val loss (patience 8, the reference's counting), the best parameters tested on the similar and
dissimilar test sets. Independent train/val/test draws (``--config.data.leaky_splits=True`` reproduces the
reference's leak). About 5-20 s per run on a 2-core CPU (full conv is the slowest).
"""

import ml_collections

from configs import default


def get_config() -> ml_collections.ConfigDict:
  config = default.get_config()
  config.batch_size = 200
  # 20 microbatches of 10 per step (the same update as one batch of 200): on CPU the activations of a microbatch
  # stay in cache, ~2x faster than one pass over 200 (benchmarks/redgreen.py). Set 0 on GPU.
  config.microbatch_size = 10
  config.num_epochs = 50
  config.model.name = "redgreen_net"
  config.model.conv_mode = "full"  # valid, same, circular or full
  config.model.num_classes = 2
  config.data.source = "redgreen"
  config.data.shuffle = False  # the reference's DataLoader does not shuffle (labels alternate: balanced batches)
  config.data.train_size = 2000
  config.data.val_size = 1000
  config.data.test_size = 1000
  config.data.data_seed = 1988  # the reference's generator seed; the same data for every run seed
  config.data.leaky_splits = False
  config.optimizer.name = "adadelta"
  config.optimizer.learning_rate = 1.0
  config.optimizer.rho = 0.9
  config.optimizer.eps = 1e-6
  config.optimizer.weight_decay = 5e-5
  config.schedule.name = "constant"
  config.eval.every_n_epochs = 1
  config.eval.batch_size = 50  # scanned in chunks of 50 inside one call (cache-sized on CPU)
  config.early_stopping.metric = "val/loss"
  config.early_stopping.mode = "min"
  config.early_stopping.patience = 8
  config.checkpoint.every_n_epochs = 10  # runs are seconds long; saving every epoch would cost more than training
  config.checkpoint.keep = 1
  config.log.every_n_epochs = 10
  return config
