"""The Rademacher-complexity bounds of the DARC theory (a reconstruction), symbolic and numeric.

Each bound exists once, as a sympy expression (``*_expr()``); the numeric functions evaluate that
expression (lambdified, numpy-broadcasting), so the notebooks, the tests and the workflow all use
one formula. The derivations are in ``notebooks/01``-``04``. Notation (all positive):

- ``n`` sample size, ``B`` bound on ``||phi_j(x)||_2`` (linear) or ``||x||_2`` (hidden layer);
- ``A`` l1 radius of the gates, ``W`` bound on ``||w_j||_2``, ``V`` on ``|v_j|``, ``U`` on ``||u_j||_2``;
- ``k`` candidates, ``m`` hidden units, ``T`` unit types;
- ``A'`` (``A_prime``) the radius of the cost-weighted constraint ``sum_j c_j |alpha_j| <= A'``,
  ``c_min`` the smallest cost, ``lam`` the penalty weight, ``ell0`` a bound on the training loss at
  ``alpha = 0`` that holds for every sample (1 for a loss in [0, 1]): the radius of a
  data-independent class may not be read off the sample;
- ``L`` the Lipschitz constant of the loss in ``f``, ``delta`` the failure probability,
  ``R_emp`` the empirical risk and ``R_S`` an empirical Rademacher complexity.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache

import numpy as np
import sympy as sp
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp

A, W, B, U, V, n, k, m, T, q = sp.symbols("A W B U V n k m T q", positive=True)
A_prime, c_min, lam, ell0, L, delta, R_S, R_emp = sp.symbols(
    "A_prime c_min lambda ell0 L delta R_S R_emp", positive=True
)
#: Python-friendly names of the symbols (``lam`` prints as lambda), the keywords of :func:`evaluate`.
SYMBOLS: dict[str, sp.Symbol] = {
    "A": A, "W": W, "B": B, "U": U, "V": V, "n": n, "k": k, "m": m, "T": T, "A_prime": A_prime,
    "c_min": c_min, "lam": lam, "ell0": ell0, "L": L, "delta": delta, "R_S": R_S, "R_emp": R_emp, "q": q,
}


# --------------------------------------------------------------------------------------------------
# A. Linear gated models: x -> sum_j alpha_j <w_j, phi_j(x)>.
def linear_gated_bound_expr() -> sp.Expr:
    """k candidate feature maps, ||alpha||_1 <= A: A W B (1 + sqrt(2 ln k)) / sqrt(n)."""
    return A * W * B * (1 + sp.sqrt(2 * sp.log(k))) / sp.sqrt(n)


def linear_shared_bound_expr() -> sp.Expr:
    """One feature map shared by all k candidates: A W B / sqrt(n), free of k."""
    return A * W * B / sp.sqrt(n)


def linear_box_bound_expr() -> sp.Expr:
    """Contrast class, gates in the box [0, 1]^k: k W B / sqrt(n) (linear in k)."""
    return k * W * B / sp.sqrt(n)


# --------------------------------------------------------------------------------------------------
# B. One hidden layer of gated units: x -> sum_j alpha_j v_j rho(<u_j, x>).
def hidden_gated_bound_expr() -> sp.Expr:
    """||alpha||_1 <= A, rho 1-Lipschitz with rho(0) = 0: 2 A V U B / sqrt(n), free of the width m."""
    return 2 * A * V * U * B / sp.sqrt(n)


def hidden_box_bound_expr() -> sp.Expr:
    """Contrast class, gates in [0, 1]^m: 2 m V U B / sqrt(n) (the exact value is m times the A=1 one)."""
    return 2 * m * V * U * B / sp.sqrt(n)


def hidden_types_bound_expr() -> sp.Expr:
    """Each unit mixes T unit types rho_t: A V U B (2 + sqrt(2 ln T)) / sqrt(n)."""
    return A * V * U * B * (2 + sp.sqrt(2 * sp.log(T))) / sp.sqrt(n)


# --------------------------------------------------------------------------------------------------
# Cost-weighted constraint and the penalised form.
def weighted_radius_expr() -> sp.Expr:
    """sum_j c_j |alpha_j| <= A' implies ||alpha||_1 <= A' / c_min (only when c_min > 0)."""
    return A_prime / c_min


def weighted_linear_bound_expr() -> sp.Expr:
    """The linear gated bound under the weighted constraint: A replaced by A' / c_min."""
    return linear_gated_bound_expr().subs(A, weighted_radius_expr())


