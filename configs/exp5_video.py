"""F-Conv paper Exp 5 / Table 3: action recognition from scratch with 3D ResNet-18/34/50 × S-Conv / F-Conv.

    python -m train.main --config configs/exp5_video.py --workdir /runs/exp5_ucf101 \
        --config.data.root=/data/UCF101_frames --config.data.split_dir=/data/ucfTrainTestlist
    python -m train.main --config configs/exp5_video.py --workdir /runs/exp5_hmdb51 \
        --config.data.dataset=hmdb51 --config.model.num_classes=51 \
        --config.data.root=/data/HMDB51_frames --config.data.split_dir=/data/testTrainMulti_7030_splits

6 runs (3D ResNet-18 / 34 / 50 × same / full; F-Conv is spatial-only, as the paper: padding (1, 2, 2) in
(T, H, W)). Data (``jaxborders.data.video``): frame folders ``root/<class>/<video>/frame_00001.jpg`` and the
official split files, fold 1; 16-frame clips at 112×112, multiscale corner crop + flip for training.
Recipe (docs/experiments.md; Hara et al.): SGD lr 0.1 momentum 0.9 weight decay 1e-3, reduce-on-plateau ×0.1 on the
validation loss (patience 10), batch 128, 200 epochs (the batch size and length are Hara et al.'s, not stated
in the F-Conv paper). bfloat16 compute.

Hardware: one 8-GPU host or a TPU v3-8; UCF101 split 1 has 9.5k training clips: ~75 steps per epoch.
Published top-1 (S / F): UCF101 RN18 38.6 / 40.6, RN34 37.0 / 46.9, RN50 36.2 / 44.1;
HMDB51 RN18 16.1 / 19.3, RN34 15.2 / 18.3, RN50 14.3 / 19.0.
"""

import ml_collections

from configs import default


def get_config() -> ml_collections.ConfigDict:
  config = default.get_config()
  config.seed = 0
  config.batch_size = 128
  config.num_epochs = 200
  config.model.name = "resnet3d_18"
  config.model.conv_mode = "full"
  config.model.antialias = "none"
  config.model.num_classes = 101  # UCF101; 51 for HMDB51
  config.data.source = "video"
  config.data.dataset = "ucf101"
  config.data.root = ""  # required: the frame folder
  config.data.split_dir = ""  # required: the official split files
  config.data.fold = 1
  config.data.clip_length = 16
  config.data.image_size = 112
  config.data.worker_count = 8
  config.optimizer.name = "sgd"
  config.optimizer.learning_rate = 0.1
  config.optimizer.momentum = 0.9
  config.optimizer.weight_decay = 1e-3
  config.schedule.name = "plateau"
  config.schedule.plateau_metric = "val/loss"
  config.schedule.plateau_factor = 0.1
  config.schedule.plateau_patience = 10
  config.eval.every_n_epochs = 1
  config.eval.batch_size = 128
  config.precision.compute_dtype = "bfloat16"
  config.checkpoint.every_n_epochs = 5
  config.checkpoint.keep = 2
  config.log.every_n_steps = 50
  config.sweep.model = ml_collections.ConfigDict({"name": ("resnet3d_18", "resnet3d_34", "resnet3d_50"),
                                                 "conv_mode": ("same", "full")})
  return config
