"""The generalisation experiment: l1-gated versus box-gated models, trained the same way.

Synthetic binary classification with a known teacher and flipped labels (so a model that fits its
training set must fit noise). Two families, each grown in its own width:

- ``linear``: ``f(x) = sum_j alpha_j <w_j, phi_j(x)>`` over ``k`` random-Fourier candidate feature
  maps (candidate 0 is the teacher's), ``||w_j|| <= W``;
- ``hidden``: ``f(x) = sum_j alpha_j v_j relu(<u_j, x>)`` with ``m`` units, ``|v_j| <= V``,
  ``||u_j|| <= U``; the teacher is a two-unit ReLU network.

The tasks are **nested**: the training sample, the test sample, the flipped labels, the teacher,
candidate j's feature map and unit j's initial weights each come from their own seeded generator, so
growing the width only adds candidates (or units) and never changes the task, and growing the
training sample only adds points (the test sample stays the same).

Both gate sets are trained identically (same data, same initial weights, full-batch Adam on the
logistic loss, projection onto the constraints after every step, until the training objective stops
improving: :func:`train`); only the gate set differs: ``||alpha||_1 <= A`` or ``alpha in [0, 1]^width``.
Along the widths each model is warm-started from the trained model of the next smaller width (its
gates and weights, the new candidates' gates at 0: a point of the larger class with the same
function), and the best iterate is kept, so the training objective never rises with the width: a
larger class is never compared underfitted. The gap is test minus training ramp loss
``clip(1 - y f(x), 0, 1)`` (in [0, 1], 1-Lipschitz in f: the loss of the generalisation bound), and
also of the 0-1 error. :func:`gap_n_sweep` grows the training sample at a fixed width instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch

from theory import bounds, fits
from theory.empirical import random_feature_maps, sphere_points
from theory.gates import Box, L1Ball


@dataclass(frozen=True)
class GapSetting:
    """Everything but the width, gate and seed. Defaults: the ``default`` scale of the workflow."""

    n_train: int = 200
    n_test: int = 2000
    d: int = 5
    p: int = 8  # features per candidate map (linear family)
    bandwidth: float = 1.0
    noise: float = 0.2  # label-flip probability
    A: float = 1.0
    W: float = 4.0
    V: float = 4.0
    U: float = 4.0
    B: float = 1.0
    steps: int = 3000  # at most this many steps per model
    lr: float = 0.05
    init_gate: float = 0.01
    delta: float = 0.05
    tol: float = 1e-4  # converged: the best objective improved by less than tol (relative) in `patience` steps
    patience: int = 100
    warm_start: bool = True  # along the widths, from the trained model of the next smaller width


def gate_set(gate: str, setting: GapSetting) -> L1Ball | Box:
    return {"l1": L1Ball(setting.A), "box": Box(0.0, 1.0)}[gate]


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed, 7, *key])


def _task(family: str, width: int, seed: int, s: GapSetting):
    """Data (features or inputs), labels and the initial weights, all fixed by ``seed`` and nested in
    the width: candidate (unit) j's map and initial weights do not depend on how many there are."""
    x = np.concatenate([sphere_points(s.n_train, s.d, s.B, _rng(seed, 0)),  # nested in n_train
                        sphere_points(s.n_test, s.d, s.B, _rng(seed, 4))])
    flip = np.concatenate([_rng(seed, 0, 1).uniform(size=s.n_train), _rng(seed, 4, 1).uniform(size=s.n_test)]) < s.noise
    teacher_rng = _rng(seed, 2)
    if family == "linear":
        phi = np.concatenate([random_feature_maps(x, 1, s.p, s.B, _rng(seed, 1, j), s.bandwidth)
                              for j in range(width)])  # (k, n, p)
        clean = np.sign(phi[0] @ teacher_rng.standard_normal(s.p))
        data = torch.as_tensor(phi)
        w = np.stack([_rng(seed, 3, j).standard_normal(s.p) for j in range(width)]) / np.sqrt(s.p)
        weights = {"w": torch.as_tensor(w)}
    elif family == "hidden":
        teacher = teacher_rng.standard_normal((2, s.d)) * 2.0
        clean = np.sign(np.maximum(x @ teacher[0], 0) - np.maximum(x @ teacher[1], 0))
        data = torch.as_tensor(x)
        init = [_rng(seed, 3, j) for j in range(width)]
        weights = {"u": torch.as_tensor(np.stack([g.standard_normal(s.d) for g in init]) / np.sqrt(s.d)),
                   "v": torch.as_tensor(np.array([g.uniform(-1.0, 1.0) for g in init]) * s.V)}
    else:
        raise ValueError(f"unknown family {family!r}: 'linear' or 'hidden'")
    clean[clean == 0] = 1.0
    y = torch.as_tensor(np.where(flip, -clean, clean))
    return data, y, weights