def penalised_radius_expr() -> sp.Expr:
    """A minimiser of loss + lam * sum c|alpha| has sum c|alpha| <= ell0 / lam.

    ``ell0`` must bound the training loss at alpha = 0 for every sample (1 for a loss in [0, 1]), so
    that the class ``sum c|alpha| <= ell0 / lam`` is fixed before the sample is drawn.
    """
    return ell0 / lam


def penalised_linear_bound_expr() -> sp.Expr:
    """The linear gated bound for the penalised form: A = ell0 / (lam * c_min)."""
    return weighted_linear_bound_expr().subs(A_prime, penalised_radius_expr())


# --------------------------------------------------------------------------------------------------
# Generalisation.
def generalisation_slack_expr() -> sp.Expr:
    """Loss in [0, 1], L-Lipschitz in f: 2 L R_S + 3 sqrt(ln(2/delta) / (2 n))."""
    return 2 * L * R_S + 3 * sp.sqrt(sp.log(2 / delta) / (2 * n))


def generalisation_bound_expr() -> sp.Expr:
    """With probability >= 1 - delta, for every f: risk <= R_emp + 2 L R_S + 3 sqrt(ln(2/delta)/(2n))."""
    return R_emp + generalisation_slack_expr()


def linear_generalisation_slack_expr() -> sp.Expr:
    """The generalisation slack of the l1-gated linear class (R_S replaced by its bound)."""
    return generalisation_slack_expr().subs(R_S, linear_gated_bound_expr())


def hidden_generalisation_slack_expr() -> sp.Expr:
    """The generalisation slack of the l1-gated one-hidden-layer class."""
    return generalisation_slack_expr().subs(R_S, hidden_gated_bound_expr())


# --------------------------------------------------------------------------------------------------
# Known bounds for the same l1-gated linear class (notebook 01, Step 8), to set ours beside.
def massart_l1_bound_expr() -> sp.Expr:
    """Scalar features (p = 1): the class is the l1 ball of radius A W over k functions, the convex hull
    of 2k vectors of norm <= B sqrt(n) on the sample: Massart's finite-class lemma (and Kakade,
    Sridharan & Tewari 2008 for the l1 ball) gives A W B sqrt(2 ln(2k) / n)."""
    return A * W * B * sp.sqrt(2 * sp.log(2 * k) / n)


def group_norm_bound_expr() -> sp.Expr:
    """Any p: the class is the group-norm ball sum_j ||beta_j||_2 <= A W. Strong convexity of
    (1/2)||.||_{2,q}^2 ((q-1)-strongly convex w.r.t. ||.||_{2,q}; Kakade, Shalev-Shwartz & Tewari 2012)
    with the dual bound ||x||_{2,q*} <= k^(1 - 1/q) B gives, for each q in (1, 2],
    A W B k^(1 - 1/q) / sqrt((q - 1) n); :func:`group_norm_bound` takes the best q."""
    return A * W * B * k ** (1 - 1 / q) / sp.sqrt((q - 1) * n)


