"""One hidden layer of gated units: certified lower estimates against the bounds."""

import numpy as np
import pytest

from theory import bounds as tb
from theory import empirical as te
from theory import experiments as tx
from theory.gates import Box, L1Ball

CFG = {"A": 1.0, "V": 1.0, "U": 1.0, "B": 1.0, "n": 24, "d": 3, "activation": "relu",
       "ms": [1, 4, 16, 64, 256], "Ts": [1, 2, 4, 8], "draws": 100, "restarts": 6, "steps": 50,
       "joint_ms": [1, 8], "joint_draws": 16, "joint_steps": 50, "enumerate_n": 9}
SEEDS = [0, 1]


@pytest.fixture(scope="module")
def table():
    return tx.hidden_table(CFG, SEEDS)


def test_identity_units_reach_the_exact_supremum():
    rng = np.random.default_rng(0)
    x = te.sphere_points(20, 4, 1.0, rng)
    sigma = te.sign_vectors(50, 20, rng)
    got = te.hidden_unit_sup(x, sigma, te.ACTIVATIONS["identity"], 2.0, rng).value
    np.testing.assert_allclose(got, 2.0 * np.linalg.norm(sigma @ x, axis=1) / 20, rtol=1e-6)


@pytest.mark.parametrize("name", ["relu", "tanh", "abs", "sin"])
def test_lower_estimate_is_certified_by_a_feasible_unit(name):
    rng = np.random.default_rng(1)
    rho = te.ACTIVATIONS[name]
    x = te.sphere_points(16, 3, 1.5, rng)
    sigma = te.sign_vectors(30, 16, rng)
    res = te.hidden_unit_sup(x, sigma, rho, 0.7, rng, restarts=4, steps=30)
    assert np.all(np.linalg.norm(res.u, axis=1) <= 0.7 * (1 + 1e-12))
    np.testing.assert_array_equal(res.value, res.recompute(x, sigma, rho))
    for t in te.unit_types(6, 1.0):  # every unit type is 1-Lipschitz with rho(0) = 0
        z = np.linspace(-3, 3, 1001)
        assert t.fn(np.zeros(1))[0] == 0 and np.all(np.abs(np.diff(t.fn(z))) <= np.diff(z) + 1e-12)


def test_every_estimate_minus_three_se_is_under_its_bound(table):
    assert set(table["experiment"]) == {"hidden", "hidden_types"}
    assert set(table["method"]) == {"reduction", "joint", "enumeration"}
    bad = table[table["estimate"] - 3 * table["se"] > table["bound"]]
    assert bad.empty, bad
    enum = table[table["method"] == "enumeration"]
    assert (enum["draws"] == 2 ** CFG["enumerate_n"]).all() and (enum["estimate"] <= enum["bound"]).all()


def test_l1_class_is_width_free_and_box_class_grows_linearly(table):
    red = table[(table["experiment"] == "hidden") & (table["method"] == "reduction")]
    for _, part in red.groupby("seed"):
        l1 = part[part["gate"] == "l1"].sort_values("x")
        box = part[part["gate"] == "box"].sort_values("x")
        assert l1["estimate"].nunique() == 1
        np.testing.assert_allclose(box["estimate"].to_numpy() / box["x"].to_numpy(), l1["estimate"].iloc[0])
        # and the box class really exceeds the width-free bound (the comparison has teeth)
        wide = box[box["x"] >= 16]
        assert (wide["estimate"] - 3 * wide["se"] > tb.hidden_gated_bound(1, 1, 1, 1, CFG["n"])).all()


def test_whole_network_never_beats_the_one_unit_supremum():
    """In d = 2 the one-unit supremum is found on a fine grid; optimising m units does not exceed it."""
    rng = np.random.default_rng(2)
    relu = te.ACTIVATIONS["relu"]
    x = te.sphere_points(10, 2, 1.0, rng)
    sigma = te.sign_vectors(16, 10, rng)
    angles = np.linspace(0, 2 * np.pi, 40001)
    grid = np.stack([np.cos(angles), np.sin(angles)], 1)
    one_unit = np.abs(sigma @ relu.fn(x @ grid.T) / 10).max(axis=1)
    for m in (1, 5, 20):
        joint = te.hidden_joint_sup(x, sigma, relu, 1.0, 1.0, L1Ball(1.0), m, rng, steps=60)
        assert np.all(joint <= one_unit + 1e-3)
        box = te.hidden_joint_sup(x, sigma, relu, 1.0, 1.0, Box(), m, rng, steps=60)
        assert np.all(box <= m * one_unit + 1e-3)
    assert box.mean() > 5 * one_unit.mean()  # m = 20 box-gated units: far beyond one unit


def test_types_estimate_grows_with_T_but_stays_under_the_bound(table):
    types = table[(table["experiment"] == "hidden_types") & (table["method"] == "reduction")]
    for _, part in types.groupby("seed"):
        est = part.sort_values("x")["estimate"].to_numpy()
        assert np.all(np.diff(est) >= -1e-12)  # nested types: a max over more of them
