"""Gate sets (projections, support functions) and the cost-weighted / penalised forms."""

import numpy as np
import pytest
import torch

from theory import bounds as tb
from theory import empirical as te
from theory import experiments as tx
from theory.gates import Box, L1Ball, WeightedL1, project_l1_ball


@pytest.mark.parametrize("weighted", [False, True])
def test_projection_is_the_euclidean_projection(weighted):
    """Variational inequality <a - p, y - p> <= 0 at every vertex y = +-(R/c_j) e_j of the ball (exact)."""
    rng = np.random.default_rng(0)
    k, radius = 7, 1.5
    a = torch.as_tensor(rng.normal(scale=2.0, size=(50, k)))
    c = torch.as_tensor(rng.uniform(0.1, 2.0, size=k)) if weighted else torch.ones(k, dtype=torch.float64)
    p = project_l1_ball(a, radius, c if weighted else None).numpy()
    a, c = a.numpy(), c.numpy()
    assert np.all(np.sum(c * np.abs(p), axis=1) <= radius * (1 + 1e-12))
    outside = np.sum(c * np.abs(a), axis=1) > radius
    np.testing.assert_allclose(np.sum(c * np.abs(p[outside]), axis=1), radius, rtol=1e-12)
    vertices = np.concatenate([np.diag(radius / c), -np.diag(radius / c)])
    for row, proj in zip(a, p):
        assert np.all((vertices - proj) @ (row - proj) <= 1e-9)
    inside = torch.tensor([[0.1, -0.2, 0.3]], dtype=torch.float64)
    assert torch.equal(project_l1_ball(inside, 1.0), inside)


def test_support_functions():
    z = np.array([[0.5, 2.0, 1.0]])
    assert L1Ball(3.0).abs_support(z)[0] == pytest.approx(6.0)
    assert Box(0.0, 1.0).abs_support(z)[0] == pytest.approx(3.5)
    assert Box(-2.0, 1.0).abs_support(z)[0] == pytest.approx(7.0)
    assert WeightedL1(1.0, (0.5, 4.0, 1.0)).abs_support(z)[0] == pytest.approx(1.0)
    assert np.isinf(WeightedL1(1.0, (0.0, 1.0, 1.0)).abs_support(z)[0])
    assert WeightedL1(1.0, (0.0, 1.0, 1.0)).abs_support(np.array([[0.0, 1.0, 1.0]]))[0] == 1.0
    assert WeightedL1(2.0, (0.5, 1.0)).l1_radius(2) == 4.0 and Box().l1_radius(7) == 7


def test_weighted_class_under_its_bounds_and_unbounded_at_zero_cost():
    cfg = {"A_prime": 1.0, "W": 1.0, "B": 1.0, "n": 32, "d": 4, "p": 2, "k": 16, "draws": 400,
           "c_mins": [0.0, 0.003, 0.03, 0.3, 1.0]}
    rows = tx.weighted_rows(cfg, seed=0)
    for r in rows:
        if r["x"] == 0:
            assert np.isinf(r["estimate"]) and np.isinf(r["bound"])
        else:
            assert r["estimate"] - 3 * r["se"] <= r["bound_refined"] <= r["bound"] * (1 + 1e-9)
    finite = [r["estimate"] for r in rows if r["x"] > 0]
    assert finite == sorted(finite, reverse=True)  # cheaper candidate, larger class


def test_penalised_minimiser_lies_in_the_constrained_class():
    cfg = {"n": 48, "k": 12, "B": 1.0, "d": 3, "p": 3, "lambdas": [1.0, 0.3, 0.1, 0.03, 0.01, 0.001],
           "prox_steps": 800}
    rows = tx.penalised_path(cfg, seed=1)
    radii = [r["estimate"] for r in rows]
    for r in rows:
        assert r["objective_vs_zero"] <= 1e-12  # no worse than alpha = 0
        assert r["estimate"] <= r["bound"] == pytest.approx(tb.penalised_radius(r["x"], 0.5))
    assert radii == sorted(radii)  # decreasing lambda: the radius grows
    assert rows[0]["nonzero"] < rows[-1]["nonzero"]


def test_weighted_linear_sup_is_the_dual_norm():
    rng = np.random.default_rng(4)
    x = te.sphere_points(9, 3, 1.0, rng)
    phi = te.random_feature_maps(x, 4, 2, 1.0, rng)
    sigma = te.sign_vectors(3, 9, rng)
    costs = (0.5, 1.0, 2.0, 0.25)
    norms = te.candidate_norms(phi, sigma)
    np.testing.assert_allclose(te.linear_sup(phi, sigma, 1.3, WeightedL1(0.7, costs)),
                               1.3 * 0.7 * (norms / np.array(costs)).max(axis=1))
