"""The trainer: ``train_and_evaluate(config, workdir)`` runs every sweep point x seed of a config.

Read it in this order (each module is short and imports only the ones before it):

1. ``train/steps.py``: the train state, the pure ``train_step`` / ``train_epoch`` / ``evaluate``, the optimizer
   and schedule, and the compiled programs (cached per model, optimizer and shapes).
2. ``train/epochs.py``: a run's data, one epoch in memory (one compiled ``lax.scan``) or streamed (batch by
   batch), and evaluation.
3. ``train/monitors.py``: early stopping, reduce-on-plateau and the checkpoint cadence (their state is saved in
   every checkpoint).
4. ``train/run.py``: ``run_one``, one config and one seed: restore, the epoch loop, test, ``summary.json``.
5. ``train/sweep.py``: ``train_and_evaluate``, every run of a config (in process or on ``train/parallel.py``'s
   workers), the summary table and the report.

Around them: ``train/signals.py`` (SIGTERM/SIGINT), ``train/errors.py``, ``train/logs.py`` (metric log, console),
``train/progress.py`` (throughput without compilation, the progress bar). This module re-exports the public names.
"""

from __future__ import annotations

from train.errors import ConfigError, NonFiniteLossError, Preempted
from train.logs import MetricWriter, params_fingerprint
from train.run import check_model_fits, load_params, run_one
from train.signals import _STOP_SIGNAL, install_signal_handlers  # noqa: F401  (_STOP_SIGNAL: tests set it)
from train.steps import (Programs, TrainState, build_programs, cross_entropy, epoch_order, eval_batch_sums, evaluate,
                         make_optimizer, make_schedule, train_epoch, train_step)
from train.sweep import check_workdir, summarize, summary_markdown, train_and_evaluate

__all__ = ["TrainState", "train_step", "train_epoch", "evaluate", "make_optimizer", "make_schedule",
           "train_and_evaluate", "run_one", "params_fingerprint", "load_params", "ConfigError", "NonFiniteLossError",
           "Preempted", "install_signal_handlers", "cross_entropy", "epoch_order", "eval_batch_sums", "Programs",
           "build_programs", "MetricWriter", "check_model_fits", "check_workdir", "summarize", "summary_markdown"]
