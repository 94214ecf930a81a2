# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 — The cost-weighted penalty, its limits, and the penalised form
#
# *The DARC paper's full text and proofs are not available to us: the statements below are the reconstruction given in `docs/MISSION.md`, re-derived here from standard tools (Bartlett & Mendelson 2002; Ledoux & Talagrand 1991; Mohri, Rostamizadeh & Talwalkar, *Foundations of ML*, 2nd ed., ch. 3 and 5).*
#
# DARC penalises $\lambda\sum_j c_j|\alpha_j|$ with costs $c_j \ge 0$, so the natural class is
# $\sum_j c_j|\alpha_j| \le A'$, not $\|\alpha\|_1 \le A$. Stated for the linear gated class of
# notebook 01 (the hidden-layer class is the same with $W \to V$, $B \to UB$ and the factor 2).
#
# *Scope.* A simplified class (fixed candidates, norm-constrained weights), not the full DARC networks.

# %%
import numpy as np
import sympy as sp

import theory.bounds as tb
import theory.empirical as te
from theory.gates import WeightedL1

A, W, B, U, V, n, k, m, T = (tb.SYMBOLS[s] for s in "A W B U V n k m T".split())
rng = np.random.default_rng(0)
FINAL = {}


def check_same(derived, name):
    """The derived expression must be the library's (theory.bounds.check_derivation); kept for FINAL."""
    return tb.check_derivation(derived, name, FINAL)
A_prime, c_min, lam, ell0 = (tb.SYMBOLS[s] for s in ("A_prime", "c_min", "lam", "ell0"))

# %% [markdown]
# ## Step 1 — inclusion: $A = A'/c_{\min}$
#
# $\sum_j c_j|\alpha_j| \ge c_{\min}\|\alpha\|_1$, so the weighted ball lies in the $\ell_1$ ball of
# radius $A'/c_{\min}$ and every bound holds with $A = A'/c_{\min}$ — provided $c_{\min} > 0$.

# %%
weighted_linear = tb.linear_gated_bound_expr().subs(A, A_prime / c_min)
check_same(weighted_linear, "weighted_linear")

# %% [markdown]
# ## Step 2 — the limit: zero-cost candidates
#
# The exact supremum (notebook 01, Step 1, with the dual of the weighted $\ell_1$ norm) is
# $\frac{A'W}{n}\max_j \|S_j\|/c_j$. A candidate with $c_j = 0$ (e.g. `identity`, which DARC prices
# at zero) has an unconstrained gate: the supremum is $+\infty$ whenever $S_j \ne 0$. The bound does not
# merely get loose — **the class has infinite Rademacher complexity, and nothing can be said** unless
# such gates are bounded some other way (e.g. a box $|\alpha_j| \le a_j$, which adds $a_jWB/\sqrt n$ each:
# the supremum over a sum of classes is the sum of the suprema).

# %%
x = te.sphere_points(32, 4, 1.0, rng)
phi = te.random_feature_maps(x, 8, 2, 1.0, rng)
sigma = te.sign_vectors(200, 32, rng)
norms = te.candidate_norms(phi, sigma)
for c in (1.0, 0.1, 0.01, 0.0):
    costs = (c,) + (1.0,) * 7
    est = np.mean(WeightedL1(1.0, costs).abs_support(norms))
    print(f"c_min={c:5.2f}: exact R_S ~ {est:8.4f}   bound A=A'/c_min: {tb.weighted_linear_bound(1, costs, 1, 1, 32):8.4f}"
          f"   refined: {tb.weighted_linear_bound_refined(1, costs, 1, 1, 32):8.4f}")
assert np.isinf(tb.weighted_linear_bound(1, (0.0, 1.0), 1, 1, 32))

# %% [markdown]
# ## Step 3 — a sharper weighted bound: every candidate at its own price
#
# $X_j = \|S_j\|/c_j$ has mean $\le B\sqrt n/c_j$ and sub-Gaussian proxy $nB^2/c_j^2$ (notebook 01,
# Steps 2–3). The maximal inequality with unequal proxies,
# $\mathbb E\max_j X_j \le \frac1\lambda\ln\sum_j e^{\lambda\mu_j + \lambda^2 s_j^2/2}$, with
# $t = \lambda B\sqrt n$ gives
# $$\hat R_S \le \frac{A'WB}{\sqrt n}\ \inf_{t>0}\ \frac1t\ln\sum_j \exp\Big(\frac t{c_j} +
# \frac{t^2}{2c_j^2}\Big),$$
# never larger than Step 1 (each $c_j \ge c_{\min}$) and equal to it when all costs are equal:

