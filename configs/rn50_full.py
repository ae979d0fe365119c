"""ImageNet-1k ResNet-50 with F-Conv (full convolution, F-Conv paper; docs/models.md, docs/experiments.md): the base of the rn50 family.

    python -m train.main --config configs/rn50_full.py --workdir gs://BUCKET/rn50_full \
        --config.data.data_dir=/path/to/tensorflow_datasets
    python -m train.eval --config configs/rn50_full.py --workdir gs://BUCKET/rn50_full \
        --config.data.eval_image_size=288 --config.data.eval_resize_size=288   # shift metrics: 224 in 288

Hardware: sized for a TPU v3-8 / v4-8 or 8 GPUs (global batch 256, bfloat16 compute, float32 parameters).
F-Conv ResNet-50 costs 3.14× the FLOPs of S-Conv at 224 (measured here; the paper reports 15% slower
training): expect ~3× the S-Conv time (roughly 1-2 days on a v3-8 for 90 epochs).
Data: ``tfds build imagenet2012 --file_format=array_record --manual_dir=<dir with the ILSVRC2012 tars>``
once (needs TensorFlow; reading does not); a missing data set exits with that command.

Recipe (the papers' ImageNet protocol): SGD lr 0.1 momentum 0.9, weight decay 1e-4 (PyTorch-style L2), batch
256, 90 epochs, lr ×0.1 at epochs 30 and 60; Inception random-resized crop + flip for training, resize 256 +
centre crop 224 for validation.

Published: the F-Conv paper gives ResNet-50 only on subsets (Exp 4: 50 images/class S-Conv 26.4% vs F-Conv
31.1%, similar for "all"; Exp 3 on ImageNet-200, ``configs/exp3_shift_grid.py``). S-Conv reference (BlurPool
paper, ``configs/rn50_same.py``): 76.16% top-1 / 89.20% consistency; with BlurPool Bin-5 77.04 / 91.31.
"""

import ml_collections

from configs import default


def get_config() -> ml_collections.ConfigDict:
  config = default.get_config()
  config.seed = 0
  config.batch_size = 256  # global; 32 per device on 8 devices
  config.num_epochs = 90
  config.model.name = "resnet50"
  config.model.conv_mode = "full"
  config.model.antialias = "none"
  config.model.num_classes = 1000
  config.data.source = "tfds_source"
  config.data.dataset = "imagenet2012"
  config.data.image_size = 224
  config.data.resize_size = 0  # validation shorter side: round(224 / 0.875) = 256
  config.data.eval_image_size = 0  # 224; train.eval's shift metrics want 288 (see the command above)
  config.data.eval_resize_size = 0
  config.data.augment = True
  config.data.data_dir = ""  # '' = $TFDS_DATA_DIR or ~/tensorflow_datasets
  config.data.worker_count = 8  # grain worker processes per host (decoding JPEGs is the bottleneck)
  config.optimizer.name = "sgd"
  config.optimizer.learning_rate = 0.1
  config.optimizer.momentum = 0.9
  config.optimizer.nesterov = False
  config.optimizer.weight_decay = 1e-4
  config.schedule.name = "step"
  config.schedule.step_epochs = (30, 60)
  config.schedule.step_factor = 0.1
  config.eval.every_n_epochs = 1
  config.eval.batch_size = 1024
  config.precision.compute_dtype = "bfloat16"  # on accelerators; --config.precision.compute_dtype=float32 on CPU
  config.checkpoint.every_n_epochs = 1  # 5004 steps per epoch
  config.checkpoint.keep = 2
  config.log.every_n_steps = 100
  config.log.every_n_epochs = 1
  return config
