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