EXPRESSIONS: dict[str, Callable[[], sp.Expr]] = {
    "linear_gated": linear_gated_bound_expr,
    "linear_shared": linear_shared_bound_expr,
    "linear_box": linear_box_bound_expr,
    "hidden_gated": hidden_gated_bound_expr,
    "hidden_box": hidden_box_bound_expr,
    "hidden_types": hidden_types_bound_expr,
    "weighted_radius": weighted_radius_expr,
    "weighted_linear": weighted_linear_bound_expr,
    "penalised_radius": penalised_radius_expr,
    "penalised_linear": penalised_linear_bound_expr,
    "generalisation_slack": generalisation_slack_expr,
    "generalisation": generalisation_bound_expr,
    "linear_generalisation_slack": linear_generalisation_slack_expr,
    "hidden_generalisation_slack": hidden_generalisation_slack_expr,
    "massart_l1": massart_l1_bound_expr,
    "group_norm": group_norm_bound_expr,
}


def check_derivation(derived: sp.Expr, name: str, record: dict[str, sp.Expr] | None = None) -> sp.Expr:
    """Assert that an expression derived step by step (in a notebook) equals the library's
    ``EXPRESSIONS[name]``; keep it in ``record`` under ``name`` and return it simplified."""
    library = EXPRESSIONS[name]()
    assert sp.simplify(derived - library) == 0, (derived, library)
    if record is not None:
        record[name] = derived
    return sp.simplify(derived)


@cache
def _compiled(name: str) -> tuple[tuple[str, ...], Callable[..., np.ndarray]]:
    expr = EXPRESSIONS[name]()
    args = tuple(sorted(name for name, sym in SYMBOLS.items() if sym in expr.free_symbols))
    return args, sp.lambdify([SYMBOLS[a] for a in args], expr, modules="numpy")


def evaluate(name: str, **values: float | np.ndarray) -> np.ndarray | float:
    """Evaluate the named expression of :data:`EXPRESSIONS` (extra keyword values are ignored)."""
    args, fn = _compiled(name)
    missing = [a for a in args if a not in values]
    if missing:
        raise TypeError(f"{name} needs {missing}")
    with np.errstate(divide="ignore"):
        return fn(*(np.asarray(values[a], dtype=float) for a in args))


def linear_gated_bound(A: float, W: float, B: float, k: int, n: int):
    """R_S bound for k candidate feature maps and ||alpha||_1 <= A."""
    return evaluate("linear_gated", A=A, W=W, B=B, k=k, n=n)


def linear_shared_bound(A: float, W: float, B: float, n: int, k: int | None = None):
    """R_S bound for one shared feature map; ``k`` is accepted and ignored (the bound is free of k)."""
    del k
    return evaluate("linear_shared", A=A, W=W, B=B, n=n)


def linear_box_bound(W: float, B: float, k: int, n: int):
    """R_S bound for the box-gated contrast class alpha in [0, 1]^k."""
    return evaluate("linear_box", W=W, B=B, k=k, n=n)


def hidden_gated_bound(A: float, V: float, U: float, B: float, n: int, m: int | None = None):
    """R_S bound for one hidden layer of l1-gated units; ``m`` is accepted and ignored (width-free)."""
    del m
    return evaluate("hidden_gated", A=A, V=V, U=U, B=B, n=n)


def hidden_box_bound(V: float, U: float, B: float, m: int, n: int):
    """R_S bound for one hidden layer of m box-gated units."""
    return evaluate("hidden_box", V=V, U=U, B=B, m=m, n=n)


def hidden_types_bound(A: float, V: float, U: float, B: float, T: int, n: int):
    """R_S bound for l1-gated units that mix T unit types."""
    return evaluate("hidden_types", A=A, V=V, U=U, B=B, T=T, n=n)


def weighted_radius(A_prime: float, costs: Sequence[float]) -> float:
    """The l1 radius implied by ``sum_j c_j |alpha_j| <= A_prime``: A'/min c, infinite if a cost is 0."""
    c = np.asarray(costs, dtype=float)
    if np.any(c < 0):
        raise ValueError("costs must be non-negative")
    return float("inf") if c.min() == 0 else float(A_prime / c.min())


def weighted_linear_bound(A_prime: float, costs: Sequence[float], W: float, B: float, n: int) -> float:
    """The linear gated bound under the weighted constraint, A = A'/c_min (infinite with a zero cost)."""
    a = weighted_radius(A_prime, costs)
    return float("inf") if np.isinf(a) else float(linear_gated_bound(a, W, B, len(costs), n))


