"""Border-distance sweep (F-Conv paper Exp 1, Fig. 4; docs/experiments.md), CPU scale.

    python -m train.main --config configs/border_sweep.py --workdir /tmp/border_sweep

Quadrant task: a natural-image patch (24×24, cut from scikit-image's bundled photos; train/val/test from
disjoint source images) at the top-left (class 0) or bottom-right (class 1) of a black 56×56 canvas, then a black
border b ∈ {0, 8, 16, 32, 64} on all four sides (the paper: 56 in 112-120, b up to 512; see
``configs/border_sweep_paper.py``). Network: ``quadrant_net``, a narrow ResNet-10 (width 8, one BasicBlock per
stage, total stride 32, receptive field 193 px: the whole 184-px image at b=64; global max pool → linear, as
the reference's Exp 1 script). Settings: trained from scratch, and random frozen features (only the linear head
learns: ``model.frozen_features=True`` stops the gradient at the pooled features). Conv modes: same (S-Conv) and
full (F-Conv). 20 runs, one seed (``--config.seeds="(0,1,2)"`` for mean ± std).

Deliberate choices (say so when comparing with the paper):

* ``norm='none'``: no BatchNorm. BatchNorm maps the black background to a non-zero constant, so the next
  layer's zero padding draws an edge around the map and F-Conv networks can locate the patch again (measured
  with a smaller variant: F-Conv with BatchNorm reached ~90% test accuracy at b=0 and b=16). Without it, every
  layer maps zero to zero and F-Conv is exactly invariant to the corner swap: chance by construction.
  ``--config.model.norm=batch`` to see it.
* Corners 32 px apart (= the net's total stride): F-Conv sees both classes on the same sampling phase, so it
  cannot read the location from aliasing either (the paper's code: 64 px apart for ResNet-18).
* Adam (lr 1e-3, batch 20, 30 epochs) instead of the reference's SGD-Nesterov lr 1e-3 batch 8 with a plateau
  schedule (up to 30 epochs): the CPU budget. Grayscale input: colour carries no location; 3× cheaper stem.

Published finding (ResNet-18, from scratch): location is still classified at b=128 (a 368-px image); random
frozen features only close to the boundary. Measured here (seed 0, ``python -m train.main --config
configs/border_sweep.py``): S-Conv from scratch 100% at every border up to b=64 (a 184-px image); random frozen
S-Conv 95.5 / 92.5 / 95.0 / 85.0 / 50%; F-Conv exactly 50% at every border in both settings. 2 min 8 s wall on
this 2-core CPU (20 runs, two at a time: ``parallel_runs``). With 8 epochs S-Conv still failed at b=64.
The report (``train/reports/border_sweep.py``) prints the table and writes
``border_sweep.md`` and ``border_sweep.png`` (accuracy vs border, the paper's Fig. 4 layout).
"""

import ml_collections

from configs import default


def get_config() -> ml_collections.ConfigDict:
  config = default.get_config()
  config.seed = 0
  config.batch_size = 20
  config.num_epochs = 30
  config.model.name = "quadrant_net"
  config.model.conv_mode = "same"
  config.model.num_classes = 2
  config.model.width = 8
  config.model.stage_sizes = (1, 1, 1, 1)
  config.model.pool = "max"
  config.model.norm = "none"
  config.model.frozen_features = False
  config.data.source = "quadrant"
  config.data.shuffle = True
  config.data.num_train = 100  # source images: 200 task images per split (the paper: 1000 -> 2000)
  config.data.num_val = 25
  config.data.num_test = 100
  config.data.patch_size = 24
  config.data.canvas_size = 56
  config.data.border = 0
  config.data.color = "gray"
  config.data.image_source = "skimage"  # or 'imagenet' (a prepared TFDS imagenet2012; data_dir=...)
  config.data.data_seed = 0
  config.optimizer.name = "adamw"
  config.optimizer.learning_rate = 1e-3
  config.optimizer.weight_decay = 0.0  # keeps frozen features exactly frozen
  config.schedule.name = "constant"
  config.eval.every_n_epochs = 30  # evaluate at the end only (no early stopping: the final params are tested)
  config.eval.batch_size = 100
  config.checkpoint.every_n_epochs = 10
  config.checkpoint.keep = 1
  config.log.every_n_epochs = 10
  config.log.tensorboard = False
  config.sweep.data = ml_collections.ConfigDict({"border": (0, 8, 16, 32, 64)})
  config.sweep.model = ml_collections.ConfigDict({"conv_mode": ("same", "full"), "frozen_features": (False, True)})
  config.parallel_runs = 0  # CPU: one single-threaded run per core at a time
  config.report = "border_sweep"
  return config
