"""Empirical Rademacher complexities of the gated classes, on synthetic data.

R_S(F) = E_sigma sup_{f in F} (1/n) sum_i sigma_i f(x_i). For a given sign matrix ``sigma``
(rows = draws) the functions here return one supremum per row, so that the mean over random rows is
a Monte-Carlo estimate (:func:`mean_se` adds its standard error) and the mean over
:func:`all_sign_vectors` is the exact value.

- linear gated class: the supremum is exact, ``W * gates.abs_support(||sum_i sigma_i phi_j(x_i)||_2 / n)``
  (dual norms); :func:`linear_sup_numerical` checks it against a generic optimiser;
- one hidden layer of gated units: the supremum is ``gates.abs_support`` of the one-unit supremum
  ``V sup_{||u|| <= U} |(1/n) sum_i sigma_i rho(<u, x_i>)|``; that non-concave maximisation is done by
  projected gradient ascent with restarts, so the result is a certified LOWER estimate (every value
  is attained at a returned feasible ``u``); :func:`hidden_joint_sup` optimises a whole m-unit
  network instead, another lower estimate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from theory.gates import Box, GateSet, L1Ball

# --------------------------------------------------------------------------------------------------
# Sign vectors and Monte-Carlo summaries.


def sign_vectors(draws: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``draws`` independent Rademacher vectors of length ``n`` (float, +-1)."""
    return rng.choice(np.array([-1.0, 1.0]), size=(draws, n))


