"""Red-Green Table 1 of the F-Conv paper: all four border modes × seeds, with the report (docs/experiments.md).

    python -m train.main --config configs/redgreen_table1.py --workdir runs/table1
    python -m train.main --config configs/redgreen_table1.py --config.seeds="(0,1,2,3,4,5,6,7,8,9)"  # full protocol

Prints similar / dissimilar test accuracy (mean ± std over seeds) beside the published numbers and writes
``table1.md`` and ``table1.png`` into the workdir. The default runs SEEDS (three seeds per mode) so that the whole
run stays within 10 minutes on a 2-core CPU (runs train two at a time, one per core: ``parallel_runs``); the paper
used 10 (about 23 minutes here, ``benchmarks/redgreen.py``). Expected pattern: valid and same score
~100% similar and near 0% dissimilar (they read absolute position); circular and full score the same on both
(full higher than circular). ``--config.data.leaky_splits=True`` reproduces the reference's leaky splits.
"""

import ml_collections

from configs import redgreen

SEEDS = (0, 1, 2)  # three seeds per mode fit the 10-minute budget on a 2-core CPU; the paper's protocol is range(10)


def get_config() -> ml_collections.ConfigDict:
  config = redgreen.get_config()
  config.seeds = SEEDS
  config.sweep.model = ml_collections.ConfigDict()
  config.sweep.model.conv_mode = ("valid", "same", "circular", "full")
  config.parallel_runs = 0  # CPU: one single-threaded run per core at a time (this net cannot use 2 cores per step)
  config.report = "redgreen_table1"
  config.log.every_n_epochs = 50  # one line per run is enough for 8-40 runs; per-epoch metrics are in the JSONL
  config.log.tensorboard = False  # 40 event files add nothing here; metrics.jsonl has every value
  return config