# %%
t, c = sp.symbols("t c", positive=True)
h = (sp.log(k) + t / c + t**2 / (2 * c**2)) / t      # k equal costs c: ln(k e^{...}) / t
t_star = sp.solve(sp.diff(h, t), t)[0]
equal_costs = sp.simplify(h.subs(t, t_star))
assert sp.simplify(equal_costs - (1 + sp.sqrt(2 * sp.log(k))) / c) == 0
for costs in ([0.3] * 5, rng.uniform(0.05, 1, 20)):
    refined = tb.weighted_linear_bound_refined(1.0, costs, 1.0, 1.0, 50)
    uniform = tb.weighted_linear_bound(1.0, costs, 1.0, 1.0, 50)
    print(f"refined {refined:.5f} <= uniform {uniform:.5f}")
    assert refined <= uniform * (1 + 1e-9)
t_star, equal_costs

# %% [markdown]
# **Checked against a certified value with many unequal costs.** All $2^{n-1}$ sign patterns as scalar
# features ($n = 10$: 512 candidates), every pattern at cost 0.1 but one at cost 1: for each sign vector
# the model puts $A'/c_j$ on the best candidate (`theory.tightness.weighted_pattern_rows`), and the mean
# over all $2^n$ sign vectors must stay under both bounds. A refined bound that weighed every
# candidate's spread as the most expensive one's ($t^2/(2c_{\max}^2)$) would not:

# %%
import theory.tightness as tt

for r in tt.weighted_pattern_rows({"n": 10, "W": 1.0, "B": 1.0, "A": 1.0, "cost": 0.1}):
    print(f"{r['bound_name']:24s} k={r['x']}: certified {r['estimate']:.4f} <= bound {r['bound']:.4f}")
    assert r["estimate"] <= r["bound"]

# %% [markdown]
# ## Step 4 — the penalised form lies in a constrained class (fixed before the sample)
#
# Let $\hat\alpha$ minimise $\hat L(\alpha) + \lambda\sum_j c_j|\alpha_j|$ with $\hat L \ge 0$. Comparing
# with $\alpha = 0$: $\lambda\sum_j c_j|\hat\alpha_j| \le \hat L(\hat\alpha) + \lambda\sum_j c_j|\hat\alpha_j|
# \le \hat L(0)$, so $\sum_j c_j|\hat\alpha_j| \le \hat L(0)/\lambda$.
#
# **The radius may not be read off the sample.** The Rademacher bound and the generalisation bound
# (notebook 04) hold for a class fixed before the sample is drawn; $\hat L(0)/\lambda$ depends on the
# sample. Two correct ways:
#
# 1. *A sample-independent bound on $\hat L(0)$.* For a loss in $[0,1]$, $\hat L(0) \le 1$ for every
#    sample, so $\hat\alpha$ lies in the fixed class $\sum_j c_j|\alpha_j| \le A' = 1/\lambda$ and the bounds
#    hold with $A = 1/(\lambda c_{\min})$. In general use $\ell_0 = \sup_S \hat L(0)$ (for the squared loss
#    with labels $\pm 1$, $\hat L(0) = \frac1{2n}\|y\|^2 = \frac12$ for every sample): the library's
#    `penalised_linear` is the bound with $A = \ell_0/(\lambda c_{\min})$ in this sense.
# 2. *A union bound over radii.* Fix radii $A'_j = 2^j$, $j = 0, 1, \dots$ and give radius $j$ the
#    failure probability $\delta_j = 6\delta/(\pi^2 (j+1)^2)$ (these sum to $\delta$). With probability
#    $\ge 1 - \delta$ every radius's bound holds at once, so it holds at the smallest $A'_j \ge \hat L(0)/\lambda$,
#    a data-dependent choice, at the price of $\ln(2/\delta_j)$ instead of $\ln(2/\delta)$ in the last term and
#    a radius at most twice too large.
#
# Conversely, for a convex $\hat L$ (fixed candidates) Lagrange duality gives, for each $A'$, a
# $\lambda \ge 0$ whose penalised minimiser solves the constrained problem — the two forms trace the
# same path.
#
# Caveats: (i) only the objective *value* matters — any point found by training whose penalised objective
# is below that of $\alpha = 0$ qualifies; (ii) the same argument bounds the other weights only if they
# are penalised too: with weight decay $\mu\sum_j\|w_j\|^2$ one gets $\|w_j\| \le \sqrt{\ell_0/\mu}$
# — without it $W$ is unbounded and the rescaling loophole ($\alpha_j \to \alpha_j/s$, $w_j \to s w_j$)
# makes the gate penalty vacuous.

