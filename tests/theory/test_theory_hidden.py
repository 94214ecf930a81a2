"""One hidden layer of gated units: the exact planar supremum, lower estimates, and the bounds."""

import numpy as np
import pytest

from theory import bounds as tb
from theory import checks
from theory import empirical as te
from theory import experiments as tx
from theory.gates import Box, L1Ball

CFG = {"A": 1.0, "V": 1.0, "U": 1.0, "B": 1.0, "n": 24, "d": 2, "activation": "relu",
       "ms": [1, 4, 16, 64, 256], "Ts": [1, 2, 4, 8], "draws": 100, "restarts": 6, "steps": 50,
       "joint_ms": [1, 8], "joint_draws": 16, "joint_steps": 150, "enumerate_n": 9}
SEEDS = [0, 1]


@pytest.fixture(scope="module")
def table():
    return tx.hidden_table(CFG, SEEDS)


def _grid_sup(x, sigma, rho, U, points=200001):
    angles = np.linspace(0, 2 * np.pi, points)
    grid = U * np.stack([np.cos(angles), np.sin(angles)], 1)
    return np.abs(sigma @ rho.fn(x @ grid.T) / x.shape[0]).max(axis=1)


@pytest.mark.parametrize("slopes", [(1.0, 0.0), (1.0, 1.0), (1.0, -1.0), (1.0, 0.3), (0.5, -1.0)])
def test_planar_supremum_is_exact(slopes):
    """Never below a fine grid of angles, above it by no more than the grid's resolution; certified."""
    rng = np.random.default_rng(0)
    x = te.sphere_points(10, 2, 1.0, rng) * rng.uniform(0.3, 1.0, size=(10, 1))
    sigma = te.sign_vectors(100, 10, rng)
    rho = te.piecewise_linear(*slopes)
    res = te.planar_unit_sup(x, sigma, 1.5, slopes)
    grid = _grid_sup(x, sigma, rho, 1.5)
    assert np.all(res.value >= grid - 1e-12) and np.all(res.value <= grid + 1e-5)
    assert np.all(np.linalg.norm(res.u, axis=1) <= 1.5 * (1 + 1e-12))
    np.testing.assert_array_equal(res.value, res.recompute(x, sigma, rho))


def test_planar_supremum_with_ties_and_a_point_at_the_origin():
    x = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0], [1.0, 0.0], [0.0, 0.0]])
    sigma = te.all_sign_vectors(6)
    res = te.planar_unit_sup(x, sigma, 1.0)
    np.testing.assert_allclose(res.value, _grid_sup(x, sigma, te.ACTIVATIONS["relu"], 1.0), atol=1e-9)


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
    for t in te.unit_types(6, 1.0) + te.planar_types(8):  # every unit type is 1-Lipschitz with rho(0) = 0
        z = np.linspace(-3, 3, 1001)
        assert t.fn(np.zeros(1))[0] == 0 and np.all(np.abs(np.diff(t.fn(z))) <= np.diff(z) + 1e-12)


def test_gradient_ascent_stays_below_the_exact_supremum():
    rng = np.random.default_rng(2)
    x = te.sphere_points(16, 2, 1.0, rng)
    sigma = te.sign_vectors(40, 16, rng)
    exact = te.planar_unit_sup(x, sigma, 1.0).value
    pga = te.hidden_unit_sup(x, sigma, te.ACTIVATIONS["relu"], 1.0, rng, restarts=8, steps=100).value
    assert np.all(pga <= exact + 1e-12) and np.mean(exact - pga) < 1e-3


def test_every_row_is_under_its_bound_with_honest_labels(table):
    assert set(table["experiment"]) == {"hidden", "hidden_types"}
    assert set(table["method"]) == {"reduction", "joint"}
    assert checks.violations(table).empty, checks.violations(table)
    red = table[table["method"] == "reduction"]
    assert (red["sup"] == "exact").all()  # d = 2: the planar algorithm
    assert (table.loc[table["method"] == "joint", "sup"] == "lower").all()
    enum = table[table["signs"] == "all"]
    assert (enum["draws"] == 2 ** CFG["enumerate_n"]).all() and (enum["se"] == 0).all()
    assert (enum["check"] == "exact").all() and (table.loc[table["signs"] == "monte_carlo", "se"] > 0).all()


def test_whole_network_never_beats_the_one_unit_supremum(table):
    """The width-free claim, tested without the reduction: l1-gated networks of any width optimised
    jointly stay below the exact one-unit value (and come near it); box-gated ones grow with m."""
    joint = table[table["method"] == "joint"].set_index(["gate", "x"])
    assert (joint["excess_over_reference"] <= 1e-9).all()
    for m in CFG["joint_ms"]:
        assert joint.loc[("l1", m), "estimate"] >= 0.6 * joint.loc[("l1", m), "reference"]
    wide = max(CFG["joint_ms"])
    assert joint.loc[("box", wide), "estimate"] > 3 * joint.loc[("l1", wide), "reference"]


def test_whole_network_at_several_widths_never_beats_one_unit():
    rng = np.random.default_rng(2)
    relu = te.ACTIVATIONS["relu"]
    x = te.sphere_points(10, 2, 1.0, rng)
    sigma = te.sign_vectors(16, 10, rng)
    one_unit = te.planar_unit_sup(x, sigma, 1.0).value
    for m in (1, 5, 20):
        joint = te.hidden_joint_sup(x, sigma, relu, 1.0, 1.0, L1Ball(1.0), m, rng, steps=60)
        assert np.all(joint <= one_unit + 1e-9)
        box = te.hidden_joint_sup(x, sigma, relu, 1.0, 1.0, Box(), m, rng, steps=60)
        assert np.all(box <= m * one_unit + 1e-9)
    assert box.mean() > 5 * one_unit.mean()  # m = 20 box-gated units: far beyond one unit


def test_types_estimate_grows_with_T_but_stays_under_the_bound(table):
    types = table[(table["experiment"] == "hidden_types") & (table["signs"] == "monte_carlo")]
    for _, part in types.groupby("seed"):
        est = part.sort_values("x")["estimate"].to_numpy()
        assert np.all(np.diff(est) >= -1e-12)  # nested types: a max over more of them
        assert est[-1] > est[0]  # and the other types do add something
    assert (types["estimate"] - 3 * types["se"] <= types["bound"]).all()


def test_box_class_exceeds_the_width_free_bound(table):
    """The reduction's box rows beyond m = 16 exceed the l1 bound: comparing the classes has teeth."""
    box = table[(table["gate"] == "box") & (table["method"] == "reduction") & (table["x"] >= 16)
                & (table["signs"] == "monte_carlo")]
    assert (box["estimate"] - 3 * box["se"] > tb.hidden_gated_bound(1, 1, 1, 1, CFG["n"])).all()
