"""The linear gated class: exact supremum, Monte-Carlo and enumeration against the bounds."""

import numpy as np
import pytest

from theory import bounds as tb
from theory import checks
from theory import empirical as te
from theory import experiments as tx
from theory.gates import Box, L1Ball

CFG = {"A": 1.0, "W": 1.0, "B": 1.0, "n": 32, "d": 4, "bandwidth": 1.0, "feature_dims": [1, 8],
       "ks": [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024], "draws": 500,
       "shared": {"n": 7, "p": 2, "ks": [1, 2, 4, 8], "restarts": 3}}
SEEDS = [0, 1, 2]


@pytest.fixture(scope="module")
def monte_carlo():
    return tx.linear_table(CFG, SEEDS)


@pytest.mark.parametrize("gates", [L1Ball(1.5), Box(0.0, 1.0)], ids=["l1", "box"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_closed_form_equals_brute_force_supremum(gates, seed):
    rng = np.random.default_rng(seed)
    x = te.sphere_points(6, 3, 1.0, rng)
    phi = te.random_feature_maps(x, 3, 2, 1.0, rng)
    for sigma in te.sign_vectors(3, 6, rng):
        closed = te.linear_sup(phi, sigma[None], 0.8, gates)[0]
        numeric = te.linear_sup_numerical(phi, sigma, 0.8, gates, restarts=8, rng=rng)
        assert numeric <= closed + 1e-8
        assert numeric == pytest.approx(closed, abs=1e-5)


def test_closed_form_is_attained_by_an_explicit_model():
    rng = np.random.default_rng(3)
    x = te.sphere_points(10, 3, 1.0, rng)
    phi = te.random_feature_maps(x, 5, 4, 2.0, rng)
    A, W = 1.7, 0.6
    for sigma in te.sign_vectors(5, 10, rng):
        S = np.einsum("n,knp->kp", sigma, phi)
        j = int(np.argmax(np.linalg.norm(S, axis=1)))
        alpha = np.zeros(5)
        alpha[j] = A
        w = np.zeros((5, 4))
        w[j] = W * S[j] / np.linalg.norm(S[j])
        f = np.einsum("k,knp,kp->n", alpha, phi, w)  # the model, evaluated on the sample
        assert np.mean(sigma * f) == pytest.approx(te.linear_sup(phi, sigma[None], W, L1Ball(A))[0], rel=1e-12)


def test_monte_carlo_minus_three_se_is_under_every_bound(monte_carlo):
    mc = monte_carlo[(monte_carlo["signs"] == "monte_carlo") & (monte_carlo["method"] == "exact")]
    assert len(mc) == len(SEEDS) * len(CFG["feature_dims"]) * len(CFG["ks"]) * 2
    assert (mc["se"] > 0).all() and (mc["check"] == "monte_carlo").all()
    assert checks.violations(monte_carlo).empty, checks.violations(monte_carlo)


def test_exact_enumeration_is_under_the_bound():
    for n, p, kmax in ((16, 1, 256), (12, 8, 64)):
        cfg = {**CFG, "n": n, "ks": [k for k in CFG["ks"] if k <= kmax]}
        rows = tx.linear_rows(cfg, seed=0, n=n, draws="all", p=p)
        assert all(r["signs"] == "all" and r["check"] == "exact" and r["draws"] == 2**n for r in rows)
        for r in rows:
            assert r["estimate"] <= r["bound"], r


def test_the_check_has_teeth_the_k_free_bound_fails_for_k_candidates(monte_carlo):
    mc = monte_carlo[(monte_carlo["signs"] == "monte_carlo") & (monte_carlo["gate"] == "l1")
                     & (monte_carlo["p"] == 1) & (monte_carlo["x"] == 1024)]
    wrong = tb.linear_shared_bound(CFG["A"], CFG["W"], CFG["B"], CFG["n"])
    assert (mc["estimate"] - 3 * mc["se"] > wrong).all()


def test_shared_map_class_does_not_grow_with_k_by_brute_force(monte_carlo):
    """k copies of one map, all (alpha, w) optimised by SLSQP: never above the exact k = 1 supremum, and
    reaching it (so the brute force is strong enough to have found any excess)."""
    shared = monte_carlo[monte_carlo["gate"] == "shared"]
    assert sorted(shared["x"]) == CFG["shared"]["ks"] and (shared["method"] == "brute_force").all()
    assert (shared["signs"] == "all").all() and (shared["draws"] == 2 ** CFG["shared"]["n"]).all()
    assert (shared["excess_over_reference"] <= 1e-8).all()
    np.testing.assert_allclose(shared["estimate"], shared["reference"], rtol=1e-5)


def test_brute_force_finds_the_excess_of_distinct_maps():
    """The same brute force on k distinct maps does exceed the one-map value: the check has teeth."""
    rng = np.random.default_rng(5)
    x = te.sphere_points(8, 3, 1.0, rng)
    phi = te.random_feature_maps(x, 4, 2, 1.0, rng)
    sigma = te.sign_vectors(4, 8, rng)
    one = te.linear_sup(phi[:1], sigma, 1.0, L1Ball(1.0))
    brute = np.array([te.linear_sup_numerical(phi, s, 1.0, L1Ball(1.0), 4, rng) for s in sigma])
    assert np.mean(brute) > np.mean(one) + 0.02


def test_box_contrast_grows_linearly_in_k(monte_carlo):
    n, W, B = CFG["n"], CFG["W"], CFG["B"]
    box = monte_carlo[(monte_carlo["gate"] == "box") & (monte_carlo["signs"] == "monte_carlo")]
    for _, part in box.groupby(["seed", "p"]):
        k, est, se = part["x"].to_numpy(float), part["estimate"].to_numpy(), part["se"].to_numpy()
        # Khintchine-Kahane below, Jensen above: k W B / sqrt(2n) <= R_S(box) <= k W B / sqrt(n)
        assert np.all(est + 3 * se >= k * W * B / np.sqrt(2 * n))
        assert np.all(est - 3 * se <= k * W * B / np.sqrt(n))
        slope, intercept = np.polyfit(k, est, 1)
        resid = est - (slope * k + intercept)
        assert np.abs(resid).max() < 0.02 * est.max()
        assert np.log(est[-1] / est[0]) / np.log(k[-1] / k[0]) == pytest.approx(1.0, abs=0.05)
