"""Training: ``train_one_epoch``, ``evaluate`` and ``fit`` (checkpoints, exact resume, DDP).

Plain functions in the style of torchvision's reference scripts; the DARC search plugs in through
``build_optimizer(..., extra_param_groups)``, ``fit(optimizer=..., step_hook=..., extra_loss=...,
on_epoch_end=...)``.
"""

from darc.train.checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from darc.train.config import TrainConfig
from darc.train.engine import EpochStats, NonFiniteLossError, evaluate, mixup, train_one_epoch, unwrap
from darc.train.optim import (
    OPTIMIZERS,
    SCHEDULERS,
    build_optimizer,
    build_scheduler,
    lr_lambda,
    param_groups,
)
from darc.train.rng import configure_determinism, rng_state, seed_everything, set_rng_state
from darc.train.trainer import METRICS, WEIGHTS, fit

__all__ = [
    "CHECKPOINT",
    "METRICS",
    "OPTIMIZERS",
    "SCHEDULERS",
    "WEIGHTS",
    "EpochStats",
    "NonFiniteLossError",
    "TrainConfig",
    "build_optimizer",
    "build_scheduler",
    "configure_determinism",
    "evaluate",
    "fit",
    "load_checkpoint",
    "lr_lambda",
    "mixup",
    "param_groups",
    "rng_state",
    "save_checkpoint",
    "seed_everything",
    "set_rng_state",
    "train_one_epoch",
    "unwrap",
]