def _forward(family: str, data: torch.Tensor, alpha: torch.Tensor, weights: dict, idx: slice):
    if family == "linear":
        return torch.einsum("k,knp,kp->n", alpha, data[:, idx], weights["w"])
    return torch.relu(data[idx] @ weights["u"].T) @ (alpha * weights["v"])


def _project_weights(family: str, weights: dict, s: GapSetting) -> None:
    with torch.no_grad():
        if family == "linear":
            w = weights["w"]
            w.mul_(torch.clamp(s.W / w.norm(dim=1, keepdim=True), max=1.0))
        else:
            u = weights["u"]
            u.mul_(torch.clamp(s.U / u.norm(dim=1, keepdim=True), max=1.0))
            weights["v"].clamp_(-s.V, s.V)


def ramp_loss(margin: np.ndarray) -> np.ndarray:
    """The ramp loss ``clip(1 - margin, 0, 1)``: 1 where the margin ``y f(x)`` is at most 0, 0 from margin 1,
    in [0, 1] and 1-Lipschitz in f (the loss of the generalisation bound, L = 1)."""
    return np.clip(1.0 - np.asarray(margin, dtype=float), 0.0, 1.0)


@dataclass
class Model:
    """A gated model's parameters: the gates and the family's weights (``w``, or ``u`` and ``v``)."""

    alpha: torch.Tensor
    weights: dict[str, torch.Tensor]

    def detached(self) -> Model:
        return Model(self.alpha.detach().clone(), {k: t.detach().clone() for k, t in self.weights.items()})


@dataclass(frozen=True)
class Fit:
    """How training ended: steps taken, whether the objective had converged, its value at the kept model."""

    steps: int
    converged: bool
    objective: float


