"""The config schema: every key the trainer reads, with its default. Experiment configs start from this.

Keys not defined here fail at start with the list of valid keys (``train/config.py``). The ``model`` and
``data`` sections are open: their extra keys are checked against the model constructor and the data source.
"""

import ml_collections
from ml_collections import config_dict


def get_config() -> ml_collections.ConfigDict:
  """Returns the default config (a tiny Red-Green run, so the defaults alone train something)."""
  config = ml_collections.ConfigDict()

  config.seed = 0  # run seed: parameter init, data order and dropout RNG are functions of (seed, step)
  config.seeds = ()  # () runs `seed` once; a tuple of ints runs each seed (summary: mean ± std over seeds)
  config.batch_size = 200  # global batch over all devices of all processes (must divide by the device count)
  # > 0: compute each step's gradient over microbatches of this many examples (global; must divide batch_size and
  # be a multiple of the device count) and sum them: the same update with less activation memory, and on CPU
  # faster for small nets (activations stay in cache). Not for models with BatchNorm. A CPU speed setting: it adapts
  # to the host: rounded up to the next multiple of the device count that divides batch_size (0 if none), see
  # train/sharding.py adapt_microbatch, so a config runs unchanged on 1, 2, 4 or 8 devices.
  config.microbatch_size = 0
  # Runs of a sweep (points x seeds) trained at once on a CPU host, each a single-threaded process pinned to one
  # core (0: one per core). Faster for small nets, whose steps cannot use two cores; the runs are unchanged.
  # GPU/TPU and multi-process jobs train one run at a time.
  config.parallel_runs = 1
  config.num_epochs = 50  # training length in epochs ...
  config.num_steps = 0  # ... unless > 0: then exactly this many steps (overrides num_epochs)

  config.model = ml_collections.ConfigDict()
  config.model.name = "redgreen_net"  # a name of jaxborders.models.list_models()
  # Further model.* keys are constructor kwargs of that model (checked against its signature), and optionally
  # model.pretrained: starting weights of a fresh run (a registered checkpoint name, a URL, a .pth / .safetensors /
  # .msgpack file, or True for the model's default; jaxborders.models.pretrained); another num_classes gets a new head.
  config.model.conv_mode = "same"  # border mode: valid, same, circular, reflect, replicate, partial, full
  config.model.num_classes = 2

  config.data = ml_collections.ConfigDict()
  config.data.source = "redgreen"  # module jaxborders.data.<source> (or a full 'package.module' path)
  config.data.shuffle = False  # reshuffle train every epoch with a permutation from fold_in(seed, epoch)
  # Further data.* keys are the source's kwargs (checked against its DEFAULTS); unset ones take those defaults.

  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.name = "adadelta"  # sgd, adadelta or adamw
  config.optimizer.learning_rate = 1.0  # peak learning rate (the schedule multiplies it)
  config.optimizer.weight_decay = 0.0  # sgd/adadelta: L2 added to the gradient (PyTorch); adamw: decoupled
  config.optimizer.momentum = 0.9  # sgd only (0 = plain SGD)
  config.optimizer.nesterov = False  # sgd only
  config.optimizer.rho = 0.9  # adadelta only
  config.optimizer.eps = 1e-6  # adadelta and adamw
  config.optimizer.b1 = 0.9  # adamw only
  config.optimizer.b2 = 0.999  # adamw only
  config.optimizer.grad_clip_norm = 0.0  # > 0: clip the global gradient norm first

  config.schedule = ml_collections.ConfigDict()
  config.schedule.name = "constant"  # constant, step, cosine or plateau
  config.schedule.step_epochs = (30, 60, 80)  # step: multiply the lr by step_factor at these epochs
  config.schedule.step_factor = 0.1
  config.schedule.warmup_epochs = 0.0  # cosine: linear warm-up from 0, then cosine decay to 0
  config.schedule.plateau_factor = 0.1  # plateau: multiply the lr by this when the val metric stalls
  config.schedule.plateau_patience = 5  # plateau: evaluations without improvement before reducing
  config.schedule.plateau_metric = "val/loss"  # plateau: the metric watched (lower is better)

  config.eval = ml_collections.ConfigDict()
  config.eval.metrics = ("loss", "accuracy")  # computed on val and every test split
  config.eval.every_n_epochs = 1  # validate every n epochs (and at the end)
  config.eval.batch_size = 1000  # eval batch (0: the training batch size); val/test are padded and masked

  # train.eval's shift-robustness protocol (train/eval_protocol.py reads its defaults from here); 0 / -1 / '' =
  # derived from the data: crop = training image size, max offset = eval image size - crop.
  config.eval.shift = ml_collections.ConfigDict()
  config.eval.shift.split = ""  # evaluation split; '' = 'test' if the data source has one, else 'val'
  config.eval.shift.max_examples = 0  # evaluation images (0: the whole split)
  config.eval.shift.grid_examples = 256  # images of the per-shift grids (adversarial, class. variation); 0: all
  config.eval.shift.crop_size = 0  # network input side; 0: the training images' size
  config.eval.shift.max_offset = -1  # crop shifts 0..max_offset; -1: eval image size - crop_size (0: no crop shifts)
  config.eval.shift.diagonal_step = 1  # spacing of the diagonal offsets
  config.eval.shift.passes = 5  # consistency passes over the split (the papers: 5)
  config.eval.shift.circular_max_shift = 0  # rolls in [-m, m); 0: max_offset // 2, or crop // 2 if no margin
  # Sub-pixel (band-limited Fourier, circular) shifts of the centre window: consistency under two random shifts
  # in [-m, m) per axis (0 disables it), and accuracy at each diagonal shift (s, s) listed (() disables it).
  config.eval.shift.subpixel_max_shift = 0.5
  config.eval.shift.subpixel_shifts = (0.0, 0.25, 0.5, 0.75, 1.0)
  config.eval.shift.adversarial_max_shift = -1  # m = 0..this; -1: min(max_offset // 2, 8) (crop) or 8 (circular)
  config.eval.shift.equivariance_max_shift = 8  # heat-map shifts [0, m)^2 (0 disables the heat maps)
  config.eval.shift.equivariance_examples = 32  # images for the heat maps
  config.eval.shift.batch_size = 0  # images per forward call; 0: eval.batch_size
  config.eval.shift.seed = 0  # random offsets of the consistency metrics

  config.early_stopping = ml_collections.ConfigDict()
  config.early_stopping.metric = ""  # e.g. 'val/loss'; '' disables (the final params are tested)
  config.early_stopping.mode = "min"  # min or max
  config.early_stopping.patience = 8  # stop once more than this many evaluations in a row fail to improve

  config.precision = ml_collections.ConfigDict()
  config.precision.compute_dtype = "float32"  # float32 or bfloat16 (params and optimizer stay float32)

  config.checkpoint = ml_collections.ConfigDict()
  config.checkpoint.every_n_steps = 0  # > 0: save every n steps (in-memory sources save at epoch ends)
  config.checkpoint.every_n_epochs = 1  # > 0: save every n epochs; also saved at the end and on SIGTERM/INT
  config.checkpoint.keep = 2  # periodic checkpoints kept, at least 2 so a corrupt latest one falls back

  config.log = ml_collections.ConfigDict()
  config.log.every_n_epochs = 1  # console progress line every n epochs (always at the end)
  config.log.every_n_steps = 50  # streaming sources: console step metrics every n steps
  config.log.tensorboard = True  # also write TensorBoard event files (tensorboardX)

  # Grid: mirrors the config tree; every leaf is a tuple of values, e.g. sweep.model.conv_mode = ('valid',
  # 'same'). The runs are the cartesian product of all leaves × seeds, each in its own sub-workdir.
  config.sweep = ml_collections.ConfigDict()
  config.report = ""  # report hook run after all runs: train.reports.<report>.report(workdir, runs, config)

  config.distributed = ml_collections.ConfigDict()
  config.distributed.coordinator_address = ""  # '' = single process (or from env: JAX_COORDINATOR_ADDRESS)
  config.distributed.num_processes = 0  # 0 = from env JAX_NUM_PROCESSES (multi-host) or 1
  config.distributed.process_id = -1  # -1 = from env JAX_PROCESS_ID
  # Multi-process only: every process waits at most this long for all the others at start (then exits naming the
  # coordinator and the process ids), and a peer silent this long (dead, preempted) ends every process.
  config.distributed.init_timeout_s = 60
  config.distributed.heartbeat_timeout_s = 10

  config.debug = ml_collections.ConfigDict()
  config.debug.nan_at_step = -1  # test hook: the loss of this (0-based) step is multiplied by NaN
  config.debug.step_sleep_s = 0.0  # test hook: sleep after each epoch/step so signals can arrive mid-run
  return config


# `model.antialias` and similar optional strings use placeholders so they can be set from the command line.
OPTIONAL_STR = config_dict.placeholder(str)
