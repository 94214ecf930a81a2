"""Falsifiable checks: for every bound, a setting where a certified estimate comes as close to it as we can.

An upper bound on the empirical Rademacher complexity R_S can only be refuted by a value known to be
below R_S. Every estimate here is one: the mean over **all** ``2^n`` sign vectors (no sampling
error) of the value ``(1/n) sum_i sigma_i f_sigma(x_i)`` attained by an explicit feasible model
``f_sigma``, one per sign vector (its constraints are asserted). Nothing here evaluates a bound's
formula to obtain an estimate. The closer the estimate comes to the bound, the smaller an error in
the bound that the check catches: a bound too small by any factor above ``shrink_caught = bound /
estimate`` is refuted (``theory.checks``), which ``tests/theory/test_theory_mutation.py`` exercises
by shrinking each bound function.

Constructions (``construction`` column), each the case where the derivation's inequalities are
(nearly) equalities:

- ``one_hot``: ``phi_j(x_i) = B e_i`` (p = n), so ``||sum_i sigma_i phi_j(x_i)|| = B sqrt(n)`` for
  every sign vector (Jensen's step is an equality): the k = 1 linear class, the shared map, the box
  class and the weighted class reach their bounds exactly;
- ``random_signs`` / ``all_patterns``: scalar features ``+-B`` (random, or all ``2^(n-1)`` sign
  patterns, where the supremum is ``A W B`` for every sign vector): the ``sqrt(2 ln k)`` term;
- ``all_patterns_sampled``: the same class at sample sizes where ``2^(n-1)`` candidates cannot be listed
  (n up to a few hundred), on random sign vectors: the only construction here whose estimate exceeds
  a width term ``sqrt(ln k)`` in place of ``sqrt(2 ln k)`` (from n = 32 on);
- ``all_patterns_costs``: all sign patterns at unequal costs (``cost`` for all but one, which costs 1):
  the weighted bounds with many candidates, where the refined bound weighs each cost separately;
- ``single_function``: repeated-sample coverage of the generalisation bound's confidence term on a
  one-function class (:mod:`theory.coverage`);
- ``identity_orthonormal``: identity units on ``x_i = B e_i``: contraction and Jensen are equalities
  and only the absolute-value step (the factor 2) is lost, so the ratio is exactly 1/2; on these
  points no 1-Lipschitz unit can do better (``|sum_i sigma_i rho(<u, x_i>)| <= sum_i |<u, x_i>| <=
  U B sqrt(n)``);
- ``plane_search``: points in R^2 chosen by a seeded hill climb on the exact planar supremum
  (:func:`theory.empirical.planar_unit_sup`), for ReLU and absolute-value units;
- ``hinge_margin_one``: the penalised form with a hinge loss and one candidate of margin 1, whose
  minimiser has ``sum c|alpha| = 1`` against the bound ``1 / lambda``;
- ``all_functions``: the generalisation bound on the box-gated class over one-hot candidates of a
  domain of N points (all functions into [-B W, B W]) with the loss (1 - y f)/2: the worst-case gap
  ``sup_f (risk - empirical risk)`` is attained by an explicit f and equals ``1 - (distinct
  points)/N``, while ``2 L R_S`` is ``(distinct points)/n`` up to collisions: the symmetrisation factor 2
  is tight.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar

from theory import bounds, checks, coverage
from theory.empirical import (
    ACTIVATIONS,
    UnitSup,
    all_sign_vectors,
    mean_se,
    orthonormal_points,
    planar_types,
    planar_unit_sup,
    sign_vectors,
)

Config = Mapping[str, Any]


def _row(bound_name: str, construction: str, estimate: float, limit: float, *, x_name: str, x: float,
         n: int, check: str = "exact", **extra) -> dict:
    estimate, limit = float(estimate), float(limit)
    return {"experiment": "tightness", "bound_name": bound_name, "construction": construction,
            "x_name": x_name, "x": x, "n": n, "signs": "all", "estimate": estimate, "se": 0.0,
            "bound": limit, "ratio": estimate / limit,
            "shrink_caught": limit / estimate if estimate > 0 else float("inf"), "check": check, **extra}


# --------------------------------------------------------------------------------------------------
# Linear gated classes.


def one_hot_features(n: int, k: int, B: float) -> np.ndarray:
    """``phi_j(x_i) = B e_i`` for every candidate j: shape ``(k, n, n)``."""
    return B * np.broadcast_to(np.eye(n), (k, n, n))


def random_sign_features(n: int, k: int, B: float, rng: np.random.Generator) -> np.ndarray:
    """Scalar features ``phi_j(x_i) = +-B`` at random: shape ``(k, n, 1)``."""
    return B * rng.choice(np.array([-1.0, 1.0]), size=(k, n, 1))


def all_pattern_features(n: int, B: float) -> np.ndarray:
    """Every sign pattern with first entry +1 as a scalar feature map: ``k = 2^(n-1)``, ``(k, n, 1)``."""
    patterns = all_sign_vectors(n)
    return B * patterns[patterns[:, 0] > 0][:, :, None]


def linear_attained(
    phi: np.ndarray, sigma: np.ndarray, W: float, gate: str, radius: float = 1.0,
    costs: np.ndarray | None = None,
) -> np.ndarray:
    """Per sign vector, ``(1/n) sum_i sigma_i f(x_i)`` for an explicit feasible gated linear model.

    ``w_j = W S_j / ||S_j||`` with ``S_j = sum_i sigma_i phi_j(x_i)``; gates: ``l1`` puts ``radius``
    on the candidate of largest ``||S_j||``, ``weighted`` puts ``radius / c_j`` on the largest
    ``||S_j|| / c_j``, ``box`` opens every gate. The model is evaluated on the sample (no closed form).
    """
    d, n = sigma.shape
    k = phi.shape[0]
    S = np.einsum("dn,knp->dkp", sigma, phi, optimize=True)
    norms = np.linalg.norm(S, axis=-1)
    w = W * S / np.where(norms > 0, norms, 1.0)[..., None]
    alpha = np.zeros((d, k))
    rows = np.arange(d)
    if gate == "l1":
        alpha[rows, norms.argmax(axis=1)] = radius
        assert np.all(np.abs(alpha).sum(axis=1) <= radius * (1 + 1e-12))
    elif gate == "weighted":
        c = np.asarray(costs, dtype=float)
        j = (norms / c).argmax(axis=1)
        alpha[rows, j] = radius / c[j]
        assert np.all((np.abs(alpha) * c).sum(axis=1) <= radius * (1 + 1e-12))
    elif gate == "box":
        alpha[:] = 1.0
    else:
        raise ValueError(f"unknown gate {gate!r}")
    assert np.all(np.linalg.norm(w, axis=-1) <= W * (1 + 1e-12))
    f = np.einsum("dk,dkp,knp->dn", alpha, w, phi, optimize=True)  # the model on the sample
    return np.mean(sigma * f, axis=1)


def linear_rows(cfg: Config) -> list[dict]:
    n, A, W, B = int(cfg["n"]), cfg["A"], cfg["W"], cfg["B"]
    sigma = all_sign_vectors(n)
    rows = []
    onehot = one_hot_features(n, 1, B)
    value = linear_attained(onehot, sigma, W, "l1", A).mean()
    rows.append(_row("linear_gated", "one_hot", value, bounds.linear_gated_bound(A, W, B, 1, n),
                     x_name="k", x=1, n=n, p=n))
    rows.append(_row("linear_shared", "one_hot", value, bounds.linear_shared_bound(A, W, B, n, k=1),
                     x_name="k", x=1, n=n, p=n))
    rng = np.random.default_rng([int(cfg.get("seed", 0)), 11])
    ks = sorted(int(k) for k in cfg["ks"] if k < 2 ** (n - 1))
    phi = random_sign_features(n, ks[-1], B, rng)
    for k in ks:  # nested: the first k candidates
        value = linear_attained(phi[:k], sigma, W, "l1", A).mean()
        rows.append(_row("linear_gated", "random_signs", value, bounds.linear_gated_bound(A, W, B, k, n),
                         x_name="k", x=k, n=n, p=1))
    every = all_pattern_features(n, B)
    value = linear_attained(every, sigma, W, "l1", A).mean()
    rows.append(_row("linear_gated", "all_patterns", value,
                     bounds.linear_gated_bound(A, W, B, every.shape[0], n), x_name="k", x=every.shape[0], n=n, p=1))
    for k in cfg["box_ks"]:
        value = linear_attained(one_hot_features(n, int(k), B), sigma, W, "box").mean()
        rows.append(_row("linear_box", "one_hot", value, bounds.linear_box_bound(W, B, int(k), n),
                         x_name="k", x=int(k), n=n, p=n))
    c = float(cfg["cost"])
    value = linear_attained(onehot, sigma, W, "weighted", cfg["A"], costs=np.array([c])).mean()
    for name, fn in (("weighted_linear", bounds.weighted_linear_bound),
                     ("weighted_linear_refined", bounds.weighted_linear_bound_refined)):
        rows.append(_row(name, "one_hot", value, fn(cfg["A"], [c], W, B, n), x_name="c_min", x=c, n=n, p=n))
    return rows


def sampled_pattern_rows(cfg: Config) -> list[dict]:
    """All ``2^(n-1)`` scalar sign patterns as candidates at sample sizes too large to list them.

    For each of ``draws`` random sign vectors the model puts ``A`` on the pattern ``+-sigma`` (one of
    the ``2^(n-1)``), which attains ``A W B``; it is evaluated on the sample by :func:`linear_attained`
    over the drawn patterns (a sub-class, so the model lies in the full class). The bound with
    ``k = 2^(n-1)`` is ``A W B (1 + sqrt(2 (n-1) ln 2)) / sqrt(n)``, above ``A W B`` for every n, while a
    width term ``sqrt(ln k)`` would give ``(1 + sqrt((n-1) ln 2)) / sqrt(n) < 1`` from n = 32 on.
    """
    A, W, B = cfg["A"], cfg["W"], cfg["B"]
    spec = cfg["patterns"]
    rows = []
    for n in (int(v) for v in spec["ns"]):
        if n > 1000:
            raise ValueError("2^(n-1) candidates overflow a float from n = 1025: n <= 1000 please")
        rng = np.random.default_rng([int(cfg.get("seed", 0)), 14, n])
        sigma = sign_vectors(int(spec["draws"]), n, rng)
        phi = B * (sigma * sigma[:, :1])[:, :, None]  # the pattern +-sigma with first entry +1, per draw
        values = linear_attained(phi, sigma, W, "l1", A)
        mean, se = mean_se(values)
        k = 2.0 ** (n - 1)
        rows.append(_row("linear_gated", "all_patterns_sampled", mean, bounds.linear_gated_bound(A, W, B, k, n),
                         x_name="k", x=k, n=n, p=1, check="monte_carlo", signs="monte_carlo", se=float(se),
                         draws=int(spec["draws"])))
    return rows


def weighted_pattern_rows(cfg: Config) -> list[dict]:
    """All ``2^(n-1)`` sign patterns at unequal costs: ``cost`` for every pattern but the last, which costs 1.

    Per sign vector the weighted model puts ``A'/c_j`` on the candidate of largest ``||S_j|| / c_j``
    (:func:`linear_attained`): ``A' W B / cost`` unless sigma is (minus) the expensive pattern. Both
    weighted bounds see all k costs, so the refined bound's per-candidate terms are exercised.
    """
    n, W, B, A_prime, c = int(cfg["n"]), cfg["W"], cfg["B"], cfg["A"], float(cfg["cost"])
    phi = all_pattern_features(n, B)
    k = phi.shape[0]
    costs = np.full(k, c)
    costs[-1] = 1.0
    value = linear_attained(phi, all_sign_vectors(n), W, "weighted", A_prime, costs=costs).mean()
    return [_row(name, "all_patterns_costs", value, fn(A_prime, costs, W, B, n), x_name="k", x=k, n=n, p=1,
                 c_min=c)
            for name, fn in (("weighted_linear", bounds.weighted_linear_bound),
                             ("weighted_linear_refined", bounds.weighted_linear_bound_refined))]


def penalised_rows(cfg: Config) -> list[dict]:
    """Hinge loss ``max(0, 1 - alpha)`` (one candidate with margin 1 on every point; 1 at alpha = 0 for
    every sample), cost 1: the penalised minimiser, found numerically, against ``1 / lambda``."""
    rows = []
    for lam in cfg["lambdas"]:
        lam = float(lam)

        def objective(a, lam=lam):
            return max(0.0, 1.0 - a) + lam * abs(a)

        res = minimize_scalar(objective, bounds=(-10.0 / lam, 10.0 / lam), method="bounded",
                              options={"xatol": 1e-12})
        assert objective(res.x) <= objective(0.0)  # what the bound needs of the point: no worse than 0
        rows.append(_row("penalised_radius", "hinge_margin_one", abs(res.x), bounds.penalised_radius(lam, 1.0),
                         x_name="lambda", x=lam, n=int(cfg["n"])))
    return rows


# --------------------------------------------------------------------------------------------------
# One hidden layer.


def identity_orthonormal_unit(n: int, B: float, U: float, sigma: np.ndarray) -> UnitSup:
    """Identity units on ``x_i = B e_i``: ``u = U S / ||S||`` with ``S = sum_i sigma_i x_i`` (explicit)."""
    x = orthonormal_points(n, B)
    S = sigma @ x
    u = U * S / np.linalg.norm(S, axis=1, keepdims=True)
    unit = UnitSup(value=np.zeros(sigma.shape[0]), u=u)
    unit.value = unit.recompute(x, sigma, ACTIVATIONS["identity"])
    return unit


def plane_search(n: int, rho_name: str, U: float, B: float, restarts: int, steps: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Hill climb over n points in the disc of radius B for a large exact ``E_sigma sup_u |...|``."""
    sigma = all_sign_vectors(n)
    slopes = ACTIVATIONS[rho_name].slopes

    def score(x):
        return planar_unit_sup(x, sigma, U, slopes).value.mean()

    best_x, best = None, -np.inf
    for _ in range(restarts):
        x = rng.standard_normal((n, 2))
        x *= B / np.linalg.norm(x, axis=1, keepdims=True)
        value, scale = score(x), 0.5 * B
        for t in range(steps):
            y = x + scale * rng.standard_normal(x.shape) * rng.uniform(size=(n, 1))
            y *= np.minimum(1.0, B / np.linalg.norm(y, axis=1, keepdims=True))
            vy = score(y)
            if vy > value:
                x, value = y, vy
            if (t + 1) % max(1, steps // 3) == 0:
                scale /= 2
        if value > best:
            best_x, best = x, value
    return best_x, best


def hidden_rows(cfg: Config) -> list[dict]:
    n, A, V, U, B = int(cfg["n"]), cfg["A"], cfg["V"], cfg["U"], cfg["B"]
    sigma = all_sign_vectors(n)
    rows = []
    unit = identity_orthonormal_unit(n, B, U, sigma).value.mean()  # certified by recompute
    rows.append(_row("hidden_gated", "identity_orthonormal", A * V * unit,
                     bounds.hidden_gated_bound(A, V, U, B, n, m=1), x_name="m", x=1, n=n, d=n, activation="identity"))
    for m in cfg["box_ms"]:  # m copies of the best unit, every gate open
        rows.append(_row("hidden_box", "identity_orthonormal", int(m) * V * unit,
                         bounds.hidden_box_bound(V, U, B, int(m), n), x_name="m", x=int(m), n=n, d=n,
                         activation="identity"))
    for T in cfg["Ts"]:  # the identity is one of the T types; on these points no type does better
        rows.append(_row("hidden_types", "identity_orthonormal", A * V * unit,
                         bounds.hidden_types_bound(A, V, U, B, int(T), n), x_name="T", x=int(T), n=n, d=n,
                         activation="identity"))
    plane = cfg["plane"]
    pn = int(plane["n"])
    psigma = all_sign_vectors(pn)
    rng = np.random.default_rng([int(cfg.get("seed", 0)), 13])
    configs = {}
    for name in plane["activations"]:
        x, _ = plane_search(pn, name, U, B, int(plane["restarts"]), int(plane["steps"]), rng)
        configs[name] = x
        value = planar_unit_sup(x, psigma, U, ACTIVATIONS[name].slopes).value.mean()
        rows.append(_row("hidden_gated", "plane_search", A * V * value, bounds.hidden_gated_bound(A, V, U, B, pn),
                         x_name="m", x=1, n=pn, d=2, activation=name))
    x = configs[plane["activations"][-1]]
    per_type = np.stack([planar_unit_sup(x, psigma, U, rho.slopes).value
                         for rho in planar_types(max(int(t) for t in cfg["Ts"]))], axis=1)
    for T in cfg["Ts"]:
        rows.append(_row("hidden_types", "plane_search", A * V * per_type[:, :int(T)].max(axis=1).mean(),
                         bounds.hidden_types_bound(A, V, U, B, int(T), pn), x_name="T", x=int(T), n=pn, d=2,
                         activation="planar_types"))
    return rows


# --------------------------------------------------------------------------------------------------
# The generalisation bound (its R_S term).


@cache
def expected_abs_rademacher_sum(c: int) -> float:
    """``E |sigma_1 + ... + sigma_c|`` exactly (binomial sum)."""
    return sum(math.comb(c, j) * abs(2 * j - c) for j in range(c + 1)) / 2.0**c


def generalisation_rows(cfg: Config) -> list[dict]:
    """Box-gated one-hot class over a domain of N points (every f with |f| <= W B), loss (1 - y f)/2.

    Per sample: the worst-case gap ``Phi = sup_f (risk - empirical risk)``, attained by the explicit
    ``f = W B y`` on the points seen and ``-W B y`` elsewhere (risk computed exactly over the domain);
    the exact ``R_S`` of the class (``(W B / n) sum_x E|sum_{i: x_i = x} sigma_i|``); the slack
    ``2 L R_S + 3 sqrt(ln(2/delta) / (2n))`` with L = 1/2. The bound may fail on a fraction delta of
    samples: ``violations`` counts them.
    """
    N, n, samples, delta = int(cfg["N"]), int(cfg["n"]), int(cfg["samples"]), float(cfg["delta"])
    W, B, L = cfg["W"], cfg["B"], 0.5
    if W * B > 1:
        raise ValueError("W B <= 1 keeps the loss (1 - y f)/2 in [0, 1]")
    rng = np.random.default_rng([int(cfg.get("seed", 0)), 12])
    y = rng.choice(np.array([-1.0, 1.0]), size=N)
    phis, slacks, rterms = [], [], []
    for _ in range(samples):
        idx = rng.integers(0, N, size=n)
        seen = np.zeros(N, dtype=bool)
        seen[idx] = True
        f = np.where(seen, y, -y) * W * B  # a member of the class: |f| <= W B
        loss = (1.0 - y * f) / 2.0
        phis.append(loss.mean() - loss[idx].mean())
        counts = np.bincount(idx)
        r_s = W * B / n * sum(expected_abs_rademacher_sum(int(c)) for c in counts[counts > 0])
        rterms.append(2 * L * r_s)
        slacks.append(float(bounds.generalisation_slack(r_s, n, delta, L)))
    phis, slacks, rterms = np.array(phis), np.array(slacks), np.array(rterms)
    mcd = slacks - rterms  # the confidence term
    # the R_S term shrunk by f is violated on sample s iff f > rterm_s / (phi_s - mcd)
    caught = checks.smallest_shrink_caught(phis - mcd, rterms, delta)
    row = _row("generalisation", "all_functions", phis.mean(), slacks.mean(), x_name="n", x=n, n=n,
               check="probability", violations=int(np.sum(phis > slacks)), samples=samples, delta=delta,
               rs_term=float(rterms.mean()), N=N)
    row["shrink_caught"] = caught  # of the R_S term alone
    row["signs"] = "exact"
    return [row]


# --------------------------------------------------------------------------------------------------
# Known bounds beside ours.


def known_rows(cfg: Config) -> list[dict]:
    """Our linear bound beside Massart's (scalar features) and the group-norm bound (any p), per k."""
    A, W, B, n = cfg["A"], cfg["W"], cfg["B"], int(cfg["n"])
    rows = []
    for k in cfg["known_ks"]:
        ours = float(bounds.linear_gated_bound(A, W, B, int(k), n))
        for name, fn, p in (("linear_gated", bounds.linear_gated_bound, "any"),
                            ("massart_l1", bounds.massart_l1_bound, "1"),
                            ("group_norm", bounds.group_norm_bound, "any")):
            value = float(fn(A, W, B, int(k), n))
            rows.append({"experiment": "known_bounds", "bound_name": name, "x_name": "k", "x": int(k), "n": n,
                         "p": p, "bound": value, "relative_to_ours": value / ours})
    return rows


def table(cfg: Config) -> pd.DataFrame:
    """Every construction and the known-bound comparison, as tidy rows."""
    rows = linear_rows(cfg) + sampled_pattern_rows(cfg) + weighted_pattern_rows(cfg) + penalised_rows(cfg)
    rows += hidden_rows(cfg)
    rows += generalisation_rows({**cfg, **cfg["generalisation"]})
    rows += coverage.single_function_rows({"seed": cfg.get("seed", 0), **cfg["coverage"]})
    rows += known_rows(cfg)
    return pd.DataFrame(rows)


def best(df: pd.DataFrame) -> pd.DataFrame:
    """The closest certified approach to each bound: the row of largest ratio per ``bound_name``."""
    t = df[(df["experiment"] == "tightness") & np.isfinite(df["ratio"])]
    return t.loc[t.groupby("bound_name")["ratio"].idxmax()].sort_values("ratio", ascending=False)
