"""Repeated-sample coverage of the generalisation bound's confidence term, on a one-function class.

The class ``{f = 1}`` with labels ``y = -1`` with probability ``risk`` and the loss ``(1 - y f) / 2``
(in [0, 1]; L = 1/2): its empirical Rademacher complexity is 0 on every sample (``E sigma_i = 0``), so
the bound reads ``risk <= R_emp + 3 sqrt(ln(2/delta) / (2n))`` and only the confidence term is on
trial. A sample enters only through its number of losses, ``Binomial(n, risk)``; ``samples`` of them
are drawn per ``delta`` and the samples on which the bound fails are counted (the ``probability``
check of :mod:`theory.checks`), beside the exact failure probability (the binomial tail).

Which mutations of the term this can refute: one that makes the term smaller than the gap's
``(1 - delta)`` quantile, about ``z_delta / (2 sqrt(n))`` at ``risk = 1/2`` (the square root dropped at
large n; ``ln(2/delta)`` replaced by 1 at small delta). A larger constant or log argument gives a
valid bound, which no data can refute (docs/theory.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.stats import binom

from theory import bounds, checks


def exact_violation_rate(n: int, risk: float, slack: float) -> float:
    """``P(risk - losses / n > slack)`` for ``losses ~ Binomial(n, risk)``: how often the bound fails
    (the comparison made in floating point for every loss count, as the sampled gaps are compared)."""
    losses = np.arange(n + 1)
    return float(binom.pmf(losses, n, risk)[risk - losses / n > slack].sum())


def single_function_rows(cfg: Mapping[str, Any]) -> list[dict]:
    """One row per ``runs`` entry ``{delta, samples}``: violations of the bound over repeated samples.

    ``estimate`` is the empirical ``(1 - delta)`` quantile of the gap ``risk - R_emp``, the value the
    bound should stay above; ``shrink_caught`` the smallest factor by which the confidence term must
    shrink for the count to refute it.
    """
    n, risk = int(cfg["n"]), float(cfg["risk"])
    rows = []
    for run in cfg["runs"]:
        delta, samples = float(run["delta"]), int(run["samples"])
        rng = np.random.default_rng([int(cfg.get("seed", 0)), 15, samples])
        gaps = risk - rng.binomial(n, risk, size=samples) / n
        slack = float(bounds.generalisation_slack(0.0, n, delta, 0.5))  # R_S({f}) = 0 on every sample
        quantile = float(np.quantile(gaps, 1.0 - delta))
        rows.append({"experiment": "tightness", "bound_name": "generalisation", "construction": "single_function",
                     "x_name": "delta", "x": delta, "n": n, "signs": "exact", "estimate": quantile, "se": 0.0,
                     "bound": slack, "ratio": quantile / slack,
                     "shrink_caught": checks.smallest_shrink_caught(gaps, slack, delta),
                     "check": "probability", "violations": int(np.sum(gaps > slack)), "samples": samples,
                     "delta": delta, "risk": risk, "rs_term": 0.0,
                     "exact_violation_rate": exact_violation_rate(n, risk, slack)})
    return rows
