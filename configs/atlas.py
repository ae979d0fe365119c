"""The border and shift atlas: every border mode and every downsampling method on the same CPU tasks, one report.

    python -m train.main --config configs/atlas.py --workdir runs/atlas          # the full atlas (2-core CPU)
    python -m train.main --config configs/atlas.py:tiny --workdir /tmp/atlas     # seconds: the tests' version

A *bundle* of trainer configs (``config.parts``; ``train/bundle.py`` trains each as ``train.main`` would, in its
own sub-workdir, resumable), then one report (``train/reports/atlas.py``) over all of them:

* ``parts.leakage``: location leakage. The Red-Green task of the F-Conv paper (``configs/redgreen.py``) for
  every border mode (valid, same, circular, reflect, replicate, partial, full) × ``LEAKAGE_SEEDS``: similar vs
  dissimilar test accuracy (Table 1 of Kayhan & van Gemert, CVPR 2020).
* ``probe``: position information (Islam, Jia & Bruce, ICLR 2020). After training, ``jaxborders.position_information``
  reads position maps out of every layer of the trained Red-Green nets (the first seed of each mode) and of
  randomly initialised ones (``probe.random_inits`` per mode), on images whose content carries no position.
* ``parts.shift``: shift robustness. The natural-image task of ``configs/shift_study.py`` (ResNet-18 width 8,
  32×32 grayscale crops of 10 scikit-image photos) for every downsampling method in ``METHODS`` × border
  {same, circular, full}: accuracy, crop-shift / circular / sub-pixel consistency, the diagonal-shift curve
  (``train.eval``), FLOPs (XLA cost analysis) and training time.

Every part is an ordinary trainer config: ``--config.parts.shift.num_epochs=8`` or
``--config.parts.leakage.seeds="(0,1,2)"`` override it; rerunning the same command skips finished runs.

Sizing (2-core CPU, every part with ``parallel_runs``): the shift parts train fewer epochs than
``configs/shift_study.py`` (``SHIFT_EPOCHS``) and evaluate with 3 consistency passes, small per-shift grids and no
per-layer equivariance heat maps, so that all methods × borders fit; fewer epochs rather than fewer methods. Most
of a shift run's time is compilation (one program per method × border) and evaluation, not training steps;
full-border runs cost most (their maps grow: ~10× the FLOPs of 'same' at this size). Bin-5 and MaxBlurPool
train as their own part (``shift_large_blur``) with circular and full borders only: see ``LARGE_BLUR``. The tiny variant
(``configs/atlas.py:tiny``) trains 2 modes and 2 methods for a few steps: it exercises every report file.
"""

from __future__ import annotations

import ml_collections

from configs import default, redgreen, shift_study

MODES = ("valid", "same", "circular", "reflect", "replicate", "partial", "full")
# The downsampling methods (``model.antialias`` specs, jaxborders.nn.downsample): strided, BlurPool Bin-3
# (= Tri-3, [1, 2, 1]) and Bin-5, MaxBlurPool, APS, LPS, adaptive anti-aliasing, alias-free (AFC) and FLC.
METHODS = ("none", "blur:binomial:3", "blur:binomial:5", "maxblur", "aps", "lps", "adaptive", "afc", "flc")
BORDERS = ("same", "circular", "full")
# Bin-5 and MaxBlurPool under 'same' pad their blur by reflection, which needs feature maps larger than the pad:
# a 32-px ResNet-18 reaches 2×2 / 1×1 maps (minimum inputs 35 and 49 px), so these two run with circular and
# full borders only (the report names the missing cells and the reason).
LARGE_BLUR = ("blur:binomial:5", "maxblur")
LEAKAGE_SEEDS = (0, 1)  # Table 1 used 10; two per mode fit the 30-minute budget beside the shift study
SHIFT_EPOCHS = 8  # configs/shift_study.py: 12; fewer so that 25 runs fit (a full-border epoch costs ~10 same ones)
SHIFT_TRAIN_PER_CLASS = 100


