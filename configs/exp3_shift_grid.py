"""F-Conv paper Exp 3 / Table 2: shift robustness on ImageNet-200, ResNet-18/34/50/101 × S / F / S+Blur / F+Blur.

    python -m train.main --config configs/exp3_shift_grid.py --workdir gs://BUCKET/exp3 \
        --config.data.data_dir=/path/to/tensorflow_datasets
    python -m train.main --config configs/exp3_shift_grid.py --workdir gs://BUCKET/exp3_rn18 \
        --config.sweep.model.name="('resnet18',)"          # one row of the table

16 runs (4 depths × 2 border modes × 2 anti-aliasing settings), each ``rn50_full.py``'s recipe on the 200
ImageNet-A classes of ImageNet-1k (``data.dataset='imagenet200'``, ~20% of ImageNet: 5× faster per epoch):
SGD lr 0.1 momentum 0.9 wd 1e-4, batch 256, 90 epochs, ×0.1 at 30 / 60, bfloat16. BlurPool: Tri-3.
Evaluation images are resized to 288 and centre-cropped to 288 (docs/experiments.md); the report hook (``train.eval``
via ``train/reports/shift_study.py``) takes 224 windows at diagonal offsets 0..64 (diagonal accuracy, mean
over offsets), consistency with two random offsets in [0, 64) and 5 passes, circular consistency, adversarial
shift accuracy, equivariance heat maps, and writes ``eval.md`` in Table 2's layout.

Hardware: a TPU v3-8 / v4-8 or 8 GPUs. Cost: one ImageNet-200 ResNet-18 S-Conv run is ~1/5 of an ImageNet
ResNet-18 run; F-Conv ~3× S-Conv; ResNet-101 ~4× ResNet-18. The whole grid is of the order of 30 v3-8 days.

Published Table 2 (diagonal accuracy S / F / S+Blur / F+Blur): RN18 79.43 / 82.74 / 81.96 / 83.95;
RN34 82.06 / 85.66 / 83.73 / 86.91; RN50 86.36 / 87.92 / 87.50 / 88.93; RN101 86.95 / 87.78 / 88.22 / 88.73.
Consistency: RN18 86.43 / 88.38 / 88.32 / 90.03; RN34 87.62 / 90.12 / 89.21 / 91.53; RN50 90.21 / 91.36 / 91.68 /
92.75; RN101 90.76 / 91.71 / 92.36 / 92.86.
"""

import ml_collections

from configs import rn50_full


def get_config() -> ml_collections.ConfigDict:
  config = rn50_full.get_config()
  config.model.name = "resnet18"
  config.model.num_classes = 200
  config.data.dataset = "imagenet200"
  config.data.eval_image_size = 288  # docs/experiments.md: resize 288, centre crop 288; 224 windows at offsets 0..64
  config.data.eval_resize_size = 288
  config.sweep.model = ml_collections.ConfigDict({
      "name": ("resnet18", "resnet34", "resnet50", "resnet101"),
      "conv_mode": ("same", "full"),
      "antialias": ("none", "blur:triangle:3"),
  })
  config.report = "shift_study"  # train.eval on every run: eval.md in Table 2's layout, plots, shift_study.md
  return config
