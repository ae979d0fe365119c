"""Patch-location toy (F-Conv paper Fig. 1; docs/models.md): one 5×5 conv -> ReLU -> global max -> Linear(1, 2).

    python -m train.main --config configs/patch_toy.py --workdir /tmp/patch_toy

The identical natural-image patch (16×16, cut from scikit-image's cameraman) at the top-left (class 0) or the
bottom-right (class 1) of a black 32×32 grayscale image. As the reference notebook (CWB ``chess.ipynb``): the
two images are the whole training set and the test set, batch 1 without shuffling, SGD lr 0.1 momentum 0.9,
100 epochs, 5 seeds (only the initialisation varies). Modes same / full / circular (add 'valid' with
``--config.sweep.model.conv_mode="('valid','same','full','circular')"``).

Published finding: same-zero classifies the location perfectly (100%, 5/5 seeds); full and circular cannot
(both images give identical logits: exactly 50%). The report (``train/reports/patch_toy.py``) prints the table
and writes ``patch_toy.md`` and ``patch_toy_filters.png`` (learned filter and per-class response maps, like
the paper's Fig. 1). 26 s wall on this (shared) 2-core CPU (15 runs; one compile per mode).

Measured (seeds 0-4): same 90 ± 20% (100% in 4/5 seeds; seed 0 ends with a dead filter: zero response on both
images, loss ln 2 — an SGD lr 0.1 failure, counted in the report), full 50 ± 0, circular 50 ± 0.
"""

import ml_collections

from configs import default


def get_config() -> ml_collections.ConfigDict:
  config = default.get_config()
  config.seeds = (0, 1, 2, 3, 4)
  config.batch_size = 1  # the reference's DataLoader: batch 1, no shuffle
  config.num_epochs = 100
  config.model.name = "patch_toy_net"
  config.model.conv_mode = "same"
  config.model.num_classes = 2
  config.data.source = "patch_toy"
  config.data.shuffle = False
  config.data.num_patches = 1
  config.data.image_size = 32
  config.data.patch_size = 16
  # The reference tests on its training images: the toy asks "can it", not "does it generalise".
  config.data.held_out = False
  config.optimizer.name = "sgd"
  config.optimizer.learning_rate = 0.1
  config.optimizer.momentum = 0.9
  config.optimizer.weight_decay = 0.0
  config.schedule.name = "constant"
  config.eval.every_n_epochs = 100  # runs are a few hundred steps: evaluate at the end only
  config.eval.batch_size = 2
  config.checkpoint.every_n_epochs = 100
  config.checkpoint.keep = 1
  config.log.every_n_epochs = 100
  config.log.tensorboard = False
  config.sweep.model = ml_collections.ConfigDict({"conv_mode": ("same", "full", "circular")})
  config.report = "patch_toy"
  return config
