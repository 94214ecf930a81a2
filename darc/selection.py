"""Operating points chosen on validation accuracy, and changes judged against seed noise.

* :func:`select_points`: for each named operating point ("no loss", "about 1 % loss"), the lambda whose
  fine-tuned network is cheapest under the search's cost model (``arch_cost``, the normalised cost the
  penalty weighs: deterministic for a fixed latency table, unlike a re-timed speed-up) among those whose
  **validation** accuracy is at most the allowed drop below the equal-budget reference's. Test accuracy is
  never read.
* :func:`compare_means`: the difference of two groups of per-seed values, called "no change" when
  ``|mean_a - mean_b| <= 2 * sqrt(s_a^2 / n_a + s_b^2 / n_b)`` (sample standard deviations).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

#: Default operating points: name -> largest validation-accuracy drop against the equal-budget reference.
DEFAULT_POINTS: dict[str, float] = {"no_loss": 0.0, "loss_1pct": 0.01}


def select_points(
    runs: Sequence[Mapping[str, Any]], reference_val_acc: float, points: Mapping[str, float] | None = None,
) -> dict[str, float | None]:
    """Choose one lambda per operating point from ``runs`` (each with ``lam``, ``val_acc``, ``arch_cost``).

    A run qualifies for a point when ``val_acc >= reference_val_acc - drop``; the cheapest qualifying run
    wins (ties: the higher validation accuracy, then the larger lambda). ``None`` where no run qualifies.
    """
    chosen: dict[str, float | None] = {}
    for name, drop in (points or DEFAULT_POINTS).items():
        ok = [r for r in runs if r["val_acc"] is not None and r["val_acc"] >= reference_val_acc - drop]
        best = min(ok, key=lambda r: (r["arch_cost"], -r["val_acc"], -r["lam"]), default=None)
        chosen[name] = None if best is None else float(best["lam"])
    return chosen


def mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (NaN for one value) and count."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan, 0
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else math.nan
    return mean, std, n


def compare_means(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """``a`` against ``b``: the difference of means, the noise threshold and a verdict.

    The verdict is ``"no change"`` when ``|delta| <= 2 * sqrt(s_a^2/n_a + s_b^2/n_b)``, else ``"gain"`` or
    ``"loss"``; ``"one seed"`` when either group has a single value (no spread to judge by).
    """
    ma, sa, na = mean_std(a)
    mb, sb, nb = mean_std(b)
    delta = ma - mb
    if na < 2 or nb < 2:
        return {"delta": delta, "threshold": math.nan, "verdict": "one seed"}
    threshold = 2.0 * math.sqrt(sa**2 / na + sb**2 / nb)
    verdict = "no change" if abs(delta) <= threshold else ("gain" if delta > 0 else "loss")
    return {"delta": delta, "threshold": threshold, "verdict": verdict}


#: How far a latency-matched peer's speed-up, as measured in the bench beside DARC's, may lie from DARC's
#: before the match no longer counts (relative): outside it the comparison is made on trade-off curves.
MATCH_TOLERANCE = 0.05


def match_holds(peer_speedup: float, darc_speedup: float, tolerance: float = MATCH_TOLERANCE) -> bool:
    """Whether a peer matched to DARC's latency measured within ``tolerance`` of DARC's speed-up."""
    if not (math.isfinite(peer_speedup) and math.isfinite(darc_speedup)) or darc_speedup <= 0:
        return False
    return abs(peer_speedup / darc_speedup - 1.0) <= tolerance


def interpolate_at(points: Sequence[tuple[float, float]], x: float, min_points: int = 3) -> float | None:
    """The accuracy of a trade-off curve at speed-up ``x``: linear in log speed-up between the curve's two
    nearest points on either side of ``x`` (points at equal speed-up averaged). ``None`` unless the curve
    has at least ``min_points`` points and some lie at or below ``x`` and some at or above it (no
    extrapolation)."""
    finite = [(float(s), float(a)) for s, a in points if math.isfinite(s) and math.isfinite(a) and s > 0]
    if len(finite) < min_points or not math.isfinite(x) or x <= 0:
        return None
    merged: dict[float, list[float]] = {}
    for s, a in finite:
        merged.setdefault(s, []).append(a)
    curve = sorted((s, sum(v) / len(v)) for s, v in merged.items())
    below = [p for p in curve if p[0] <= x]
    above = [p for p in curve if p[0] >= x]
    if not below or not above:
        return None
    (s0, a0), (s1, a1) = below[-1], above[0]
    if s0 == s1:
        return a0
    t = (math.log(x) - math.log(s0)) / (math.log(s1) - math.log(s0))
    return a0 + t * (a1 - a0)