def all_sign_vectors(n: int) -> np.ndarray:
    """All ``2**n`` sign vectors of length ``n`` (rows), for exact expectations."""
    if n > 20:
        raise ValueError("2**n sign vectors: n <= 20 please")
    bits = (np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1
    return (2.0 * bits - 1.0)


def mean_se(values: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error of the mean along ``axis``."""
    values = np.asarray(values, dtype=float)
    count = values.shape[axis]
    se = values.std(axis=axis, ddof=1) / np.sqrt(count) if count > 1 else np.zeros_like(values.mean(axis))
    return values.mean(axis=axis), se


# --------------------------------------------------------------------------------------------------
# Synthetic data.


def sphere_points(n: int, d: int, radius: float, rng: np.random.Generator) -> np.ndarray:
    """``n`` points drawn uniformly on the sphere of the given radius in R^d (so ||x|| = B exactly)."""
    x = rng.standard_normal((n, d))
    return radius * x / np.linalg.norm(x, axis=1, keepdims=True)


def random_feature_maps(
    x: np.ndarray, k: int, p: int, B: float, rng: np.random.Generator, bandwidth: float = 1.0
) -> np.ndarray:
    """``k`` candidate feature maps, each ``p`` random Fourier features rescaled to norm exactly ``B``.

    phi_j(x) = B r_j(x) / ||r_j(x)|| with r_j(x) = cos(G_j x + b_j); shape ``(k, n, p)``. With
    ``p = 1`` every feature is +-B, the case where the bound is nearly tight.
    """
    d = x.shape[1]
    G = rng.standard_normal((k, p, d)) * bandwidth
    b = rng.uniform(0.0, 2.0 * np.pi, size=(k, p))
    r = np.cos(np.einsum("nd,kpd->knp", x, G) + b[:, None, :])
    return B * r / np.linalg.norm(r, axis=-1, keepdims=True)


# --------------------------------------------------------------------------------------------------
# Linear gated class: exact supremum.


def candidate_norms(phi: np.ndarray, sigma: np.ndarray, chunk: int = 1 << 22) -> np.ndarray:
    """``||(1/n) sum_i sigma_i phi_j(x_i)||_2`` for every row of ``sigma`` and candidate j: ``(draws, k)``."""
    k, n, p = phi.shape
    out = np.empty((sigma.shape[0], k))
    step = max(1, chunk // max(1, sigma.shape[0] * p))
    for j0 in range(0, k, step):
        block = phi[j0:j0 + step]
        s = np.einsum("dn,knp->dkp", sigma, block, optimize=True)
        out[:, j0:j0 + step] = np.linalg.norm(s, axis=-1) / n
    return out


def linear_sup(phi: np.ndarray, sigma: np.ndarray, W: float, gates: GateSet) -> np.ndarray:
    """Exact ``sup_{alpha in gates, ||w_j|| <= W} (1/n) sum_i sigma_i sum_j alpha_j <w_j, phi_j(x_i)>``.

    For fixed alpha the best ``w_j`` is ``W sign(alpha_j) S_j / ||S_j||`` (Cauchy-Schwarz, the dual of
    the l2 norm), leaving ``sup_alpha sum_j |alpha_j| W ||S_j|| / n``: the gate set's support function.
    """
    return W * gates.abs_support(candidate_norms(phi, sigma))


def linear_sup_numerical(
    phi: np.ndarray, sigma_row: np.ndarray, W: float, gates: L1Ball | Box,
    restarts: int, rng: np.random.Generator,
) -> float:
    """The same supremum by brute force: SLSQP over (alpha, w) from random feasible starts.

    Knows nothing of dual norms: constraints ``||w_j||^2 <= W^2`` and, for the l1 ball, alpha split
    into positive and negative parts with ``sum <= A``; the best local maximum is returned.
    """
    k, n, p = phi.shape
    s = np.einsum("n,knp->kp", sigma_row, phi) / n
    l1 = isinstance(gates, L1Ball)
    na = 2 * k if l1 else k

    def alpha(z):
        return z[:k] - z[k:2 * k] if l1 else z[:k]

    def objective(z):
        w = z[na:].reshape(k, p)
        return -float(np.sum(alpha(z) * np.sum(w * s, axis=1)))

    def gradient(z):
        w = z[na:].reshape(k, p)
        ws = np.sum(w * s, axis=1)
        ga = np.concatenate([ws, -ws]) if l1 else ws
        gw = alpha(z)[:, None] * s
        return -np.concatenate([ga, gw.ravel()])

    cons = [{"type": "ineq", "fun": lambda z: W**2 - np.sum(z[na:].reshape(k, p) ** 2, axis=1),
             "jac": lambda z: np.hstack([np.zeros((k, na)), _block_diag_rows(-2 * z[na:].reshape(k, p))])}]
    if l1:
        cons.append({"type": "ineq", "fun": lambda z: gates.radius - np.sum(z[:na]),
                     "jac": lambda z: np.concatenate([-np.ones(na), np.zeros(k * p)])})
        bounds = [(0.0, None)] * na + [(None, None)] * (k * p)
    else:
        bounds = [(gates.lo, gates.hi)] * na + [(None, None)] * (k * p)
    best = -np.inf
    for _ in range(restarts):
        if l1:
            a0 = rng.dirichlet(np.ones(na)) * gates.radius * rng.uniform()
        else:
            a0 = rng.uniform(gates.lo, gates.hi, size=k)
        w0 = rng.standard_normal((k, p))
        w0 *= W * rng.uniform(size=(k, 1)) / np.linalg.norm(w0, axis=1, keepdims=True)
        res = minimize(objective, np.concatenate([a0, w0.ravel()]), jac=gradient, bounds=bounds,
                       constraints=cons, method="SLSQP", options={"maxiter": 500, "ftol": 1e-14})
        z = res.x
        feasible = (np.all(np.sum(z[na:].reshape(k, p) ** 2, axis=1) <= W**2 * (1 + 1e-9))
                    and (not l1 or (np.all(z[:na] >= -1e-12) and np.sum(z[:na]) <= gates.radius * (1 + 1e-9))))
        if feasible:
            best = max(best, -objective(z))
    return best


def _block_diag_rows(rows: np.ndarray) -> np.ndarray:
    """A (k, k*p) matrix whose row j holds ``rows[j]`` in block j (the Jacobian of the norm constraints)."""
    k, p = rows.shape
    out = np.zeros((k, k * p))
    for j in range(k):
        out[j, j * p:(j + 1) * p] = rows[j]
    return out


# --------------------------------------------------------------------------------------------------
# Hidden layer: unit types and the certified lower estimate.


@dataclass(frozen=True)
class Activation:
    """A 1-Lipschitz ``rho`` with ``rho(0) = 0`` and its derivative (numpy, elementwise)."""

    name: str
    fn: Callable[[np.ndarray], np.ndarray]
    grad: Callable[[np.ndarray], np.ndarray]
    homogeneous: bool = False  # rho(t z) = t rho(z) for t >= 0: the supremum sits on the sphere
    slopes: tuple[float, float] | None = None  # (a, b) when rho(z) = a max(z, 0) + b min(z, 0)


ACTIVATIONS: dict[str, Activation] = {}


def register_activation(act: Activation) -> Activation:
    ACTIVATIONS[act.name] = act
    return act


register_activation(Activation("relu", lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(z.dtype), True,
                               (1.0, 0.0)))
register_activation(Activation("identity", lambda z: z, np.ones_like, True, (1.0, 1.0)))
register_activation(Activation("abs", np.abs, np.sign, True, (1.0, -1.0)))
register_activation(Activation("tanh", np.tanh, lambda z: 1.0 - np.tanh(z) ** 2))
register_activation(Activation("sin", np.sin, np.cos))


def shifted_relu(shift: float, sign: float = 1.0) -> Activation:
    """``rho(z) = relu(sign z - shift) - relu(-shift)``: 1-Lipschitz, ``rho(0) = 0``."""
    offset = max(-shift, 0.0)
    return Activation(
        f"relu[{sign:+g}z-{shift:.3g}]",
        lambda z: np.maximum(sign * z - shift, 0.0) - offset,
        lambda z: sign * (sign * z - shift > 0).astype(z.dtype),
        shift == 0.0,
    )


def unit_types(T: int, scale: float) -> list[Activation]:
    """T distinct unit types, each list a prefix of the next: ReLU, then shifted ReLUs.

    Type t >= 1 is ``relu(+-z - b_t) - relu(-b_t)`` with alternating direction and shifts
    ``b_t = scale * (2 frac(t * golden) - 1)`` spread over [-scale, scale].
    """
    golden = (np.sqrt(5.0) - 1.0) / 2.0
    types = [ACTIVATIONS["relu"]]
    for t in range(1, T):
        shift = scale * (2.0 * ((t * golden) % 1.0) - 1.0)
        types.append(shifted_relu(float(shift), 1.0 if t % 2 == 0 else -1.0))
    return types[:T]


@dataclass
class UnitSup:
    """Per sign vector: the certified value ``|(1/n) sum_i sigma_i rho(<u, x_i>)|`` and its ``u``."""

    value: np.ndarray  # (draws,)
    u: np.ndarray  # (draws, d), ||u|| <= U

    def recompute(self, x: np.ndarray, sigma: np.ndarray, rho: Activation) -> np.ndarray:
        """The objective at the returned ``u``: what certifies :attr:`value`."""
        return np.abs(np.mean(sigma * rho.fn(self.u @ x.T), axis=1))


def _project_ball(u: np.ndarray, radius: float, sphere: bool) -> np.ndarray:
    norm = np.linalg.norm(u, axis=-1, keepdims=True)
    factor = radius / np.maximum(norm, 1e-300)
    return u * (factor if sphere else np.minimum(factor, 1.0))


def hidden_unit_sup(
    x: np.ndarray, sigma: np.ndarray, rho: Activation, U: float, rng: np.random.Generator,
    restarts: int = 8, steps: int = 100, lr: float = 0.5,
) -> UnitSup:
    """Lower estimate of ``sup_{||u|| <= U} |(1/n) sum_i sigma_i rho(<u, x_i>)|`` for each row of sigma.

    Projected gradient ascent on ``s * objective`` for both signs ``s``, from ``restarts`` starts each
    (data directions and random directions), normalised steps of ``lr * U`` shrinking as 1/sqrt(t),
    keeping the best feasible iterate. Every value returned is attained at the returned ``u``.
    """
    draws, n = sigma.shape
    d = x.shape[1]
    starts = rng.standard_normal((draws, 2, restarts, d))
    pick = rng.integers(0, n, size=(draws, 2, restarts // 2))
    starts[:, :, : restarts // 2] = x[pick]
    u = _project_ball(starts, U, True)
    signs = np.array([1.0, -1.0])[None, :, None, None]
    s_sigma = sigma[:, None, None, :] * signs  # (draws, 2, 1, n)
    best_val = np.full(draws, -np.inf)
    best_u = np.zeros((draws, d))

    def record(u):
        z = u @ x.T  # (draws, 2, R, n)
        vals = np.mean(s_sigma * rho.fn(z), axis=-1)  # signed objective, (draws, 2, R)
        flat = vals.reshape(draws, -1)
        idx = flat.argmax(axis=1)
        v = flat[np.arange(draws), idx]
        better = v > best_val
        best_val[better] = v[better]
        best_u[better] = u.reshape(draws, -1, d)[np.arange(draws), idx][better]
        return z

    for t in range(steps):
        z = record(u)
        g = (s_sigma * rho.grad(z)) @ x / n
        gn = np.linalg.norm(g, axis=-1, keepdims=True)
        step = lr * U / np.sqrt(t + 1.0)
        u = _project_ball(u + step * g / np.maximum(gn, 1e-300), U, rho.homogeneous)
    record(u)
    result = UnitSup(value=np.zeros(draws), u=best_u)
    result.value = result.recompute(x, sigma, rho)  # certified: recomputed at the feasible u
    return result


def hidden_sup_lower(
    x: np.ndarray, sigma: np.ndarray, rho: Activation, V: float, U: float, gates: GateSet, m: int,
    rng: np.random.Generator, **pga,
) -> np.ndarray:
    """Lower estimate of the gated class supremum: ``gates.abs_support`` of m copies of ``V * unit sup``.

    Exact reduction (the class is the gate set applied to the symmetric one-unit class), so for the
    l1 ball it is ``A V sup_u |...|`` whatever m, and for the box ``m V sup_u |...|``.
    """
    unit = V * hidden_unit_sup(x, sigma, rho, U, rng, **pga).value
    return gates.abs_support(np.repeat(unit[:, None], m, axis=1))


def hidden_types_sup_lower(
    x: np.ndarray, sigma: np.ndarray, types: list[Activation], A: float, V: float, U: float,
    rng: np.random.Generator, **pga,
) -> np.ndarray:
    """Lower estimate for l1-gated units mixing T types: ``A V max_t sup_u |(1/n) sum sigma rho_t|``."""
    per_type = np.stack([hidden_unit_sup(x, sigma, rho, U, rng, **pga).value for rho in types], axis=1)
    return A * V * per_type.max(axis=1)


def hidden_joint_sup(
    x: np.ndarray, sigma: np.ndarray, rho: Activation, V: float, U: float, gates: GateSet, m: int,
    rng: np.random.Generator, steps: int = 150, lr: float = 1.0,
) -> np.ndarray:
    """Lower estimate by optimising the whole m-unit gated network per sign vector (no reduction).

    Projected gradient ascent over (alpha in gates, |v_j| <= V, ||u_j|| <= U) from a random start;
    returns the best objective value seen at a feasible point. A check that the reduction is right:
    for the l1 ball it cannot exceed ``A V sup_u |...|`` and does not grow with m.
    """
    import torch

    draws, n = sigma.shape
    d = x.shape[1]
    xt = torch.as_tensor(x)
    st = torch.as_tensor(sigma)
    gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
    u = torch.randn(draws, m, d, generator=gen, dtype=torch.float64)
    u = U * u / u.norm(dim=-1, keepdim=True)
    v = V * (2 * torch.rand(draws, m, generator=gen, dtype=torch.float64) - 1)
    a = gates.project(torch.full((draws, m), 1.0 / m, dtype=torch.float64))
    best = torch.full((draws,), -float("inf"), dtype=torch.float64)
    params = [a.requires_grad_(), v.requires_grad_(), u.requires_grad_()]
    opt = torch.optim.Adam(params, lr=lr * max(U, V) / 10)
    act = {"relu": torch.relu, "identity": lambda z: z, "abs": torch.abs, "tanh": torch.tanh,
           "sin": torch.sin}[rho.name]
    for _ in range(steps + 1):
        hid = act(u @ xt.T)  # (draws, m, n)
        out = ((a * v).unsqueeze(1) @ hid).squeeze(1)
        obj = (st * out).mean(dim=1)
        best = torch.maximum(best, obj.detach())
        opt.zero_grad()
        (-obj.sum()).backward()
        opt.step()
        with torch.no_grad():
            a.copy_(gates.project(a))
            v.clamp_(-V, V)
            u.mul_(torch.clamp(U / u.norm(dim=-1, keepdim=True), max=1.0))
    return best.numpy()


# --------------------------------------------------------------------------------------------------
# Exact one-unit supremum in the plane (d = 2) for positively homogeneous piecewise-linear units.


def planar_unit_sup(
    x: np.ndarray, sigma: np.ndarray, U: float, slopes: tuple[float, float] = (1.0, 0.0), chunk: int = 1 << 21,
) -> UnitSup:
    """Exact ``sup_{||u|| <= U} |(1/n) sum_i sigma_i rho(<u, x_i>)|`` for points in R^2.

    ``rho(z) = a max(z, 0) + b min(z, 0)`` with ``slopes = (a, b)``, ``|a|, |b| <= 1`` (ReLU ``(1, 0)``,
    identity ``(1, 1)``, absolute value ``(1, -1)``, leaky ReLUs): positively homogeneous, so the
    supremum over the disc is ``max(0, sup over the circle)`` and the circle is enough. With
    ``u = U (cos t, sin t)`` the unit's output on ``x_i`` switches between slope a and slope b where
    ``t = theta_i -+ pi/2``; between two consecutive switches the objective is ``U <e(t), v>`` with a
    fixed ``v = sum_i sigma_i c_i x_i``, whose maximum over the arc is ``||v||`` if the direction of v
    lies in the arc, else the better endpoint. The maximum over the 2n arcs is the global supremum;
    the maximising ``u`` is returned, so the value is also certified by :meth:`UnitSup.recompute`.
    """
    a, b = (float(s) for s in slopes)
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError("planar_unit_sup needs points in R^2")
    draws, n = sigma.shape
    keep = np.linalg.norm(x, axis=1) > 0
    theta = np.arctan2(x[:, 1], x[:, 0])
    idx = np.flatnonzero(keep)
    # events: entering the half-plane <u, x_i> > 0 (coefficient b -> a) and leaving it (a -> b)
    ev_angle = np.concatenate([theta[idx] - np.pi / 2, theta[idx] + np.pi / 2]) % (2 * np.pi)
    ev_point = np.concatenate([idx, idx])
    ev_delta = np.concatenate([np.full(idx.size, a - b), np.full(idx.size, b - a)])
    order = np.argsort(ev_angle, kind="stable")
    ev_angle, ev_point, ev_delta = ev_angle[order], ev_point[order], ev_delta[order]
    E = ev_angle.size
    if E == 0:
        return UnitSup(value=np.zeros(draws), u=np.zeros((draws, 2)))
    gaps = np.diff(np.concatenate([ev_angle, ev_angle[:1] + 2 * np.pi]))
    start = int(np.argmax(gaps))  # the first arc is the widest one, so its midpoint is unambiguous
    roll = (np.arange(E) + start) % E
    ev_angle, ev_point, ev_delta = ev_angle[roll], ev_point[roll], ev_delta[roll]
    lo = ev_angle  # arc j runs from lo[j] to lo[j] + length[j] (to the next event)
    length = (np.roll(ev_angle, -1) - ev_angle) % (2 * np.pi)
    length[0] = gaps[start]
    mid = lo[0] + length[0] / 2
    coef = np.where(np.cos(mid - theta) > 0, a, b) * keep  # (n,) the coefficients on arc 0
    e_lo = np.stack([np.cos(lo), np.sin(lo)], 1)  # (E, 2)
    e_hi = np.stack([np.cos(lo + length), np.sin(lo + length)], 1)
    best = np.full(draws, -np.inf)
    best_t = np.zeros(draws)
    step = max(1, chunk // max(1, 2 * E))
    for d0 in range(0, draws, step):
        s = sigma[d0:d0 + step]
        v0 = (s * coef) @ x  # (D, 2)
        inc = (ev_delta[1:] * s[:, ev_point[1:]])[..., None] * x[ev_point[1:]][None]  # (D, E-1, 2)
        v = np.concatenate([v0[:, None], v0[:, None] + np.cumsum(inc, axis=1)], axis=1)  # (D, E, 2)
        for sign in (1.0, -1.0):
            w = sign * v
            norm = np.linalg.norm(w, axis=-1)
            ang = np.arctan2(w[..., 1], w[..., 0])
            inside = ((ang - lo) % (2 * np.pi)) <= length
            at_lo = np.einsum("dek,ek->de", w, e_lo)
            at_hi = np.einsum("dek,ek->de", w, e_hi)
            val = np.where(inside, norm, np.maximum(at_lo, at_hi))
            t = np.where(inside, ang, np.where(at_lo >= at_hi, lo, lo + length))
            j = val.argmax(axis=1)
            rows = np.arange(val.shape[0])
            cand, cand_t = val[rows, j], t[rows, j]
            sl = slice(d0, d0 + s.shape[0])
            better = cand > best[sl]
            best[sl] = np.where(better, cand, best[sl])
            best_t[sl] = np.where(better, cand_t, best_t[sl])
    u = U * np.stack([np.cos(best_t), np.sin(best_t)], 1)
    u[best <= 0] = 0.0  # sup over the disc: u = 0 gives 0
    rho = piecewise_linear(a, b)
    result = UnitSup(value=np.zeros(draws), u=u)
    result.value = result.recompute(x, sigma, rho)
    return result


def piecewise_linear(a: float, b: float) -> Activation:
    """``rho(z) = a max(z, 0) + b min(z, 0)``: 1-Lipschitz when ``|a|, |b| <= 1``; ``rho(0) = 0``."""
    if max(abs(a), abs(b)) > 1:
        raise ValueError("slopes must lie in [-1, 1] (a 1-Lipschitz unit)")
    return Activation(f"pl[{a:g},{b:g}]", lambda z: a * np.maximum(z, 0.0) + b * np.minimum(z, 0.0),
                      lambda z: np.where(z > 0, a, b).astype(z.dtype), True, (a, b))


def planar_types(T: int) -> list[Activation]:
    """T distinct homogeneous unit types ``max(z, 0) + b_t min(z, 0)``, each list a prefix of the next.

    ``b_t`` runs 0 (ReLU), 1 (identity), -1 (absolute value), then dyadic points of [-1, 1]
    (1/2, -1/2, 1/4, -1/4, 3/4, -3/4, ...). Up to the symmetries of the class (u -> -u swaps the two
    slopes, v -> -v negates both) these are distinct units; all are exact in d = 2
    (:func:`planar_unit_sup`).
    """
    bs = [0.0, 1.0, -1.0]
    depth = 1
    while len(bs) < T:
        for num in range(1, 2**depth, 2):
            for sign in (1.0, -1.0):
                bs.append(sign * num / 2**depth)
        depth += 1
    return [ACTIVATIONS[{0.0: "relu", 1.0: "identity", -1.0: "abs"}[b]] if b in (0.0, 1.0, -1.0)
            else piecewise_linear(1.0, b) for b in bs[:T]]


def unit_sup(
    x: np.ndarray, sigma: np.ndarray, rho: Activation, U: float, rng: np.random.Generator, **pga,
) -> tuple[UnitSup, str]:
    """The one-unit supremum and how it was found: ``exact`` (d = 2, homogeneous piecewise-linear
    unit: :func:`planar_unit_sup`) or ``pga`` (a certified lower estimate: :func:`hidden_unit_sup`)."""
    if x.shape[1] == 2 and rho.slopes is not None:
        return planar_unit_sup(x, sigma, U, rho.slopes), "exact"
    return hidden_unit_sup(x, sigma, rho, U, rng, **pga), "pga"


def orthonormal_points(n: int, radius: float) -> np.ndarray:
    """``radius * e_i`` in R^n: the sample on which Jensen's step is an equality (``||sum sigma_i x_i||``
    is ``radius * sqrt(n)`` for every sign vector)."""
    return radius * np.eye(n)
