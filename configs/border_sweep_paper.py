"""Border-distance sweep at the paper's full size (F-Conv paper Exp 1, Fig. 4; docs/experiments.md) — for GPU users.

    python -m train.main --config configs/border_sweep_paper.py --workdir /data/border_sweep_paper \
        --config.data.image_source=imagenet --config.data.data_dir=/data/tfds   # the paper's images (optional)

Hardware: one GPU with >= 40 GB (the b=512 point is a 1144-px image; ResNet-18 at batch 8). Not a CPU job:
7 borders × 2 conv modes × 2 settings = 28 runs of up to 30 epochs on 2000 images.

Protocol (the reference, CWB ``QI_location.py``, with its train = val = test flaw fixed): 1000 natural images
per split (disjoint), each resized to 56×56 and pasted at the top-left (class 0) or bottom-right (class 1) of a
black 120×120 canvas (the reference code's canvas, offsets 0 and 64; the paper's text says 112), black border
b ∈ {0, 16, 32, 64, 128, 256, 512} on all sides. ResNet-18 width 64 with the reference's global max pool head;
SGD Nesterov lr 1e-3 momentum 0.9, weight decay 5e-5, batch 8, lr × 0.1 after 5 stalled val epochs, 30 epochs,
early stopping (best val loss tested). Settings: from scratch and random frozen features (weight decay is set
to 0 for frozen runs by hand if exact freezing matters: coupled L2 shrinks the frozen weights slightly).
The default image source is scikit-image's bundled photos; ``image_source=imagenet`` reads a prepared TFDS
``imagenet2012`` (validation split), as the paper.

Published finding (paper Fig. 4, ResNet-18): from scratch, location is still classified at b=128; random
frozen features only near the boundary; F-Conv (not in the paper's figure) is expected at chance. Here
``norm='none'`` would make F-Conv exactly invariant; this config keeps ResNet-18's BatchNorm (``norm='batch'``)
to match the paper's network, so F-Conv may read the map's outline through BatchNorm (see
``configs/border_sweep.py``). Large borders (256, 512) exceed ``data.max_gb`` and are streamed per batch,
which needs the trainer's streaming path.
"""

import ml_collections

from configs import border_sweep
from jaxborders.data import quadrant


def get_config() -> ml_collections.ConfigDict:
  config = border_sweep.get_config()
  config.batch_size = 8
  config.num_epochs = 30
  config.model.width = 64
  config.model.stage_sizes = (2, 2, 2, 2)  # ResNet-18
  config.model.norm = "batch"
  config.data.num_train = quadrant.PAPER_SPLIT_SIZE
  config.data.num_val = quadrant.PAPER_SPLIT_SIZE
  config.data.num_test = quadrant.PAPER_SPLIT_SIZE
  config.data.patch_size = quadrant.PAPER.patch_size
  config.data.canvas_size = quadrant.PAPER.canvas_size
  config.data.color = "rgb"
  config.optimizer.name = "sgd"
  config.optimizer.learning_rate = 1e-3
  config.optimizer.momentum = 0.9
  config.optimizer.nesterov = True
  config.optimizer.weight_decay = 5e-5
  config.schedule.name = "plateau"
  config.schedule.plateau_factor = 0.1
  config.schedule.plateau_patience = 5
  config.schedule.plateau_metric = "val/loss"
  config.early_stopping.metric = "val/loss"
  config.early_stopping.mode = "min"
  config.early_stopping.patience = 10
  config.eval.every_n_epochs = 1
  config.eval.batch_size = 50
  config.checkpoint.every_n_epochs = 1
  config.log.every_n_epochs = 1
  config.log.tensorboard = True
  config.sweep.data = ml_collections.ConfigDict({"border": quadrant.PAPER.borders})
  return config
