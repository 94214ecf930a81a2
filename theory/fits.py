"""Least-squares fits of the rates the theory predicts: ``n^(-1/2)`` and growth in the width.

- :func:`loglog_slope`: the slope of ``log(estimate)`` against ``log(n)`` (the theory: -1/2);
- :func:`growth_fit`: ``y = a + b g(width)`` for a predicted shape ``g`` (:data:`SHAPES`: ``linear``
  for box gates, ``sqrt_log`` for l1 gates over k candidates, ``constant`` for width-free classes).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

SHAPES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": lambda w: np.asarray(w, dtype=float),
    "sqrt_log": lambda w: np.sqrt(np.log(np.asarray(w, dtype=float))),
    "log2": lambda w: np.log2(np.asarray(w, dtype=float)),
}


def ols(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """``y = a + b x`` by least squares: intercept, slope, the slope's standard error and R^2."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    X = np.stack([np.ones_like(x), x], 1)
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ coef
    dof = max(len(x) - 2, 1)
    s2 = float(resid @ resid) / dof
    cov = s2 * np.linalg.inv(X.T @ X)
    tss = float(np.sum((y - y.mean()) ** 2))
    return {"intercept": float(coef[0]), "slope": float(coef[1]), "slope_se": float(np.sqrt(cov[1, 1])),
            "r2": 1.0 - float(resid @ resid) / tss if tss > 0 else float("nan")}


def loglog_slope(n: np.ndarray, estimate: np.ndarray) -> dict[str, float]:
    """Slope of ``log(estimate)`` against ``log(n)``: -1/2 for an ``n^(-1/2)`` rate."""
    return ols(np.log(n), np.log(estimate))


def growth_fit(width: np.ndarray, y: np.ndarray, shape: str) -> dict[str, float]:
    """``y = a + b g(width)`` with ``g = SHAPES[shape]``: ``b`` is the growth per unit of ``g``."""
    return ols(SHAPES[shape](width), y)