# %%
penalised_linear = tb.linear_gated_bound_expr().subs(A, (ell0 / lam) / c_min)
check_same(penalised_linear, "penalised_linear")
jj = sp.symbols("j", integer=True, nonnegative=True)
delta = tb.SYMBOLS["delta"]
delta_j = 6 * delta / (sp.pi**2 * (jj + 1) ** 2)
assert sp.simplify(sp.summation(delta_j, (jj, 0, sp.oo)) - delta) == 0  # the radii share delta


def slack_fixed(lam_, n_, k_, c_, delta_=0.05):
    """Option 1: loss in [0, 1], radius 1/lambda fixed in advance."""
    r = tb.linear_gated_bound(1.0 / (lam_ * c_), 1, 1, k_, n_)
    return float(tb.generalisation_slack(r, n_, delta_))


def slack_union(l0, lam_, n_, k_, c_, delta_=0.05):
    """Option 2: the smallest radius 2^j >= l0/lambda, paying ln(2/delta_j)."""
    j_ = max(0, int(np.ceil(np.log2(l0 / lam_))))
    d_j = 6 * delta_ / (np.pi**2 * (j_ + 1) ** 2)
    r = tb.linear_gated_bound(2.0**j_ / c_, 1, 1, k_, n_)
    return float(tb.generalisation_slack(r, n_, d_j))


for l0 in (1.0, 0.3, 0.05):
    print(f"L(0) = {l0:4.2f}, lambda = 0.1, n = 10^4, k = 16, c_min = 0.5: slack with radius 1/lambda "
          f"{slack_fixed(0.1, 10**4, 16, 0.5):.3f}; union over radii {slack_union(l0, 0.1, 10**4, 16, 0.5):.3f}")

# %% [markdown]
# The union bound costs a radius up to twice too large and a larger $\ln(2/\delta_j)$, so it loses when
# $\hat L(0)$ is near its worst case and wins when it is far below it. On the weighted lasso of the experiments (squared loss,
# labels $\pm1$, so $\ell_0 = 1/2$ for every sample) the radius reached stays below $\ell_0/\lambda$:

# %%
import theory.experiments as tx

path = tx.penalised_path({"n": 64, "k": 16, "B": 1.0, "d": 4, "p": 4, "lambdas": [1.0, 0.1, 0.01, 0.001],
                          "prox_steps": 500}, seed=0)
for row in path:
    print(f"lambda={row['x']:7.3f}: sum c|alpha| = {row['estimate']:.4f} <= ell0/lambda = {row['bound']:9.3f}"
          f"   (objective - ell0 = {row['objective_vs_zero']:+.4f}, nonzero gates {row['nonzero']})")
    assert row["estimate"] <= row["bound"] and row["objective_vs_zero"] <= 1e-12

# %% [markdown]
# How tight is $\hat L(0)/\lambda$? With a hinge loss and one candidate of margin 1 on every point,
# $\hat L(\alpha) = \max(0, 1 - \alpha)$, the minimiser for $\lambda < 1$ is $\alpha = 1$: radius 1 against the
# bound $1/\lambda$, a ratio of $\lambda$ (`theory.tightness.penalised_rows`, found numerically):

# %%
import theory.tightness as tt

for row in tt.penalised_rows({"lambdas": [0.5, 0.9, 0.99], "n": 1}):
    print(f"lambda={row['x']:.2f}: radius {row['estimate']:.6f}, bound {row['bound']:.4f}, ratio {row['ratio']:.4f}")

# %%
# The final closed forms (read back by tests/theory/test_theory_notebooks.py).
for name, expr in FINAL.items():
    print(f"FINAL {name}: {sp.srepr(expr)}")