def train(family: str, data: torch.Tensor, y: torch.Tensor, model: Model, gates: L1Ball | Box,
          s: GapSetting) -> tuple[Model, Fit]:
    """Projected full-batch Adam on the mean logistic loss over the training points, from ``model``.

    Stops after ``s.steps`` steps or once the best objective improved by less than ``s.tol`` (relative)
    over ``s.patience`` steps; returns the best iterate seen (the starting point included), so the
    objective is never above the starting one.
    """
    train_idx = slice(0, s.n_train)
    current = model.detached()
    params = [current.alpha.requires_grad_(), *(t.requires_grad_() for t in current.weights.values())]
    opt = torch.optim.Adam(params, lr=s.lr)
    best, best_loss, checkpoint = current.detached(), float("inf"), float("inf")
    steps, converged = 0, False
    while True:
        loss = torch.nn.functional.softplus(-y[train_idx] * _forward(family, data, current.alpha, current.weights,
                                                                     train_idx)).mean()
        if loss.item() < best_loss:
            best, best_loss = current.detached(), loss.item()
        if steps and steps % s.patience == 0:
            converged = checkpoint - best_loss < s.tol * checkpoint
            checkpoint = best_loss
        if converged or steps == s.steps:
            return best, Fit(steps, converged, best_loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            current.alpha.copy_(gates.project(current.alpha))
        _project_weights(family, current.weights, s)
        steps += 1


def _measure(family: str, data: torch.Tensor, y: torch.Tensor, model: Model, s: GapSetting) -> dict:
    """Training and test ramp losses and 0-1 errors of a trained model."""
    with torch.no_grad():
        margin = (y * _forward(family, data, model.alpha, model.weights, slice(None))).numpy()
    ramp, err = ramp_loss(margin), (margin <= 0).astype(float)
    tr, te = slice(0, s.n_train), slice(s.n_train, None)
    return {"train_loss": ramp[tr].mean(), "test_loss": ramp[te].mean(),
            "test_loss_se": ramp[te].std(ddof=1) / np.sqrt(s.n_test),
            "train_err": err[tr].mean(), "test_err": err[te].mean()}


def _grow(start: Model, model: Model) -> Model:
    """``model``'s initial weights with ``start`` (a trained smaller model) in its first candidates, and the
    new candidates' gates at 0: the same function as ``start``, in the larger class."""
    width = start.alpha.shape[0]
    alpha = torch.zeros_like(model.alpha)
    alpha[:width] = start.alpha
    weights = {key: torch.cat([start.weights[key], t[width:]]) for key, t in model.weights.items()}
    return Model(alpha, weights)


def _fit(family: str, width: int, gate: str, seed: int, s: GapSetting,
         start: Model | None = None) -> tuple[dict, Model]:
    """Train one gated model (from its initial weights, or warm-started from ``start``) and measure it."""
    gates = gate_set(gate, s)
    data, y, weights = _task(family, width, seed, s)
    model = Model(gates.project(torch.full((width,), s.init_gate, dtype=torch.float64)), weights)
    _project_weights(family, model.weights, s)
    if start is not None:
        model = _grow(start, model)
    model, fit = train(family, data, y, model, gates, s)
    row = {
        "experiment": "gap", "family": family, "gate": gate, "x_name": "k" if family == "linear" else "m",
        "x": width, "seed": seed, "n": s.n_train, **_measure(family, data, y, model, s),
        "alpha_l1": float(model.alpha.abs().sum()), "train_objective": fit.objective, "steps_run": fit.steps,
        "converged": fit.converged, "warm_start": start is not None,
    }
    row["estimate"] = row["test_loss"] - row["train_loss"]
    row["gap_01"] = row["test_err"] - row["train_err"]
    row["bound"] = gap_bound(family, width, gate, s)
    row["vacuous"] = bool(row["bound"] >= 1.0)  # the ramp-loss gap is at most 1
    return row, model


def gap_run(family: str, width: int, gate: str, seed: int, setting: GapSetting | None = None) -> dict:
    """Train one gated model from its initial weights and measure its training and test losses."""
    return _fit(family, width, gate, seed, setting or GapSetting())[0]


def gap_path(family: str, widths: Sequence[int], gate: str, seed: int, setting: GapSetting | None = None) -> list[dict]:
    """One row per width (increasing); with ``warm_start`` each model starts from the previous width's."""
    s = setting or GapSetting()
    rows, model = [], None
    for width in sorted(int(w) for w in widths):
        row, trained = _fit(family, width, gate, seed, s, model if s.warm_start else None)
        rows.append(row)
        model = trained
    return rows


def gap_bound(family: str, width: int, gate: str, s: GapSetting) -> float:
    """The bound on the ramp-loss gap (L = 1) that holds with probability >= 1 - delta."""
    A = gate_set(gate, s).l1_radius(width)
    if family == "linear":
        r = bounds.linear_gated_bound(A, s.W, s.B, width, s.n_train)
    else:
        r = bounds.hidden_gated_bound(A, s.V, s.U, s.B, s.n_train)
    if gate == "box":  # the box is also inside the l1 ball of radius k, but its own bound is smaller
        r = np.minimum(r, bounds.linear_box_bound(s.W, s.B, width, s.n_train) if family == "linear"
                       else bounds.hidden_box_bound(s.V, s.U, s.B, width, s.n_train))
    return float(bounds.generalisation_slack(r, s.n_train, s.delta, 1.0))


def gap_experiment(
    family: str, widths: Sequence[int], seeds: Iterable[int], setting: GapSetting | None = None,
    gates: Sequence[str] = ("l1", "box"),
) -> pd.DataFrame:
    """One row per (width, gate, seed): :func:`gap_path` per gate and seed."""
    s = setting or GapSetting()
    rows = [row for seed in seeds for g in gates for row in gap_path(family, widths, g, seed, s)]
    return pd.DataFrame(rows)


def gap_n_sweep(family: str, ns: Sequence[int], width: int, seeds: Iterable[int], setting: GapSetting | None = None,
                gates: Sequence[str] = ("l1", "box")) -> pd.DataFrame:
    """The gap against the training-sample size at a fixed width (nested samples, the same test set),
    each model trained from its initial weights; plus the log-log slope of the mean gap over seeds per
    gate (the bound's: -1/2; NaN when a mean gap is not positive)."""
    s = setting or GapSetting()
    rows = [{**gap_run(family, width, g, seed, replace(s, n_train=int(n))), "experiment": "gap_n", "x_name": "n",
             "x": int(n), "width": width}
            for seed in seeds for n in ns for g in gates]
    df = pd.DataFrame(rows)
    slopes = []
    for gate, part in df.groupby("gate"):
        mean = part.groupby("x")["estimate"].mean()
        fit = (fits.loglog_slope(mean.index.to_numpy(float), mean.to_numpy()) if (mean > 0).all()
               else {"slope": float("nan"), "slope_se": float("nan"), "r2": float("nan")})
        bound = part.groupby("x")["bound"].mean()
        slopes.append({"experiment": "gap_n_slope", "family": family, "gate": gate, "x_name": "log_n",
                       "quantity": "loglog_slope", "width": width, "estimate": fit["slope"], "se": fit["slope_se"],
                       "r2": fit["r2"], "predicted_slope": -0.5,
                       "bound_slope": fits.loglog_slope(bound.index.to_numpy(float), bound.to_numpy())["slope"],
                       "n_min": int(mean.index.min()), "n_max": int(mean.index.max())})
    return pd.concat([df, pd.DataFrame(slopes)], ignore_index=True)


#: The growth of the gap bound's complexity term in the width, per family and gate (theory.fits.SHAPES).
PREDICTED_SHAPE = {("linear", "l1"): "sqrt_log", ("linear", "box"): "linear",
                   ("hidden", "l1"): "sqrt_log", ("hidden", "box"): "linear"}


def bound_coefficient(family: str, gate: str, shape: str, s: GapSetting) -> float:
    """The coefficient of ``shape`` in the gap bound's complexity term ``2 L R_S`` (L = 1).

    linear/l1: ``2 A W B sqrt(2) / sqrt(n)`` per ``sqrt(ln k)``; linear/box: ``2 W B / sqrt(n)`` per k;
    hidden/l1: 0 (width-free); hidden/box: ``4 V U B / sqrt(n)`` per m. NaN for another shape.
    """
    if shape != PREDICTED_SHAPE[(family, gate)]:
        return float("nan")
    root = np.sqrt(s.n_train)
    return float({("linear", "l1"): 2 * s.A * s.W * s.B * np.sqrt(2) / root,
                  ("linear", "box"): 2 * s.W * s.B / root,
                  ("hidden", "l1"): 0.0,
                  ("hidden", "box"): 4 * s.V * s.U * s.B / root}[(family, gate)])


def gap_fits(df: pd.DataFrame, setting: GapSetting | None = None, column: str = "estimate") -> pd.DataFrame:
    """Per family, gate and seed, the gap fitted as ``a + b g(width)`` for both shapes (sqrt(ln w), w).

    ``estimate`` is b, ``se`` its standard error, ``r2`` the fit; ``bound_coefficient`` is the bound's
    own b for the predicted shape (:data:`PREDICTED_SHAPE`), NaN for the other.
    """
    s = setting or GapSetting()
    rows = []
    for (family, gate, seed), part in df.groupby(["family", "gate", "seed"]):
        for shape in ("sqrt_log", "linear"):
            fit = fits.growth_fit(part["x"].to_numpy(float), part[column].to_numpy(float), shape)
            rows.append({"experiment": "gap_fit", "family": family, "gate": gate, "seed": seed,
                         "x_name": "width", "quantity": f"{shape}_{column}", "shape": shape,
                         "predicted": shape == PREDICTED_SHAPE[(family, gate)],
                         "estimate": fit["slope"], "se": fit["slope_se"], "intercept": fit["intercept"],
                         "r2": fit["r2"], "bound_coefficient": bound_coefficient(family, gate, shape, s)})
    return pd.DataFrame(rows)


def nonvacuous_run(setting: GapSetting, width: int, seed: int, family: str = "linear") -> dict:
    """One l1-gated model trained on a large sample: the bound on its risk is below 1 (non-vacuous)."""
    row = gap_run(family, width, "l1", seed, setting)
    row.update(experiment="nonvacuous", risk_bound=row["train_loss"] + row["bound"], delta=setting.delta)
    return row


def setting_from(config: dict) -> GapSetting:
    """A :class:`GapSetting` from a config mapping (unknown keys are an error, missing ones default)."""
    return replace(GapSetting(), **config)
