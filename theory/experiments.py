"""The theory experiments as tidy tables: one function per experiment, each a config mapping in.

Every row is one measurement: ``experiment``, the class (``gate``: l1, shared, box, weighted), the
size that grows (``x_name`` = k, m, T, c_min, lambda, n; value ``x``), ``seed``, ``n``, and

- ``signs``: ``monte_carlo`` (random sign vectors) or ``all`` (every one of the 2^n: no sampling error);
- ``method``: how each supremum was found: ``exact`` (dual norms; the planar algorithm for units in
  d = 2), ``reduction`` (the gate set applied to the exact or estimated one-unit supremum),
  ``pga`` (projected gradient ascent on one unit), ``joint`` (ascent on the whole m-unit network),
  ``brute_force`` (SLSQP over all parameters), ``proximal_gradient`` (the penalised path);
- ``sup``: ``exact`` or ``lower`` (a value attained by a feasible model, so at most the supremum);
- the ``estimate``, its sampling standard error ``se`` (over sign vectors; 0 when ``signs`` is all,
  which says nothing about a ``lower`` supremum) with a 95 % interval ``ci_low``/``ci_high``, the
  library ``bound`` it is compared with and the ``check`` that decides whether the row refutes it
  (:mod:`theory.checks`).

The keys of each config are those of ``config/theory.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from theory import bounds, fits, tightness
from theory.empirical import (
    ACTIVATIONS,
    all_sign_vectors,
    candidate_norms,
    hidden_joint_sup,
    linear_sup,
    linear_sup_numerical,
    mean_se,
    planar_types,
    random_feature_maps,
    sign_vectors,
    sphere_points,
    unit_sup,
)
from theory.gates import Box, L1Ball, WeightedL1
from theory.generalisation import gap_experiment, gap_fits, gap_n_sweep, nonvacuous_run, setting_from

Config = Mapping[str, Any]


def _signs(n: int, draws: int | str, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    if draws == "all":
        return all_sign_vectors(n), "all"
    return sign_vectors(int(draws), n, rng), "monte_carlo"


def _summary(values: np.ndarray, signs: str, method: str, sup: str) -> dict[str, Any]:
    """Mean over sign vectors with its sampling error, and how the row is checked against its bound."""
    labels = {"signs": signs, "method": method, "sup": sup, "check": "exact" if signs == "all" else "monte_carlo",
              "draws": int(values.shape[0])}
    if not np.all(np.isfinite(values)):  # an unbounded class (a zero-cost candidate): R_S = inf
        return {"estimate": float("inf"), "se": float("nan"), **labels, "check": ""}
    mean, se = mean_se(values)
    if signs == "all":
        se = np.zeros_like(mean)  # the exact expectation over signs (of an exact or a lower supremum)
    return {"estimate": float(mean), "se": float(se), "ci_low": float(mean - 1.96 * se),
            "ci_high": float(mean + 1.96 * se), **labels}


# --------------------------------------------------------------------------------------------------
def linear_rows(cfg: Config, seed: int, n: int, draws: int | str, p: int) -> list[dict]:
    """The linear gated class (l1 and box gates) for k = 1..max(ks), candidates nested in k.

    One draw of ``max(ks)`` feature maps; the class with k candidates uses the first k, so the exact
    suprema for every k come from one matrix of candidate norms: a running max (l1), a running sum (box).
    """
    rng = np.random.default_rng([seed, 1, p, n])
    A, W, B = cfg["A"], cfg["W"], cfg["B"]
    ks = sorted(int(k) for k in cfg["ks"])
    x = sphere_points(n, cfg["d"], 1.0, rng)
    phi = random_feature_maps(x, ks[-1], p, B, rng, cfg.get("bandwidth", 1.0))
    sigma, signs = _signs(n, draws, rng)
    norms = candidate_norms(phi, sigma)  # (draws, k_max)
    rows = []
    for k in ks:
        common = {"experiment": "linear", "x_name": "k", "x": k, "seed": seed, "n": n, "p": p}
        sups = {
            "l1": W * L1Ball(A).abs_support(norms[:, :k]),  # = linear_sup(phi[:k], sigma, W, L1Ball(A))
            "box": W * Box().abs_support(norms[:, :k]),
        }
        limits = {"l1": bounds.linear_gated_bound(A, W, B, k, n), "box": bounds.linear_box_bound(W, B, k, n)}
        for gate, values in sups.items():
            rows.append({**common, "gate": gate, **_summary(values, signs, "exact", "exact"),
                         "bound": float(limits[gate])})
    return rows


def shared_rows(cfg: Config, seed: int) -> list[dict]:
    """One feature map shared by k candidates, the whole class optimised by brute force (SLSQP).

    The claim "the class does not grow with k" is tested without the reduction that proves it: for
    each sign vector the best local maximum over all (alpha, w_1..w_k) is compared with the exact
    k = 1 supremum (``reference``) on the same sign vector; by default over all 2^n sign vectors, so
    the row is an exact comparison (a brute-force value is attained, hence at most the supremum).
    """
    bf = cfg["shared"]
    n, p = int(bf["n"]), int(bf["p"])
    A, W, B = cfg["A"], cfg["W"], cfg["B"]
    rng = np.random.default_rng([seed, 9])
    x = sphere_points(n, cfg["d"], 1.0, rng)
    phi = random_feature_maps(x, 1, p, B, rng, cfg.get("bandwidth", 1.0))
    sigma, signs = _signs(n, bf.get("draws", "all"), rng)
    reference = linear_sup(phi, sigma, W, L1Ball(A))
    rows = []
    for k in bf["ks"]:
        shared = np.repeat(phi, int(k), axis=0)
        values = np.array([linear_sup_numerical(shared, s, W, L1Ball(A), int(bf["restarts"]), rng) for s in sigma])
        rows.append({"experiment": "linear", "gate": "shared", "x_name": "k", "x": int(k), "seed": seed, "n": n,
                     "p": p, **_summary(values, signs, "brute_force", "lower"),
                     "reference": float(reference.mean()),
                     "excess_over_reference": float(np.max(values - reference)),
                     "bound": float(bounds.linear_shared_bound(A, W, B, n, k=int(k)))})
    return rows


def linear_table(cfg: Config, seeds: list[int]) -> pd.DataFrame:
    """Monte-Carlo rows for every seed and feature dimension, one exact-enumeration instance, and the
    shared-map class by brute force."""
    rows = []
    for seed in seeds:
        for p in cfg["feature_dims"]:
            rows += linear_rows(cfg, seed, cfg["n"], cfg["draws"], p)
    if cfg.get("enumerate_n"):
        enum_cfg = {**cfg, "ks": [k for k in cfg["ks"] if k <= cfg.get("enumerate_k_max", 256)]}
        for p in cfg["feature_dims"]:
            rows += linear_rows(enum_cfg, seeds[0], cfg["enumerate_n"], "all", p)
    if cfg.get("shared"):
        rows += shared_rows(cfg, seeds[0])
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------
def _pga(cfg: Config) -> dict:
    return {"restarts": cfg.get("restarts", 8), "steps": cfg.get("steps", 100)}


def hidden_rows(cfg: Config, seed: int, n: int, draws: int | str) -> list[dict]:
    """The hidden-layer class, l1 versus box gates as the width m grows, from the one-unit supremum.

    The class is the gate set applied to the symmetric one-unit class, so its supremum is
    ``A V Z`` (l1) or ``m V Z`` (box) with ``Z = sup_u |(1/n) sum sigma_i rho(<u, x_i>)|``: these
    ``reduction`` rows restate Z at each m; :func:`hidden_joint_rows` tests the reduction itself. Z is
    exact in d = 2 for ReLU-like units, else a projected-gradient lower estimate (``sup`` column).
    """
    rng = np.random.default_rng([seed, 2, n])
    A, V, U, B = cfg["A"], cfg["V"], cfg["U"], cfg["B"]
    rho = ACTIVATIONS[cfg.get("activation", "relu")]
    x = sphere_points(n, cfg["d"], B, rng)
    sigma, signs = _signs(n, draws, rng)
    unit, found = unit_sup(x, sigma, rho, U, rng, **_pga(cfg))
    sup = "exact" if found == "exact" else "lower"
    rows = []
    for m in sorted(int(m) for m in cfg["ms"]):
        common = {"experiment": "hidden", "x_name": "m", "x": m, "seed": seed, "n": n, "d": cfg["d"],
                  "activation": rho.name, "unit_method": found}
        for gate, gates, limit in (("l1", L1Ball(A), bounds.hidden_gated_bound(A, V, U, B, n, m=m)),
                                   ("box", Box(), bounds.hidden_box_bound(V, U, B, m, n))):
            values = gates.abs_support(np.repeat(V * unit.value[:, None], m, axis=1))
            rows.append({**common, "gate": gate, **_summary(values, signs, "reduction", sup), "bound": float(limit)})
    return rows


def hidden_joint_rows(cfg: Config, seed: int) -> list[dict]:
    """Whole-network lower estimates (no reduction) on fewer sign vectors, for the widths joint_ms,
    beside the one-unit supremum on the same sign vectors (``reference``: exact in d = 2)."""
    rng = np.random.default_rng([seed, 3])
    A, V, U, B, n = cfg["A"], cfg["V"], cfg["U"], cfg["B"], cfg["n"]
    rho = ACTIVATIONS[cfg.get("activation", "relu")]
    x = sphere_points(n, cfg["d"], B, rng)
    sigma = sign_vectors(cfg["joint_draws"], n, rng)
    unit, found = unit_sup(x, sigma, rho, U, rng, **_pga(cfg))
    rows = []
    for m in cfg.get("joint_ms", []):
        for gate, gates, limit in (("l1", L1Ball(A), bounds.hidden_gated_bound(A, V, U, B, n, m=m)),
                                   ("box", Box(), bounds.hidden_box_bound(V, U, B, m, n))):
            values = hidden_joint_sup(x, sigma, rho, V, U, gates, int(m), rng, steps=cfg.get("joint_steps", 150))
            reference = gates.abs_support(np.repeat(V * unit.value[:, None], int(m), axis=1))
            rows.append({"experiment": "hidden", "x_name": "m", "x": int(m), "seed": seed, "n": n, "d": cfg["d"],
                         "activation": rho.name, "gate": gate, **_summary(values, "monte_carlo", "joint", "lower"),
                         "bound": float(limit), "reference": float(reference.mean()), "unit_method": found,
                         "excess_over_reference": float(np.max(values - reference))})
    return rows


def hidden_types_rows(cfg: Config, seed: int, n: int, draws: int | str) -> list[dict]:
    """l1-gated units mixing T unit types (nested: T types are the first T of max(Ts), planar_types)."""
    rng = np.random.default_rng([seed, 4, n])
    A, V, U, B = cfg["A"], cfg["V"], cfg["U"], cfg["B"]
    Ts = sorted(int(t) for t in cfg["Ts"])
    x = sphere_points(n, cfg["d"], B, rng)
    sigma, signs = _signs(n, draws, rng)
    found = [unit_sup(x, sigma, rho, U, rng, **_pga(cfg)) for rho in planar_types(Ts[-1])]
    per_type = np.stack([f[0].value for f in found], 1)
    sup = "exact" if all(f[1] == "exact" for f in found) else "lower"
    rows = []
    for t in Ts:
        values = A * V * per_type[:, :t].max(axis=1)
        rows.append({"experiment": "hidden_types", "x_name": "T", "x": t, "seed": seed, "n": n, "d": cfg["d"],
                     "gate": "l1", **_summary(values, signs, "reduction", sup),
                     "bound": float(bounds.hidden_types_bound(A, V, U, B, t, n))})
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
    sigma, signs = _signs(n, cfg["draws"], rng)
    norms = candidate_norms(phi, sigma)
    rows = []
    for c in cfg["c_mins"]:
        costs = (float(c),) + (1.0,) * (k - 1)
        values = W * WeightedL1(A_prime, costs).abs_support(norms)
        rows.append({"experiment": "weighted", "x_name": "c_min", "x": float(c), "seed": seed, "n": n,
                     "p": cfg["p"], "k": k, "gate": "weighted", **_summary(values, signs, "exact", "exact"),
                     "bound": bounds.weighted_linear_bound(A_prime, costs, W, B, n),
                     "bound_refined": bounds.weighted_linear_bound_refined(A_prime, costs, W, B, n)})
    return rows


def penalised_path(cfg: Config, seed: int) -> list[dict]:
    """The penalised form: weighted lasso over k fixed candidate outputs, solved as DARC updates gates.

    Loss (1/2n) ||y - G alpha||^2 with ``G[:, j] = <w_j, phi_j(x)>`` (unit-norm random ``w_j``), labels
    +-1 so the loss at alpha = 0 is ell0 = 1/2; proximal gradient steps (a gradient step, then a
    soft-threshold by ``lr * lam * c_j``), warm-started along a decreasing lambda path. Reports the
    weighted radius reached, sum c|alpha|, against ell0 / lam with ell0 = 1/2, the loss at alpha = 0
    for every sample (so the radius is fixed before the sample is drawn).
    """
    rng = np.random.default_rng([seed, 6])
    n, k, B = cfg["n"], cfg["k"], cfg["B"]
    ell_max = 0.5  # (1/2n) ||y - 0||^2 with labels +-1: the loss at alpha = 0 is 1/2 for every sample
    x = sphere_points(n, cfg["d"], 1.0, rng)
    phi = random_feature_maps(x, k, cfg["p"], B, rng)
    w = rng.standard_normal((k, cfg["p"]))
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    G = np.einsum("knp,kp->nk", phi, w)
    y = np.sign(G[:, 0] + 0.5 * G[:, 1] + 0.3 * rng.standard_normal(n))
    costs = rng.uniform(cfg.get("cost_low", 0.05), 1.0, size=k)
    assert np.isclose(0.5 * np.mean(y**2), ell_max)
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
                     "bound": float(bounds.penalised_radius(lam, ell_max)), "train_loss": float(loss),
                     "nonzero": int(np.count_nonzero(alpha)), "check": "exact",
                     "objective_vs_zero": float(loss + lam * radius - ell_max)})
    return rows


def weighted_table(cfg: Config, seeds: list[int]) -> pd.DataFrame:
    rows = []
    for seed in seeds:
        rows += weighted_rows(cfg, seed)
        rows += penalised_path(cfg, seed)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------
def gap_table(cfg: Config, seeds: list[int]) -> pd.DataFrame:
    """The generalisation experiment for each family (nested tasks, warm-started along the widths), the
    fits of the gap's growth in the width, the gap against n at a fixed width, and the non-vacuous example."""
    base = {k: v for k, v in cfg.items() if k not in ("widths", "families", "seeds", "nonvacuous", "n_sweep")}
    setting = setting_from(base)
    parts = [gap_experiment(fam, cfg["widths"][fam], seeds, setting) for fam in cfg["families"]]
    df = pd.concat(parts, ignore_index=True)
    out = [df, gap_fits(df, setting)]
    if cfg.get("n_sweep"):
        sweep = dict(cfg["n_sweep"])
        ns, width = [int(n) for n in sweep.pop("ns")], int(sweep.pop("width"))
        out += [gap_n_sweep(fam, ns, width, seeds, setting_from({**base, **sweep})) for fam in cfg["families"]]
    if cfg.get("nonvacuous"):
        nv = dict(cfg["nonvacuous"])
        width = int(nv.pop("width"))
        out.append(pd.DataFrame([nonvacuous_run(setting_from({**base, **nv}), width, seeds[0])]))
    return pd.concat(out, ignore_index=True)


