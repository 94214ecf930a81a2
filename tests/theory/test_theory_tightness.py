"""The certified constructions: how close each comes to its bound, and the known bounds beside ours."""

import numpy as np
import pandas as pd
import pytest
from test_theory_mutation import CFG  # the same small configuration (tests/theory is on sys.path)

from theory import bounds as tb
from theory import checks
from theory import empirical as te
from theory import tightness as tt
from theory.gates import Box, L1Ball


@pytest.fixture(scope="module")
def table():
    return tt.table(CFG)


def _ratio(table, name, construction, x=None):
    rows = table[(table["bound_name"] == name) & (table["construction"] == construction)]
    if x is not None:
        rows = rows[rows["x"] == x]
    return rows["ratio"].to_numpy()


def test_one_hot_features_reach_the_linear_bounds_exactly(table):
    for name in ("linear_gated", "linear_shared", "linear_box", "weighted_linear", "weighted_linear_refined"):
        np.testing.assert_allclose(_ratio(table, name, "one_hot"), 1.0, rtol=1e-12)


def test_all_sign_patterns_attain_AWB_for_every_sign_vector():
    n = 9
    sigma = te.all_sign_vectors(n)
    values = tt.linear_attained(tt.all_pattern_features(n, 0.7), sigma, 1.3, "l1", 2.0)
    np.testing.assert_allclose(values, 2.0 * 1.3 * 0.7)  # the pattern equal to +-sigma is a candidate


def test_weighted_bounds_hold_for_many_unequal_costs():
    """511 patterns at cost 0.1 and one at cost 1 (n = 10): the certified value (10 A' W B for all but two
    sign vectors) lies under both weighted bounds, and the refined bound sees every cost."""
    rows = pd.DataFrame(tt.weighted_pattern_rows(CFG))
    assert set(rows["bound_name"]) == {"weighted_linear", "weighted_linear_refined"}
    assert (rows["x"] == 2 ** (CFG["n"] - 1)).all()
    assert checks.violations(rows).empty, rows[["bound_name", "estimate", "bound"]]
    value = rows["estimate"].iloc[0]
    assert value > 0.99 * CFG["A"] * CFG["W"] * CFG["B"] / CFG["cost"]  # nearly every sign vector: A'/cost
    refined = rows.set_index("bound_name").loc["weighted_linear_refined", "bound"]
    assert refined < 1.5 * value  # close enough that any shrink of the refined bound by 1.5x is caught


def test_sampled_patterns_exceed_a_sqrt_ln_k_width_term():
    """All 2^(n-1) sign patterns at n up to 256 attain A W B on every sign vector: under the bound, and
    above what a width term sqrt(ln k) instead of sqrt(2 ln k) would give from n = 32 on."""
    rows = pd.DataFrame(tt.sampled_pattern_rows(CFG))
    assert (rows["check"] == "monte_carlo").all() and (rows["draws"] == CFG["patterns"]["draws"]).all()
    assert checks.violations(rows).empty, rows[["n", "estimate", "se", "bound"]]
    A, W, B = CFG["A"], CFG["W"], CFG["B"]
    np.testing.assert_allclose(rows["estimate"], A * W * B, rtol=1e-12)  # the pattern +-sigma is a candidate
    large = rows[rows["n"] >= 64]
    narrower = A * W * B * (1 + np.sqrt(np.log(large["x"]))) / np.sqrt(large["n"])
    assert (large["estimate"] - 3 * large["se"] > narrower).all()


def test_certified_values_are_attained_not_computed():
    """The attained value is below the closed-form supremum and equals it at the dual-norm optimum."""
    rng = np.random.default_rng(0)
    x = te.sphere_points(7, 3, 1.0, rng)
    phi = te.random_feature_maps(x, 5, 3, 1.0, rng)
    sigma = te.all_sign_vectors(7)
    for gate, gates in (("l1", L1Ball(1.5)), ("box", Box())):
        attained = tt.linear_attained(phi, sigma, 0.8, gate, 1.5)
        np.testing.assert_allclose(attained, te.linear_sup(phi, sigma, 0.8, gates))


def test_hidden_constructions_reach_half_and_no_more(table):
    ortho = table[table["construction"] == "identity_orthonormal"]
    np.testing.assert_allclose(_ratio(table, "hidden_gated", "identity_orthonormal"), 0.5, rtol=1e-12)
    np.testing.assert_allclose(_ratio(table, "hidden_box", "identity_orthonormal"), 0.5, rtol=1e-12)
    hidden = table[table["bound_name"].isin(["hidden_gated", "hidden_box", "hidden_types"])]
    assert (hidden["ratio"] <= 0.5 + 1e-12).all()
    # on orthonormal points no 1-Lipschitz unit beats the identity (checked here for ReLU and |.| by PGA)
    rng = np.random.default_rng(1)
    sigma = te.all_sign_vectors(8)
    x = te.orthonormal_points(8, 1.0)
    ident = tt.identity_orthonormal_unit(8, 1.0, 1.0, sigma).value
    for name in ("relu", "abs", "tanh"):
        got = te.hidden_unit_sup(x, sigma, te.ACTIVATIONS[name], 1.0, rng, restarts=4, steps=40).value
        assert np.all(got <= ident + 1e-12)
    assert len(ortho) == 1 + len(CFG["box_ms"]) + len(CFG["Ts"])


def test_the_penalised_radius_ratio_is_lambda(table):
    rows = table[table["bound_name"] == "penalised_radius"]
    np.testing.assert_allclose(rows["ratio"], rows["x"], atol=1e-6)


def test_generalisation_rs_term_is_nearly_attained(table):
    row = table[table["bound_name"] == "generalisation"].iloc[0]
    assert row["violations"] == 0
    assert row["estimate"] > 0.95 * row["rs_term"]  # the worst-case gap against 2 L R_S: factor 2 is tight
    assert 1.0 < row["shrink_caught"] < 1.5


def test_expected_abs_rademacher_sum():
    for c in range(1, 9):
        signs = te.all_sign_vectors(c)
        assert tt.expected_abs_rademacher_sum(c) == pytest.approx(np.abs(signs.sum(1)).mean(), abs=1e-15)


def test_known_bounds_where_ours_is_tighter_or_looser(table):
    known = table[table["experiment"] == "known_bounds"].pivot(index="x", columns="bound_name", values="bound")
    assert known.loc[1, "linear_gated"] < known.loc[1, "massart_l1"]  # k = 1: ours
    assert known.loc[16, "massart_l1"] < known.loc[16, "linear_gated"]  # k >= 2: Massart (scalar features)
    assert known.loc[16, "linear_gated"] < known.loc[16, "group_norm"]  # k >= 16: ours beats the group norm
    assert tb.group_norm_bound(1, 1, 1, 8, 1) < tb.linear_gated_bound(1, 1, 1, 8, 1)  # k <= 8: group norm
    for k in (2, 3, 7, 8, 9, 50, 10**4):  # the closed-form q is the optimum over (1, 2]
        qs = np.linspace(1 + 1e-6, 2, 200001)
        brute = np.min(k ** (1 - 1 / qs) / np.sqrt(qs - 1))
        assert float(tb.group_norm_bound(1, 1, 1, k, 1)) == pytest.approx(brute, rel=1e-6)
