"""ImageNet-1k ResNet-50, S-Conv + BlurPool (anti-aliased downsampling, BlurPool paper; docs/antialiasing.md).

    python -m train.main --config configs/rn50_blur.py --workdir gs://BUCKET/rn50_blur \
        --config.data.data_dir=/path/to/tensorflow_datasets
    python -m train.main --config configs/rn50_blur.py --config.model.conv_mode=full ...   # F-Conv + BlurPool
    python -m train.eval --config configs/rn50_blur.py --workdir gs://BUCKET/rn50_blur \
        --config.data.eval_image_size=288 --config.data.eval_resize_size=288

Hardware: a TPU v3-8 / v4-8 or 8 GPUs; BlurPool adds ~10% to the S-Conv time. Recipe: ``rn50_full.py``.
Filter: Binomial-5 (``blur:binomial:5``, the BlurPool paper's best ResNet-50; ``blur:triangle:3`` is the F-Conv
paper's Tri-3), AA's ``pool_only`` placement, reflect padding (F-Conv: zero ``f-1`` per side).

Published (BlurPool paper, from scratch): Tri-3 76.83% top-1 / 90.91% consistency; Bin-5 77.04 / 91.31.
"""

import ml_collections

from configs import rn50_full


def get_config() -> ml_collections.ConfigDict:
  config = rn50_full.get_config()
  config.model.conv_mode = "same"
  config.model.antialias = "blur:binomial:5"
  return config