def weighted_linear_bound_refined(
    A_prime: float, costs: Sequence[float], W: float, B: float, n: int, zero_cost_cap: float | None = None
) -> float:
    """A sharper weighted bound: each candidate counts with its own cost (notebook 03).

    R_S <= A' W B / sqrt(n) * inf_{t > 0} (1/t) ln sum_j exp(t / c_j + t^2 / (2 c_j^2)),
    which equals :func:`weighted_linear_bound` when all costs are equal and is never larger.
    Zero-cost candidates make the class unbounded; with ``zero_cost_cap`` they are instead
    box-constrained, ``|alpha_j| <= zero_cost_cap``, and add ``zero_cost_cap * W * B / sqrt(n)`` each.
    """
    c = np.asarray(costs, dtype=float)
    if np.any(c < 0):
        raise ValueError("costs must be non-negative")
    free = c == 0
    if free.any() and zero_cost_cap is None:
        return float("inf")
    extra = (zero_cost_cap or 0.0) * int(free.sum()) * W * B / np.sqrt(n)
    paid = c[~free]
    if paid.size == 0:
        return float(extra)

    def objective(log_t: float) -> float:
        t = np.exp(log_t)
        return float(logsumexp(t / paid + t**2 / (2 * paid**2)) / t)

    if paid.size == 1:  # the infimum is the limit t -> 0: 1/c
        value = 1.0 / paid[0]
    else:
        scale = np.log(paid.min())
        value = minimize_scalar(objective, bounds=(scale - 30.0, scale + 6.0), method="bounded",
                                options={"xatol": 1e-12}).fun
    return float(A_prime * W * B / np.sqrt(n) * value + extra)


def penalised_radius(lam: float, ell0: float = 1.0) -> float:
    """The weighted radius A' reached by any minimiser of the penalised objective: ell0 / lam."""
    return float(evaluate("penalised_radius", lam=lam, ell0=ell0))


def generalisation_slack(R_S: float, n: int, delta: float, L: float = 1.0):
    """2 L R_S + 3 sqrt(ln(2/delta) / (2n)): what the risk may exceed the empirical risk by."""
    return evaluate("generalisation_slack", R_S=R_S, n=n, delta=delta, L=L)


def generalisation_bound(R_emp: float, R_S: float, n: int, delta: float, L: float = 1.0):
    """risk <= R_emp + 2 L R_S + 3 sqrt(ln(2/delta)/(2n)), with probability >= 1 - delta."""
    return evaluate("generalisation", R_emp=R_emp, R_S=R_S, n=n, delta=delta, L=L)


def massart_l1_bound(A: float, W: float, B: float, k: int, n: int):
    """Known bound for scalar features (p = 1): A W B sqrt(2 ln(2k) / n)."""
    return evaluate("massart_l1", A=A, W=W, B=B, k=k, n=n)


def group_norm_q(k: float | np.ndarray) -> np.ndarray:
    """The q in (1, 2] that minimises k^(1-1/q) / sqrt(q-1): with t = q - 1 the stationary point solves
    (1 + t)^2 = 2 t ln k, i.e. t = ln k - 1 - sqrt((ln k - 1)^2 - 1) when ln k >= 2; below that the
    function decreases on (0, 1] and q = 2."""
    lk = np.log(np.asarray(k, dtype=float))
    with np.errstate(invalid="ignore"):
        t = np.where(lk >= 2, lk - 1 - np.sqrt(np.maximum((lk - 1) ** 2 - 1, 0.0)), 1.0)
    return 1.0 + t


def group_norm_bound(A: float, W: float, B: float, k: int, n: int):
    """Known bound for any feature dimension: the group-norm (strong convexity) bound at its best q."""
    return evaluate("group_norm", A=A, W=W, B=B, k=k, n=n, q=group_norm_q(k))
