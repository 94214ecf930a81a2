"""The generalisation experiment: l1-gated versus box-gated models, trained the same way.

Synthetic binary classification with a known teacher and flipped labels (so a model that fits its
training set must fit noise). Two families, each grown in its own width:

- ``linear``: ``f(x) = sum_j alpha_j <w_j, phi_j(x)>`` over ``k`` random-Fourier candidate feature
  maps (candidate 0 is the teacher's), ``||w_j|| <= W``;
- ``hidden``: ``f(x) = sum_j alpha_j v_j relu(<u_j, x>)`` with ``m`` units, ``|v_j| <= V``,
  ``||u_j|| <= U``; the teacher is a two-unit ReLU network.

The tasks are **nested**: the sample, the flipped labels, the teacher, candidate j's feature map and
unit j's initial weights each come from their own seeded generator, so growing the width only adds
candidates (or units) and never changes the task.

Both gate sets are trained identically (same data, same initial weights, full-batch Adam on the
logistic loss, projection onto the constraints after every step); only the gate set differs:
``||alpha||_1 <= A`` or ``alpha in [0, 1]^width``. The gap is test minus training ramp loss
``clip(1 - y f(x), 0, 1)`` (in [0, 1], 1-Lipschitz in f: the loss of the generalisation bound),
and also of the 0-1 error.
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
    steps: int = 200
    lr: float = 0.05
    init_gate: float = 0.01
    delta: float = 0.05


def gate_set(gate: str, setting: GapSetting) -> L1Ball | Box:
    return {"l1": L1Ball(setting.A), "box": Box(0.0, 1.0)}[gate]


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed, 7, *key])


def _task(family: str, width: int, seed: int, s: GapSetting):
    """Data (features or inputs), labels and the initial weights, all fixed by ``seed`` and nested in
    the width: candidate (unit) j's map and initial weights do not depend on how many there are."""
    n = s.n_train + s.n_test
    data_rng = _rng(seed, 0)
    x = sphere_points(n, s.d, s.B, data_rng)
    flip = data_rng.uniform(size=n) < s.noise
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


def gap_run(family: str, width: int, gate: str, seed: int, setting: GapSetting | None = None) -> dict:
    """Train one gated model and measure its training and test losses."""
    s = setting or GapSetting()
    gates = gate_set(gate, s)
    data, y, weights = _task(family, width, seed, s)
    alpha = gates.project(torch.full((width,), s.init_gate, dtype=torch.float64))
    _project_weights(family, weights, s)
    params = [alpha.requires_grad_(), *(t.requires_grad_() for t in weights.values())]
    opt = torch.optim.Adam(params, lr=s.lr)
    train = slice(0, s.n_train)
    for _ in range(s.steps):
        loss = torch.nn.functional.softplus(-y[train] * _forward(family, data, alpha, weights, train)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            alpha.copy_(gates.project(alpha))
        _project_weights(family, weights, s)
    with torch.no_grad():
        margin = (y * _forward(family, data, alpha, weights, slice(None))).numpy()
    ramp = ramp_loss(margin)
    err = (margin <= 0).astype(float)
    tr, te = slice(0, s.n_train), slice(s.n_train, None)
    row = {
        "experiment": "gap", "family": family, "gate": gate, "x_name": "k" if family == "linear" else "m",
        "x": width, "seed": seed, "n": s.n_train,
        "train_loss": ramp[tr].mean(), "test_loss": ramp[te].mean(),
        "test_loss_se": ramp[te].std(ddof=1) / np.sqrt(s.n_test),
        "train_err": err[tr].mean(), "test_err": err[te].mean(),
        "alpha_l1": float(alpha.detach().abs().sum()),
    }
    row["estimate"] = row["test_loss"] - row["train_loss"]
    row["gap_01"] = row["test_err"] - row["train_err"]
    row["bound"] = gap_bound(family, width, gate, s)
    row["vacuous"] = bool(row["bound"] >= 1.0)  # the ramp-loss gap is at most 1
    return row


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
    """One row per (width, gate, seed)."""
    s = setting or GapSetting()
    rows = [gap_run(family, w, g, seed, s) for seed in seeds for w in widths for g in gates]
    return pd.DataFrame(rows)


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
