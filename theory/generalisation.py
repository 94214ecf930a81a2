"""The generalisation experiment: l1-gated versus box-gated models, trained the same way.

Synthetic binary classification with a known teacher and flipped labels (so a model that fits its
training set must fit noise). Two families, each grown in its own width:

- ``linear``: ``f(x) = sum_j alpha_j <w_j, phi_j(x)>`` over ``k`` random-Fourier candidate feature
  maps (candidate 0 is the teacher's), ``||w_j|| <= W``;
- ``hidden``: ``f(x) = sum_j alpha_j v_j relu(<u_j, x>)`` with ``m`` units, ``|v_j| <= V``,
  ``||u_j|| <= U``; the teacher is a two-unit ReLU network.

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

from theory import bounds
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


def _task(family: str, width: int, seed: int, s: GapSetting):
    """Data (features or inputs), labels and the initial weights, all fixed by ``seed``."""
    rng = np.random.default_rng([seed, 7])
    n = s.n_train + s.n_test
    x = sphere_points(n, s.d, s.B, rng)
    flip = rng.uniform(size=n) < s.noise
    if family == "linear":
        phi = random_feature_maps(x, width, s.p, s.B, rng, s.bandwidth)  # (k, n, p)
        clean = np.sign(phi[0] @ rng.standard_normal(s.p))
        data = torch.as_tensor(phi)
        w = rng.standard_normal((width, s.p)) / np.sqrt(s.p)
        weights = {"w": torch.as_tensor(w)}
    elif family == "hidden":
        teacher = rng.standard_normal((2, s.d)) * 2.0
        clean = np.sign(np.maximum(x @ teacher[0], 0) - np.maximum(x @ teacher[1], 0))
        data = torch.as_tensor(x)
        weights = {"u": torch.as_tensor(rng.standard_normal((width, s.d)) / np.sqrt(s.d)),
                   "v": torch.as_tensor(rng.uniform(-1.0, 1.0, size=width) * s.V)}
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
    ramp = np.clip(1.0 - margin, 0.0, 1.0)
    err = (margin <= 0).astype(float)
    tr, te = slice(0, s.n_train), slice(s.n_train, None)
    row = {
        "experiment": "gap", "family": family, "gate": gate, "x_name": "k" if family == "linear" else "m",
        "x": width, "seed": seed, "n": s.n_train,
        "train_loss": ramp[tr].mean(), "test_loss": ramp[te].mean(),
        "train_err": err[tr].mean(), "test_err": err[te].mean(),
        "alpha_l1": float(alpha.detach().abs().sum()),
    }
    row["estimate"] = row["test_loss"] - row["train_loss"]
    row["gap_01"] = row["test_err"] - row["train_err"]
    row["bound"] = gap_bound(family, width, gate, s)
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


def gap_slopes(df: pd.DataFrame, column: str = "estimate") -> pd.DataFrame:
    """Least-squares slope of the gap against log2(width), per family, gate and seed."""
    rows = []
    for (family, gate, seed), part in df.groupby(["family", "gate", "seed"]):
        slope = np.polyfit(np.log2(part["x"].to_numpy(float)), part[column].to_numpy(float), 1)[0]
        rows.append({"experiment": "gap_slope", "family": family, "gate": gate, "seed": seed,
                     "x_name": "log2_width", "quantity": f"slope_{column}", "estimate": slope})
    return pd.DataFrame(rows)


def setting_from(config: dict) -> GapSetting:
    """A :class:`GapSetting` from a config mapping (unknown keys are an error, missing ones default)."""
    return replace(GapSetting(), **config)
