"""CPU-scale shift-robustness study (F-Conv paper Exp 3 / BlurPool paper, docs/experiments.md): the Table 2 story offline.

    python -m train.main --config configs/shift_study.py --workdir /tmp/shift_study

Hardware: sized for a 2-core CPU, a few minutes in all (6 runs; F-Conv runs cost ~3× S-Conv ones). Add
``--config.seeds="(0,1,2)"`` for mean ± std, or ``--config.sweep.model.conv_mode="('same','full','circular')"``
to add circular padding (with APS it is exactly invariant to circular shifts: 100% circular consistency).

Task (``jaxborders.data.natural``): 10 classes = 10 photos / textures bundled with scikit-image (grayscale),
100 random 32×32 crops per class for training and 20 for validation from disjoint image bands; the test images
are 40×40 crops of a third band, from which ``train.eval`` takes 32×32 windows at offsets 0..8 (the ImageNet
protocol's 224 in 288, scaled down: offsets 0..64 there). Network: ResNet-18 with width 8 (stage widths
8/16/32/64 instead of 64..512) × {same, full} × {no anti-aliasing, BlurPool Tri-3, APS}. AdamW lr 2e-3,
cosine decay, batch 50, 12 epochs (the papers: SGD lr 0.1, 90 epochs on ImageNet; the CPU budget).

Reported by ``train/reports/shift_study.py`` (via ``train.eval``): accuracy (centre crop), consistency (two
random crops with offsets in [0, 8), 5 passes), circular consistency (rolls in [-4, 4)), the diagonal-shift
accuracy curve (offsets 0..8) and its mean, adversarial shift accuracy, classification variation, per-layer
equivariance heat maps and filter total variation; files ``shift_study.md``, ``shift_study.png`` and the
``eval.*`` files in the workdir.

Published (ImageNet-200, ResNet-18, diagonal accuracy S / F / S+Blur / F+Blur): 79.43 / 82.74 / 81.96 / 83.95;
consistency 86.43 / 88.38 / 88.32 / 90.03 (F-Conv paper Table 2). Expected pattern here: anti-aliasing (and
F-Conv) raise consistency and flatten the diagonal curve; APS with circular padding scores 100% circular
consistency. The absolute numbers of a 12-epoch 10-class toy are not comparable with the paper's.
"""

import ml_collections

from configs import default


def get_config() -> ml_collections.ConfigDict:
  config = default.get_config()
  config.seed = 0
  config.batch_size = 50
  config.num_epochs = 12
  config.model.name = "resnet18"
  config.model.width = 8  # stage widths 8, 16, 32, 64 (torchvision: 64)
  config.model.conv_mode = "same"
  config.model.antialias = "none"  # 'blur:triangle:3' (the F-Conv paper's Tri-3 BlurPool) or 'aps'
  config.model.num_classes = 10  # = len(data.images)
  config.data.source = "natural"
  config.data.shuffle = True
  config.data.image_size = 32
  config.data.eval_margin = 8  # test images 40×40: shifts 0..8
  config.data.source_size = 256
  config.data.color = "gray"
  config.data.train_per_class = 100
  config.data.val_per_class = 20
  config.data.test_per_class = 20
  config.data.data_seed = 0
  config.optimizer.name = "adamw"
  config.optimizer.learning_rate = 2e-3
  config.optimizer.weight_decay = 1e-4
  config.schedule.name = "cosine"
  config.schedule.warmup_epochs = 1.0
  config.eval.every_n_epochs = 12  # validate at the end only (no early stopping: the final params are tested)
  config.eval.batch_size = 200
  config.checkpoint.every_n_epochs = 12
  config.checkpoint.keep = 1
  config.log.every_n_epochs = 4
  config.log.tensorboard = False
  config.sweep.model = ml_collections.ConfigDict({"conv_mode": ("same", "full"),
                                                 "antialias": ("none", "blur:triangle:3", "aps")})
  config.report = "shift_study"
  return config
