"""ImageNet-1k ResNet-50 with S-Conv (torchvision's zero "same" padding): the baseline of ``rn50_full.py``.

    python -m train.main --config configs/rn50_same.py --workdir gs://BUCKET/rn50_same \
        --config.data.data_dir=/path/to/tensorflow_datasets
    python -m train.eval --config configs/rn50_same.py --workdir gs://BUCKET/rn50_same \
        --config.data.eval_image_size=288 --config.data.eval_resize_size=288

Hardware: a TPU v3-8 / v4-8 or 8 GPUs, about a third of the F-Conv run's time (~8-12 h on a v3-8).
Recipe: ``rn50_full.py`` (SGD 0.1, 90 epochs, ×0.1 at 30 / 60, batch 256, bfloat16); only the border mode differs.

Published (BlurPool paper, trained from scratch): 76.16% top-1, 89.20% consistency.
"""

import ml_collections

from configs import rn50_full


def get_config() -> ml_collections.ConfigDict:
  config = rn50_full.get_config()
  config.model.conv_mode = "same"
  return config
