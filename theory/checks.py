"""Does a measured row refute its bound? One check per kind of evidence, used by the workflow and the tests.

Every row of the theory tables that carries an upper ``bound`` says in its ``check`` column how its
``estimate`` was obtained, and so how it may refute the bound:

- ``exact``: a certified value with no sampling error: the mean over *all* ``2^n`` sign vectors of a
  supremum that is exact or attained by an explicit feasible model (so it is ``<=`` the true
  empirical Rademacher complexity). Any excess over the bound refutes it (float tolerance only).
- ``monte_carlo``: a mean over random sign vectors of such suprema, with its standard error ``se``:
  refuted when ``estimate - 3 se > bound``.
- ``probability``: a bound that holds with probability ``>= 1 - delta`` over samples, measured on
  ``samples`` independent samples of which ``violations`` exceeded it: refuted when the count exceeds
  ``delta * samples`` by more than 3 binomial standard deviations.

Rows with an empty ``check`` (e.g. the generalisation gap of one trained model, beside a bound that
is vacuous there) are reported, not checked.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

RTOL = 1e-9  # float tolerance of an exact comparison


def allowed_violations(samples: float | np.ndarray, delta: float | np.ndarray) -> float | np.ndarray:
    """The most violations out of ``samples`` that a bound holding with probability ``>= 1 - delta`` may
    show before the ``probability`` check refutes it: ``delta * samples`` plus 3 binomial standard deviations."""
    return delta * samples + 3 * np.sqrt(samples * delta * (1 - delta))


def smallest_shrink_caught(gaps: np.ndarray, limit: float | np.ndarray, delta: float) -> float:
    """The smallest factor ``f`` such that a bound shrunk to ``limit / f`` on every sample is refuted by the
    ``probability`` check, given the measured ``gaps`` (one per sample; ``limit`` scalar or per sample).

    The shrunk bound is violated on sample ``s`` iff ``f > limit_s / gaps_s``; the check needs more than
    :func:`allowed_violations` of them.
    """
    gaps = np.asarray(gaps, dtype=float)
    need = int(np.floor(allowed_violations(gaps.size, delta)))
    with np.errstate(divide="ignore"):
        per_sample = np.where(gaps > 0, np.broadcast_to(limit, gaps.shape) / np.maximum(gaps, 1e-300), np.inf)
    return float(np.sort(per_sample)[need]) if need < gaps.size else float("inf")


def flags(df: pd.DataFrame) -> pd.Series:
    """Boolean per row: True where the row refutes its bound (False where it is not checked)."""
    out = pd.Series(False, index=df.index)
    if "check" not in df or "bound" not in df:
        return out
    check = df["check"].fillna("")
    est, bound = df["estimate"].astype(float), df["bound"].astype(float)
    finite = np.isfinite(bound)
    exact = (check == "exact") & finite & (est > bound * (1 + RTOL) + 1e-12)
    se = df["se"].astype(float) if "se" in df else pd.Series(0.0, index=df.index)
    mc = (check == "monte_carlo") & finite & (est - 3 * se.fillna(0.0) > bound)
    prob = pd.Series(False, index=df.index)
    if {"violations", "samples", "delta"} <= set(df.columns):
        k, s, d = (df[c].astype(float) for c in ("violations", "samples", "delta"))
        prob = (check == "probability") & (k > allowed_violations(s, d))
    return exact | mc | prob


def violations(df: pd.DataFrame) -> pd.DataFrame:
    """The rows that refute their bound (empty when every checked bound holds)."""
    return df[flags(df)]