def leakage_config(tiny: bool) -> ml_collections.ConfigDict:
  config = redgreen.get_config()
  config.seeds = (0,) if tiny else LEAKAGE_SEEDS
  config.sweep.model = ml_collections.ConfigDict({"conv_mode": ("same", "full") if tiny else MODES})
  config.parallel_runs = 1 if tiny else 0  # one single-threaded run per core (tiny: in-process, no spawn cost)
  config.report = "redgreen_table1"  # table1.md / table1.png in <workdir>/leakage
  config.log.every_n_epochs = 50
  config.log.tensorboard = False
  if tiny:
    config.num_epochs = 2
    config.data.train_size, config.data.val_size, config.data.test_size = 200, 100, 100
    config.checkpoint.every_n_epochs = 2
  return config


def shift_config(tiny: bool, methods: tuple[str, ...] = METHODS, borders: tuple[str, ...] = BORDERS
                 ) -> ml_collections.ConfigDict:
  config = shift_study.get_config()
  config.num_epochs = 1 if tiny else SHIFT_EPOCHS
  config.data.train_per_class = 10 if tiny else SHIFT_TRAIN_PER_CLASS
  config.data.val_per_class = 5 if tiny else 20
  config.data.test_per_class = 4 if tiny else 20
  config.eval.every_n_epochs = config.num_epochs  # validate at the end only
  config.checkpoint.every_n_epochs = config.num_epochs
  config.log.every_n_epochs = config.num_epochs
  config.eval.shift.equivariance_max_shift = 0  # per-layer heat maps: configs/shift_study.py has them
  # train.eval costs as much as training here: fewer consistency passes (3, the papers 5), and the per-shift grids
  # (adversarial shifts, classification variation) on 64 images with shifts up to ±2.
  config.eval.shift.grid_examples = 64
  config.eval.shift.adversarial_max_shift = 2
  config.eval.shift.passes = 1 if tiny else 3
  config.sweep.model = ml_collections.ConfigDict({"conv_mode": borders, "antialias": methods})
  config.parallel_runs = 1 if tiny else 0
  config.report = "shift_study"  # train.eval on every run: eval.json (read by the atlas), shift_study.md/.png
  return config


def tiny_shift_config() -> ml_collections.ConfigDict:
  """The tests' shift part: the 4-conv Red-Green net instead of ResNet-18 (compiles in seconds; it has no
  downsampling options, so the methods axis is strided only) on 16-px crops of 2 images, 2 steps."""
  config = shift_config(True, ("none",), ("same", "circular"))
  del config.model["width"]
  config.model.name = "redgreen_net"
  config.model.num_classes = 2
  config.data.images = ("camera", "grass")
  config.data.image_size = 16
  config.data.eval_margin = 4
  config.data.source_size = 128
  config.data.train_per_class, config.data.val_per_class, config.data.test_per_class = 8, 4, 4
  config.batch_size = 8
  config.eval.batch_size = 8
  return config


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  """The atlas bundle; ``variant='tiny'`` (``configs/atlas.py:tiny``) is the seconds-long version of the tests."""
  if variant not in ("", "full", "tiny"):
    raise ValueError(f"configs/atlas.py variant {variant!r} is not supported; accepted: '' or 'full', 'tiny'.")
  tiny = variant == "tiny"
  config = ml_collections.ConfigDict()
  config.parts = ml_collections.ConfigDict()
  config.parts.leakage = leakage_config(tiny)
  if tiny:
    config.parts.shift = tiny_shift_config()
  else:
    config.parts.shift = shift_config(tiny, tuple(m for m in METHODS if m not in LARGE_BLUR), BORDERS)
    # A sweep is a full grid: the methods that cannot run under 'same' at 32 px train as their own part.
    config.parts.shift_large_blur = shift_config(tiny, LARGE_BLUR, tuple(b for b in BORDERS if b != "same"))
  config.probe = ml_collections.ConfigDict()
  # The probe (jaxborders.position_information) costs ~ images × steps per layer and net: one Red-Green layer with
  # 64 images and 300 steps took 196 s on the contended 2-core CPU; 7 modes × 2 nets × 4 layers must fit minutes.
  config.probe.num_images = 16  # position-free probe images (i.i.d. noise, 32×32); half train the read-out
  config.probe.steps = 20 if tiny else 150  # read-out Adam steps per layer (all patterns at once)
  config.probe.random_inits = 1  # randomly initialised nets per border mode
  config.probe.layers = ()  # () = every layer with a spatial map; else these intermediates' names
  config.probe.seed = 0
  config.distributed = default.get_config().distributed  # train.main reads it (single process here)
  config.report = "atlas"
  return config