# --------------------------------------------------------------------------------------------------
def rates_table(cfg: Config, seeds: list[int]) -> pd.DataFrame:
    """R_S against the sample size n, a fresh sample per n: the l1-gated linear class (k candidates
    of p random Fourier features; exact supremum) and one hidden layer (d = 2, exact supremum; width-free);
    plus the least-squares slope of log R_S against log n per family, per seed and pooled (theory: -1/2)."""
    lin, hid = cfg["linear"], cfg["hidden"]
    A, W, B, V, U = cfg["A"], cfg["W"], cfg["B"], cfg["V"], cfg["U"]
    rho = ACTIVATIONS[hid.get("activation", "relu")]
    rows = []
    for seed in seeds:
        for n in sorted(int(n) for n in cfg["ns"]):
            rng = np.random.default_rng([seed, 8, n])
            x = sphere_points(n, lin["d"], 1.0, rng)
            phi = random_feature_maps(x, int(lin["k"]), int(lin["p"]), B, rng)
            sigma = sign_vectors(int(cfg["draws"]), n, rng)
            values = W * L1Ball(A).abs_support(candidate_norms(phi, sigma))
            rows.append({"experiment": "rates", "family": "linear", "gate": "l1", "x_name": "n", "x": n,
                         "seed": seed, "n": n, "k": int(lin["k"]), "p": int(lin["p"]),
                         **_summary(values, "monte_carlo", "exact", "exact"),
                         "bound": float(bounds.linear_gated_bound(A, W, B, int(lin["k"]), n))})
            x = sphere_points(n, hid["d"], B, rng)
            unit, found = unit_sup(x, sigma, rho, U, rng)
            rows.append({"experiment": "rates", "family": "hidden", "gate": "l1", "x_name": "n", "x": n,
                         "seed": seed, "n": n, "d": hid["d"], "activation": rho.name,
                         **_summary(A * V * unit.value, "monte_carlo", found, "exact" if found == "exact" else "lower"),
                         "bound": float(bounds.hidden_gated_bound(A, V, U, B, n))})
    df = pd.DataFrame(rows)
    slopes = []
    for family, part in df.groupby("family"):
        per_seed = [fits.loglog_slope(g["x"], g["estimate"])["slope"] for _, g in part.groupby("seed")]
        pooled = part.groupby("x")["estimate"].mean()
        fit = fits.loglog_slope(pooled.index.to_numpy(float), pooled.to_numpy())
        mean, se = mean_se(np.array(per_seed))
        slopes.append({"experiment": "rate_slope", "family": family, "gate": "l1", "x_name": "log_n",
                       "quantity": "loglog_slope", "estimate": fit["slope"], "se": fit["slope_se"], "r2": fit["r2"],
                       "seed_mean": float(mean), "seed_se": float(se), "predicted": -0.5,
                       "n_min": int(pooled.index.min()), "n_max": int(pooled.index.max())})
    return pd.concat([df, pd.DataFrame(slopes)], ignore_index=True)


def tightness_table(cfg: Config, seeds: list[int]) -> pd.DataFrame:
    """Certified constructions against every bound, and the known bounds beside ours (theory.tightness)."""
    return tightness.table({**cfg, "seed": seeds[0]})


TABLES = {"linear": linear_table, "hidden": hidden_table, "weighted": weighted_table, "gap": gap_table,
          "rates": rates_table, "tightness": tightness_table}


def run(name: str, settings: Config) -> pd.DataFrame:
    """Run experiment ``name`` with the resolved theory settings (see :func:`theory.config.settings`)."""
    cfg = settings[name]
    seeds = [int(s) for s in cfg.get("seeds", settings.get("seeds", [0]))]
    return TABLES[name](cfg, seeds)
