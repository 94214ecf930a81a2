"""Gate sets: the constraint on the gate vector alpha that defines each function class.

- :class:`L1Ball` ``||alpha||_1 <= A``: what DARC's l1 penalty induces (the classes of the bounds);
- :class:`WeightedL1` ``sum_j c_j |alpha_j| <= A'``: DARC's cost-weighted penalty;
- :class:`Box` ``alpha in [lo, hi]^k``: the contrast class (unconstrained gates, e.g. [0, 1]^k).

Every gated class here has the form ``sum_j alpha_j g_j`` with each ``g_j`` ranging over a symmetric
set, so its Rademacher supremum is ``sup_{alpha in G} sum_j |alpha_j| z_j`` with ``z_j >= 0`` the
supremum of candidate j alone: :meth:`abs_support` computes it in closed form. :meth:`project` is the
Euclidean projection onto the set, used to train constrained models by projected gradient steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def project_l1_ball(a: torch.Tensor, radius: float, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Euclidean projection of the last axis of ``a`` onto ``{sum_j weights_j |alpha_j| <= radius}``.

    Sort-based (Duchi et al. 2008; the weighted version of Perez et al. 2020): soft-threshold by
    ``tau * weights_j`` with the smallest ``tau >= 0`` that makes the point feasible.
    """
    c = torch.ones_like(a) if weights is None else torch.broadcast_to(weights.to(a), a.shape)
    if torch.any(c <= 0):
        raise ValueError("weights must be positive (zero-cost gates are unconstrained)")
    absa = a.abs()
    inside = (c * absa).sum(-1, keepdim=True) <= radius
    ratio = absa / c
    order = torch.argsort(ratio, dim=-1, descending=True)
    r, cs, s = (torch.gather(t, -1, order) for t in (ratio, c, absa))
    num = torch.cumsum(cs * s, -1) - radius
    den = torch.cumsum(cs * cs, -1)
    taus = num / den
    active = r > taus
    idx = active.sum(-1, keepdim=True).clamp(min=1) - 1
    tau = torch.gather(taus, -1, idx).clamp(min=0)
    out = torch.sign(a) * torch.clamp(absa - tau * c, min=0)
    return torch.where(inside, a, out)


@dataclass(frozen=True)
class L1Ball:
    """``||alpha||_1 <= radius``."""

    radius: float = 1.0
    name: str = "l1"

    def abs_support(self, z: np.ndarray) -> np.ndarray:
        """``sup_{||alpha||_1 <= A} sum_j |alpha_j| z_j = A max_j z_j`` over the last axis (z >= 0)."""
        return self.radius * np.max(z, axis=-1)

    def project(self, a: torch.Tensor) -> torch.Tensor:
        return project_l1_ball(a, self.radius)

    def l1_radius(self, k: int) -> float:
        """The smallest A with this set inside ``||alpha||_1 <= A`` (for a bound)."""
        return self.radius


@dataclass(frozen=True)
class WeightedL1:
    """``sum_j c_j |alpha_j| <= radius`` with non-negative costs ``c``; zero cost = unconstrained."""

    radius: float
    costs: tuple[float, ...]
    name: str = "weighted"

    def abs_support(self, z: np.ndarray) -> np.ndarray:
        """``A' max_j z_j / c_j``; infinite where a zero-cost candidate has ``z_j > 0``."""
        c = np.asarray(self.costs, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(c > 0, z / np.where(c > 0, c, 1.0), np.where(z > 0, np.inf, 0.0))
        return self.radius * np.max(ratio, axis=-1)

    def project(self, a: torch.Tensor) -> torch.Tensor:
        return project_l1_ball(a, self.radius, torch.as_tensor(self.costs))

    def l1_radius(self, k: int) -> float:
        c = min(self.costs)
        return float("inf") if c == 0 else self.radius / c


@dataclass(frozen=True)
class Box:
    """``alpha in [lo, hi]^k`` (the contrast class; [0, 1] by default)."""

    lo: float = 0.0
    hi: float = 1.0
    name: str = "box"

    def abs_support(self, z: np.ndarray) -> np.ndarray:
        """``sum_j max(|lo|, |hi|) z_j``: every gate at its largest magnitude, so it grows with k."""
        return max(abs(self.lo), abs(self.hi)) * np.sum(z, axis=-1)

    def project(self, a: torch.Tensor) -> torch.Tensor:
        return a.clamp(self.lo, self.hi)

    def l1_radius(self, k: int) -> float:
        return k * max(abs(self.lo), abs(self.hi))


GateSet = L1Ball | WeightedL1 | Box
