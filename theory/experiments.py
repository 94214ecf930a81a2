"""The theory experiments as tidy tables: one function per experiment, each a config mapping in.

Every row is one measurement: ``experiment``, the class (``gate``: l1, shared, box, weighted), the
size that grows (``x_name`` = k, m, T, c_min, lambda; value ``x``), ``seed``, ``n``, the ``method``
(``monte_carlo`` over random signs, ``enumeration`` of all 2^n signs, ``reduction`` / ``joint``
lower estimates for the hidden layer), the ``estimate`` with its standard error ``se`` (and a 95 %
normal interval ``ci_low``/``ci_high``) and the library ``bound`` it is compared with. The keys
of each config are those of ``config/theory.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from theory import bounds
from theory.empirical import (
    ACTIVATIONS,
    all_sign_vectors,
    candidate_norms,
    hidden_joint_sup,
    hidden_unit_sup,
    mean_se,
    random_feature_maps,
    sign_vectors,
    sphere_points,
    unit_types,
)
from theory.gates import Box, L1Ball, WeightedL1
from theory.generalisation import gap_experiment, gap_slopes, setting_from

Config = Mapping[str, Any]


def _signs(n: int, draws: int | str, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    if draws == "all":
        return all_sign_vectors(n), "enumeration"
    return sign_vectors(int(draws), n, rng), "monte_carlo"


def _summary(values: np.ndarray, method: str) -> dict[str, float]:
    if not np.all(np.isfinite(values)):  # an unbounded class (a zero-cost candidate): R_S = inf
        return {"estimate": float("inf"), "se": float("nan"), "draws": int(values.shape[0])}
    mean, se = mean_se(values)
    if method == "enumeration":
        se = np.zeros_like(mean)  # the exact expectation
    return {"estimate": float(mean), "se": float(se), "ci_low": float(mean - 1.96 * se),
            "ci_high": float(mean + 1.96 * se), "draws": int(values.shape[0])}


# --------------------------------------------------------------------------------------------------
def linear_rows(cfg: Config, seed: int, n: int, draws: int | str, p: int) -> list[dict]:
    """The linear gated class (l1, shared map, box) for k = 1..max(ks), candidates nested in k.

    One draw of ``max(ks)`` feature maps; the class with k candidates uses the first k, so the exact
    suprema for every k come from one matrix of candidate norms: a running max (l1), a running sum
    (box) and the first column alone (shared map).
    """
    rng = np.random.default_rng([seed, 1, p, n])
    A, W, B = cfg["A"], cfg["W"], cfg["B"]
    ks = sorted(int(k) for k in cfg["ks"])
    x = sphere_points(n, cfg["d"], 1.0, rng)
    phi = random_feature_maps(x, ks[-1], p, B, rng, cfg.get("bandwidth", 1.0))
    sigma, method = _signs(n, draws, rng)
    norms = candidate_norms(phi, sigma)  # (draws, k_max)
    rows = []
    for k in ks:
        common = {"experiment": "linear", "x_name": "k", "x": k, "seed": seed, "n": n, "p": p,
                  "method": method}
        sups = {
            "l1": W * L1Ball(A).abs_support(norms[:, :k]),  # = linear_sup(phi[:k], sigma, W, L1Ball(A))
            "shared": W * L1Ball(A).abs_support(np.repeat(norms[:, :1], k, axis=1)),
            "box": W * Box().abs_support(norms[:, :k]),
        }
        limits = {
            "l1": bounds.linear_gated_bound(A, W, B, k, n),
            "shared": bounds.linear_shared_bound(A, W, B, n, k=k),
            "box": bounds.linear_box_bound(W, B, k, n),
        }
        for gate, values in sups.items():
            rows.append({**common, "gate": gate, **_summary(values, method), "bound": float(limits[gate])})
    return rows


def linear_table(cfg: Config, seeds: list[int]) -> pd.DataFrame:
    """Monte-Carlo rows for every seed and feature dimension, plus one exact-enumeration instance."""
    rows = []
    for seed in seeds:
        for p in cfg["feature_dims"]:
            rows += linear_rows(cfg, seed, cfg["n"], cfg["draws"], p)
    if cfg.get("enumerate_n"):
        enum_cfg = {**cfg, "ks": [k for k in cfg["ks"] if k <= cfg.get("enumerate_k_max", 256)]}
        for p in cfg["feature_dims"]:
            rows += linear_rows(enum_cfg, seeds[0], cfg["enumerate_n"], "all", p)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------
def _pga(cfg: Config) -> dict:
    return {"restarts": cfg.get("restarts", 8), "steps": cfg.get("steps", 100)}


def hidden_rows(cfg: Config, seed: int, n: int, draws: int | str) -> list[dict]:
    """The hidden-layer class: l1 gates versus box gates as the width m grows (lower estimates)."""
    rng = np.random.default_rng([seed, 2, n])
    A, V, U, B = cfg["A"], cfg["V"], cfg["U"], cfg["B"]
    rho = ACTIVATIONS[cfg.get("activation", "relu")]
    x = sphere_points(n, cfg["d"], B, rng)
    sigma, method = _signs(n, draws, rng)
    unit = V * hidden_unit_sup(x, sigma, rho, U, rng, **_pga(cfg)).value  # exact reduction, per sigma
    rows = []
    for m in sorted(int(m) for m in cfg["ms"]):
        common = {"experiment": "hidden", "x_name": "m", "x": m, "seed": seed, "n": n,
                  "activation": rho.name}
        for gate, gates, limit in (("l1", L1Ball(A), bounds.hidden_gated_bound(A, V, U, B, n, m=m)),
                                   ("box", Box(), bounds.hidden_box_bound(V, U, B, m, n))):
            values = gates.abs_support(np.repeat(unit[:, None], m, axis=1))
            rows.append({**common, "gate": gate, "method": "reduction" if method == "monte_carlo"
                         else "enumeration", **_summary(values, method), "bound": float(limit)})
    return rows


def hidden_joint_rows(cfg: Config, seed: int) -> list[dict]:
    """Whole-network lower estimates (no reduction) on fewer sign vectors, for the widths joint_ms."""
    rng = np.random.default_rng([seed, 3])
    A, V, U, B, n = cfg["A"], cfg["V"], cfg["U"], cfg["B"], cfg["n"]
    rho = ACTIVATIONS[cfg.get("activation", "relu")]
    x = sphere_points(n, cfg["d"], B, rng)
    sigma = sign_vectors(cfg["joint_draws"], n, rng)
    rows = []
    for m in cfg.get("joint_ms", []):
        for gate, gates, limit in (("l1", L1Ball(A), bounds.hidden_gated_bound(A, V, U, B, n, m=m)),
                                   ("box", Box(), bounds.hidden_box_bound(V, U, B, m, n))):
            values = hidden_joint_sup(x, sigma, rho, V, U, gates, int(m), rng, steps=cfg.get("joint_steps", 150))
            rows.append({"experiment": "hidden", "x_name": "m", "x": int(m), "seed": seed, "n": n,
                         "activation": rho.name, "gate": gate, "method": "joint",
                         **_summary(values, "monte_carlo"), "bound": float(limit)})
    return rows


def hidden_types_rows(cfg: Config, seed: int, n: int, draws: int | str) -> list[dict]:
    """l1-gated units mixing T unit types (nested: T types are the first T of max(Ts))."""
    rng = np.random.default_rng([seed, 4, n])
    A, V, U, B = cfg["A"], cfg["V"], cfg["U"], cfg["B"]
    Ts = sorted(int(t) for t in cfg["Ts"])
    x = sphere_points(n, cfg["d"], B, rng)
    sigma, method = _signs(n, draws, rng)
    types = unit_types(Ts[-1], U * B)
    per_type = np.stack([hidden_unit_sup(x, sigma, rho, U, rng, **_pga(cfg)).value for rho in types], 1)
    rows = []
    for t in Ts:
        values = A * V * per_type[:, :t].max(axis=1)
        rows.append({"experiment": "hidden_types", "x_name": "T", "x": t, "seed": seed, "n": n,
                     "gate": "l1", "method": "reduction" if method == "monte_carlo" else "enumeration",
                     **_summary(values, method), "bound": float(bounds.hidden_types_bound(A, V, U, B, t, n))})
    return rows


def hidden_table(cfg: Config, seeds: list[int]) -> pd.DataFrame:
    rows = []
    for seed in seeds:
        rows += hidden_rows(cfg, seed, cfg["n"], cfg["draws"])
        rows += hidden_types_rows(cfg, seed, cfg["n"], cfg["draws"])
    rows += hidden_joint_rows(cfg, seeds[0])
    if cfg.get("enumerate_n"):
        rows += hidden_rows(cfg, seeds[0], cfg["enumerate_n"], "all")
        rows += hidden_types_rows(cfg, seeds[0], cfg["enumerate_n"], "all")
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------
def weighted_rows(cfg: Config, seed: int) -> list[dict]:
    """The cost-weighted class: one cheap candidate of cost c_min among k of cost 1, c_min -> 0."""
    rng = np.random.default_rng([seed, 5])
    A_prime, W, B, n, k = cfg["A_prime"], cfg["W"], cfg["B"], cfg["n"], cfg["k"]
    x = sphere_points(n, cfg["d"], 1.0, rng)
    phi = random_feature_maps(x, k, cfg["p"], B, rng)
    sigma, method = _signs(n, cfg["draws"], rng)
    norms = candidate_norms(phi, sigma)
    rows = []
    for c in cfg["c_mins"]:
        costs = (float(c),) + (1.0,) * (k - 1)
        values = W * WeightedL1(A_prime, costs).abs_support(norms)
        rows.append({"experiment": "weighted", "x_name": "c_min", "x": float(c), "seed": seed, "n": n,
                     "p": cfg["p"], "k": k, "gate": "weighted", "method": method, **_summary(values, method),
                     "bound": bounds.weighted_linear_bound(A_prime, costs, W, B, n),
                     "bound_refined": bounds.weighted_linear_bound_refined(A_prime, costs, W, B, n)})
    return rows


def penalised_path(cfg: Config, seed: int) -> list[dict]:
    """The penalised form: weighted lasso over k fixed candidate outputs, solved as DARC updates gates.

    Loss (1/2n) ||y - G alpha||^2 with ``G[:, j] = <w_j, phi_j(x)>`` (unit-norm random ``w_j``), labels
    +-1 so the loss at alpha = 0 is ell0 = 1/2; proximal gradient steps (a gradient step, then a
    soft-threshold by ``lr * lam * c_j``), warm-started along a decreasing lambda path. Reports the
    weighted radius reached, sum c|alpha|, against ell0 / lam.
    """
    rng = np.random.default_rng([seed, 6])
    n, k, B = cfg["n"], cfg["k"], cfg["B"]
    x = sphere_points(n, cfg["d"], 1.0, rng)
    phi = random_feature_maps(x, k, cfg["p"], B, rng)
    w = rng.standard_normal((k, cfg["p"]))
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    G = np.einsum("knp,kp->nk", phi, w)
    y = np.sign(G[:, 0] + 0.5 * G[:, 1] + 0.3 * rng.standard_normal(n))
    costs = rng.uniform(cfg.get("cost_low", 0.05), 1.0, size=k)
    ell0 = 0.5 * np.mean(y**2)
    lr = n / np.linalg.norm(G, 2) ** 2
    alpha = np.zeros(k)
    rows = []
    for lam in sorted(cfg["lambdas"], reverse=True):
        for _ in range(cfg.get("prox_steps", 2000)):
            z = alpha - lr * (G.T @ (G @ alpha - y)) / n
            alpha = np.sign(z) * np.maximum(np.abs(z) - lr * lam * costs, 0.0)
        radius = float(np.sum(costs * np.abs(alpha)))
        loss = 0.5 * np.mean((y - G @ alpha) ** 2)
        rows.append({"experiment": "penalised", "x_name": "lambda", "x": float(lam), "seed": seed, "n": n,
                     "k": k, "gate": "weighted", "method": "proximal_gradient", "estimate": radius,
                     "bound": float(bounds.penalised_radius(lam, ell0)), "train_loss": float(loss),
                     "nonzero": int(np.count_nonzero(alpha)),
                     "objective_vs_zero": float(loss + lam * radius - ell0)})
    return rows


def weighted_table(cfg: Config, seeds: list[int]) -> pd.DataFrame:
    rows = []
    for seed in seeds:
        rows += weighted_rows(cfg, seed)
        rows += penalised_path(cfg, seed)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------
def gap_table(cfg: Config, seeds: list[int]) -> pd.DataFrame:
    """The generalisation experiment for each family, with per-seed slopes of the gap in log2(width)."""
    setting = setting_from({k: v for k, v in cfg.items() if k not in ("widths", "families", "seeds")})
    parts = [gap_experiment(fam, cfg["widths"][fam], seeds, setting) for fam in cfg["families"]]
    df = pd.concat(parts, ignore_index=True)
    return pd.concat([df, gap_slopes(df)], ignore_index=True)


TABLES = {"linear": linear_table, "hidden": hidden_table, "weighted": weighted_table, "gap": gap_table}


def run(name: str, settings: Config) -> pd.DataFrame:
    """Run experiment ``name`` with the resolved theory settings (see :func:`theory.config.settings`)."""
    cfg = settings[name]
    seeds = [int(s) for s in cfg.get("seeds", settings.get("seeds", [0]))]
    return TABLES[name](cfg, seeds)
