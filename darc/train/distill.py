"""Logit distillation from a teacher (Hinton et al. 2015): the post-compression recipe's loss.

The student learns from ``(1 - alpha) * hard + alpha * T^2 * KL(softmax(t / T) || softmax(s / T))``, where
``hard`` is the task loss (cross-entropy, mixed under mixup) and ``t`` the teacher's logits for the same
inputs. The teacher is frozen: evaluated in eval mode under ``torch.no_grad()`` (:func:`frozen_teacher`), so
no gradient reaches it and its batch-norm statistics do not move. ``alpha`` 0 is plain cross-entropy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Distill:
    """``alpha``: the distillation term's share of the loss (0: plain cross-entropy, 1: the teacher only);
    ``temperature``: the softmax temperature both logits are divided by."""

    alpha: float = 0.0
    temperature: float = 4.0

    def __post_init__(self) -> None:
        if not (0.0 <= self.alpha <= 1.0):
            raise ValueError(f"distill.alpha must lie in [0, 1] (0: plain cross-entropy), got {self.alpha}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"distill.temperature must be a finite number > 0, got {self.temperature}")

    @property
    def active(self) -> bool:
        """Whether the loss reads a teacher at all."""
        return self.alpha > 0

    @classmethod
    def from_value(cls, value: Distill | dict[str, Any] | None) -> Distill:
        """From a config mapping ``{alpha, temperature}`` (unknown keys refused), ``None`` (off) or itself."""
        if isinstance(value, Distill):
            return value
        value = dict(value or {})
        unknown = sorted(set(value) - {"alpha", "temperature"})
        if unknown:
            raise ValueError(f"unknown distill keys {unknown}; known: ['alpha', 'temperature']")
        return cls(**{k: float(v) for k, v in value.items()})

    def to_dict(self) -> dict[str, float]:
        return {"alpha": self.alpha, "temperature": self.temperature}


def kd_term(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``T^2 * KL(softmax(t/T) || softmax(s/T))``, averaged over the batch (float32 whatever the autocast)."""
    t = temperature
    log_p = F.log_softmax(student_logits.float() / t, dim=1)
    log_q = F.log_softmax(teacher_logits.float().detach() / t, dim=1)
    return F.kl_div(log_p, log_q, reduction="batchmean", log_target=True) * (t * t)


def distillation_loss(
    hard_loss: torch.Tensor, student_logits: torch.Tensor, teacher_logits: torch.Tensor | None, cfg: Distill,
) -> torch.Tensor:
    """The recipe's loss: ``hard_loss`` alone where distillation is off, else the mix (module docstring)."""
    if not cfg.active:
        return hard_loss
    if teacher_logits is None:
        raise ValueError("distillation is on (distill.alpha > 0) but no teacher logits were given")
    return (1.0 - cfg.alpha) * hard_loss + cfg.alpha * kd_term(student_logits, teacher_logits, cfg.temperature)


def frozen_teacher(teacher: nn.Module) -> nn.Module:
    """``teacher`` in eval mode with every parameter's ``requires_grad`` off (in place; returned)."""
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


@torch.no_grad()
def teacher_logits(teacher: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The teacher's logits for ``x`` (eval mode enforced on every call: a caller's ``.train()`` on a model
    that holds the teacher cannot switch its batch-norm to batch statistics)."""
    if teacher.training:
        teacher.eval()
    return teacher(x)
