"""The cost-weighted l1 penalty on gates and the proximal optimiser step that zeroes them.

Objective: ``task_loss + lam * sum_ij c_ij |alpha_ij|``. The l1 term is applied as a proximal step
(soft-thresholding), not through its sub-gradient, so gates reach exact zeros: after every optimiser
step each gate moves ``lr_gate * lam * c_ij`` towards zero and stops at zero.

Parameter groups for the search (:func:`search_param_groups`):

* ``gates``: SGD without momentum or weight decay (momentum would carry a gate across zero);
* ``candidates``: every weight inside a gated candidate, with weight decay on *all* of them, BN and
  biases included. This closes the rescaling loophole: ``alpha * B(x)`` is unchanged when alpha
  shrinks and B's last scale parameters grow, which would dodge the gate penalty for free; with the
  decay, growing B costs ``wd * ||w||^2`` and the penalised objective has its minimum at a finite
  scale (see tests/test_penalty.py);
* ``other``: the rest of the network, with the usual weight decay (optionally none on BN/bias).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from darc.costs import require_costs
from darc.gates import gated_slots

GATES_GROUP = "gates"


def check_lam(lam: float) -> float:
    """``lam`` as a float, refused unless finite and >= 0 (a negative penalty weight makes gates grow)."""
    lam = float(lam)
    if not math.isfinite(lam) or lam < 0:
        raise ValueError(f"the penalty weight lambda must be a finite number >= 0, got {lam}")
    return lam


def gate_penalty(model: nn.Module, lam: float) -> torch.Tensor:
    """``lam * sum_ij c_ij |alpha_ij|`` over all gated slots (differentiable, for logging/objectives)."""
    lam = check_lam(lam)
    terms = [(s.cost * s.gate.abs()).sum() for s in gated_slots(model).values()]
    if not terms:
        return torch.zeros(())
    return lam * torch.stack(terms).sum()


@torch.no_grad()
def soft_threshold_(model: nn.Module, step: float, nonnegative: bool = False) -> int:
    """Shrink every gate by ``step * c_ij`` towards zero (stopping at zero); returns #zero gates."""
    if not (math.isfinite(step) and step >= 0):
        raise ValueError(f"the proximal step lr_gate * lambda must be finite and >= 0, got {step} (a negative "
                         "one grows gates)")
    zeros = 0
    for slot in gated_slots(model).values():
        g = slot.gate
        g.copy_(torch.sign(g) * torch.clamp(g.abs() - step * slot.cost, min=0.0))
        if nonnegative:
            g.clamp_(min=0.0)
        zeros += int((g == 0).sum())
    return zeros


def _is_bn_or_bias(name: str, p: nn.Parameter) -> bool:
    return p.ndim <= 1


def search_param_groups(
    model: nn.Module, *, lr: float, lr_gate: float, weight_decay: float,
    candidate_weight_decay: float | None = None, no_wd_on_bn_bias: bool = False,
) -> list[dict[str, Any]]:
    """Parameter groups for the search (see module docstring); ``candidate_weight_decay``
    defaults to ``weight_decay``."""
    slots = gated_slots(model)
    gate_ids = {id(s.gate) for s in slots.values()}
    cand_ids = {id(p) for s in slots.values() for p in s.candidates.parameters()}
    gates = [s.gate for s in slots.values()]
    cands, other_decay, other_plain = [], [], []
    for name, p in model.named_parameters():
        if not p.requires_grad or id(p) in gate_ids:
            continue
        if id(p) in cand_ids:
            cands.append(p)
        elif no_wd_on_bn_bias and _is_bn_or_bias(name, p):
            other_plain.append(p)
        else:
            other_decay.append(p)
    cwd = weight_decay if candidate_weight_decay is None else candidate_weight_decay
    groups = [
        {"name": GATES_GROUP, "params": gates, "lr": lr_gate, "momentum": 0.0, "weight_decay": 0.0},
        {"name": "candidates", "params": cands, "lr": lr, "weight_decay": cwd},
        {"name": "other", "params": other_decay, "lr": lr, "weight_decay": weight_decay},
        {"name": "other_no_wd", "params": other_plain, "lr": lr, "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


class ProximalGateStep:
    """Call after every ``optimizer.step()``: soft-threshold the gates with the gate group's lr.

    Refuses a negative ``lam`` and a model whose costs were never assigned (:func:`darc.assign_costs`)."""

    def __init__(self, model: nn.Module, lam: float, nonnegative: bool = False) -> None:
        self.lam = check_lam(lam)
        require_costs(model)
        self.model = model
        self.nonnegative = nonnegative

    def __call__(self, optimizer: torch.optim.Optimizer, scale: float = 1.0) -> None:
        """Soft-threshold at the gate group's lr times lambda times ``scale`` (a ramp's share of lambda)."""
        lr_gate = next((g["lr"] for g in optimizer.param_groups if g.get("name") == GATES_GROUP), None)
        if lr_gate is None:
            raise ValueError(f"the optimizer has no parameter group named {GATES_GROUP!r}: use search_param_groups")
        soft_threshold_(self.model, lr_gate * self.lam * scale, self.nonnegative)
