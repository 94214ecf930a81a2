"""Optimisers and learning-rate schedules, each a registry.

:func:`build_optimizer` puts the model's parameters in one or two groups (weight decay, and none on
BN weights and biases where ``no_wd_on_bn_bias``) and appends ``extra_param_groups``: parameters
that appear in an extra group are left out of the default ones, so another module (the DARC
search's gates, say) can give its own parameters their own lr, momentum and decay.

A schedule factory ``(cfg, steps_per_epoch) -> f(step) -> multiplier`` is wrapped in a per-iteration
``LambdaLR`` by :func:`build_scheduler`; warm-up (linear, ``warmup_epochs``) wraps any schedule.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from darc.registry import Registry
from darc.train.config import TrainConfig

Schedule = Callable[[int], float]
OPTIMIZERS: Registry[torch.optim.Optimizer] = Registry("optimizer")
SCHEDULERS: Registry[Schedule] = Registry("lr schedule")


@OPTIMIZERS.register("sgd")
def sgd(groups: list[dict[str, Any]], cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                           weight_decay=cfg.weight_decay)


@OPTIMIZERS.register("adamw")
def adamw(groups: list[dict[str, Any]], cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def param_groups(
    model: nn.Module, cfg: TrainConfig, exclude: Iterable[nn.Parameter] = ()
) -> list[dict[str, Any]]:
    """The default groups: ``decay`` and, with ``no_wd_on_bn_bias``, ``no_decay`` (tensors of dim <= 1)."""
    skip = {id(p) for p in exclude}
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for p in model.parameters():
        if not p.requires_grad or id(p) in skip:
            continue
        (no_decay if cfg.no_wd_on_bn_bias and p.ndim <= 1 else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay, "name": "decay"}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0, "name": "no_decay"})
    return groups


def build_optimizer(
    model: nn.Module, cfg: TrainConfig, extra_param_groups: list[dict[str, Any]] | None = None
) -> torch.optim.Optimizer:
    """The optimiser ``cfg.optimizer`` over the model's parameters plus ``extra_param_groups``.

    Each extra group is a torch param-group dict (``params`` plus any of lr, momentum,
    weight_decay, ..., and free keys such as ``name``); unset options take the config's values.
    """
    extra = [dict(g, params=list(g["params"])) for g in extra_param_groups or []]
    taken = [p for g in extra for p in g["params"]]
    groups = [g for g in param_groups(model, cfg, exclude=taken) if g["params"]] + extra
    return OPTIMIZERS.create(cfg.optimizer, groups, cfg)


def _epoch(step: int, steps_per_epoch: int) -> int:
    return step // max(steps_per_epoch, 1)


@SCHEDULERS.register("constant")
def constant(cfg: TrainConfig, steps_per_epoch: int) -> Schedule:
    return lambda step: 1.0


@SCHEDULERS.register("step")
def step_schedule(cfg: TrainConfig, steps_per_epoch: int) -> Schedule:
    """Multiply by ``gamma`` at each milestone epoch (e.g. x0.2 at 60/120/160)."""
    milestones = sorted(cfg.milestones)
    return lambda step: cfg.gamma ** bisect.bisect_right(milestones, _epoch(step, steps_per_epoch))


@SCHEDULERS.register("cosine")
def cosine(cfg: TrainConfig, steps_per_epoch: int) -> Schedule:
    """Half a cosine from 1 to 0 over the steps after warm-up."""
    warm = round(cfg.warmup_epochs * steps_per_epoch)
    total = max(cfg.epochs * steps_per_epoch - warm, 1)
    return lambda step: 0.5 * (1.0 + math.cos(math.pi * min(max(step - warm, 0), total) / total))


@SCHEDULERS.register("rewind")
def rewind(cfg: TrainConfig, steps_per_epoch: int) -> Schedule:
    """Learning-rate rewinding (Renda et al. 2020): replay the last part of the base's schedule.

    ``cfg.rewind_base`` holds the base's recipe (``train``) and its ``steps_per_epoch``
    (:func:`darc.recipe.post_base_recipe` fills it in). The run's ``R`` steps replay the base's last
    images: step ``s`` gets the base's learning rate at base step ``T_base - R_base + s * b / b_base``
    (``b``, ``b_base`` the batch sizes, ``R_base = R * b / b_base``); with equal batch sizes
    ``lr(s) = base_lr(T_base - R + s)``. The multiplier is relative to ``cfg.lr``, so the optimiser's
    learning rate is the base's whatever ``cfg.lr`` says; warm-up, if any, scales the first steps as for
    every schedule.
    """
    if not cfg.rewind_base:
        raise ValueError("schedule 'rewind' replays the base's schedule, which this recipe does not carry "
                         "(rewind_base): build the fine-tune recipe with darc.recipe.post_base_recipe, or pick "
                         "another schedule (cosine, step, constant)")
    base = TrainConfig.from_dict({k: v for k, v in cfg.rewind_base["train"].items() if k != "rewind_base"})
    base_steps = int(cfg.rewind_base["steps_per_epoch"])
    base_schedule = lr_lambda(base, base_steps)
    total_base = base.epochs * base_steps
    scale = cfg.batch_size / base.batch_size  # base steps per step of this run
    start = max(total_base - round(cfg.epochs * steps_per_epoch * scale), 0)
    ratio = base.lr / cfg.lr
    return lambda step: ratio * base_schedule(min(start + round(step * scale), max(total_base - 1, 0)))


def with_warmup(schedule: Schedule, warmup_steps: int) -> Schedule:
    """Scale ``schedule`` linearly from 1/warmup_steps to 1 over the first ``warmup_steps`` steps."""
    if warmup_steps <= 0:
        return schedule
    return lambda step: schedule(step) * min(1.0, (step + 1) / warmup_steps)


def lr_lambda(cfg: TrainConfig, steps_per_epoch: int) -> Schedule:
    """The per-iteration lr multiplier of ``cfg`` (schedule and warm-up)."""
    base = SCHEDULERS.create(cfg.schedule, cfg, steps_per_epoch)
    return with_warmup(base, round(cfg.warmup_epochs * steps_per_epoch))


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` to step once per iteration; the same multiplier applies to every group."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg, steps_per_epoch))
