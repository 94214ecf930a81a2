"""The closed forms of theory.bounds: values, symbolic/numeric agreement, dependence on k and m."""

import math

import numpy as np
import pytest
import sympy as sp

from theory import bounds as tb


def test_hand_computed_values():
    assert tb.linear_gated_bound(2, 3, 0.5, math.e, 100) == pytest.approx(0.3 * (1 + math.sqrt(2)))
    assert tb.linear_gated_bound(1, 1, 1, 1, 64) == pytest.approx(0.125)
    assert tb.linear_shared_bound(2, 3, 0.5, 100) == pytest.approx(0.3)
    assert tb.linear_box_bound(3, 0.5, 8, 100) == pytest.approx(1.2)
    assert tb.hidden_gated_bound(1, 2, 3, 0.5, 36) == pytest.approx(1.0)
    assert tb.hidden_box_bound(2, 3, 0.5, 5, 36) == pytest.approx(5.0)
    assert tb.hidden_types_bound(1, 1, 1, 1, math.e**2, 4) == pytest.approx(2.0)
    assert tb.generalisation_slack(0.1, 50, 0.1, L=2) == pytest.approx(0.4 + 3 * math.sqrt(math.log(20) / 100))
    slack = 0.4 + 3 * math.sqrt(math.log(20) / 100)
    assert tb.generalisation_bound(0.2, 0.1, 50, 0.1, L=2) == pytest.approx(0.2 + slack)
    assert tb.penalised_radius(0.1, 0.5) == pytest.approx(5.0)


@pytest.mark.parametrize("name", sorted(tb.EXPRESSIONS))
def test_numeric_equals_symbolic(name):
    rng = np.random.default_rng(0)
    expr = tb.EXPRESSIONS[name]()
    for _ in range(3):
        values = {key: float(rng.uniform(1.5, 9.0)) for key in tb.SYMBOLS}
        values["delta"] = 0.05
        exact = float(expr.subs({tb.SYMBOLS[key]: v for key, v in values.items()}))
        assert float(tb.evaluate(name, **values)) == pytest.approx(exact, rel=1e-12)


def test_shared_feature_map_bound_does_not_change_with_k():
    ks = [1, 2, 10, 1000, 10**6]
    values = [float(tb.linear_shared_bound(1.3, 0.7, 2.0, 50, k=k)) for k in ks]
    assert values == [values[0]] * len(ks)
    assert sp.diff(tb.linear_shared_bound_expr(), tb.k) == 0
    # while the k-candidate bound does grow (so the comparison means something)
    assert tb.linear_gated_bound(1.3, 0.7, 2.0, 1000, 50) > 3 * values[0]


def test_box_bounds_are_linear_in_width():
    ks = np.array([1, 2, 7, 100, 4096])
    box = tb.linear_box_bound(0.7, 2.0, ks, 50)
    np.testing.assert_allclose(box / ks, box[0], rtol=1e-13)
    hidden_box = tb.hidden_box_bound(1.0, 0.5, 2.0, ks, 50)
    np.testing.assert_allclose(hidden_box / ks, hidden_box[0], rtol=1e-13)
    assert sp.diff(tb.linear_box_bound_expr(), tb.k, 2) == 0 and sp.diff(tb.linear_box_bound_expr(), tb.k) != 0


def test_hidden_bound_is_width_free_and_types_cost_sqrt_log():
    assert sp.diff(tb.hidden_gated_bound_expr(), tb.m) == 0
    assert tb.hidden_gated_bound(1, 1, 1, 1, 64, m=1) == tb.hidden_gated_bound(1, 1, 1, 1, 64, m=10**6)
    assert tb.hidden_types_bound(1, 1, 1, 1, 1, 64) == pytest.approx(tb.hidden_gated_bound(1, 1, 1, 1, 64))


def test_weighted_radius_and_its_limit():
    assert tb.weighted_radius(2.0, [0.5, 1.0, 4.0]) == pytest.approx(4.0)
    assert math.isinf(tb.weighted_radius(2.0, [0.0, 1.0]))
    assert math.isinf(tb.weighted_linear_bound(2.0, [0.0, 1.0], 1, 1, 10))
    assert math.isinf(tb.weighted_linear_bound_refined(2.0, [0.0, 1.0], 1, 1, 10))
    capped = tb.weighted_linear_bound_refined(2.0, [0.0, 1.0], 1, 1, 16, zero_cost_cap=0.5)
    assert capped == pytest.approx(tb.weighted_linear_bound_refined(2.0, [1.0], 1, 1, 16) + 0.5 / 4)
    with pytest.raises(ValueError):
        tb.weighted_radius(1.0, [-1.0, 1.0])
    expected = tb.linear_gated_bound(2.0 / 0.5, 1.5, 0.8, 3, 40)
    assert tb.weighted_linear_bound(2.0, [0.5, 1.0, 4.0], 1.5, 0.8, 40) == pytest.approx(expected)


def test_refined_weighted_bound_never_exceeds_uniform_and_matches_it_for_equal_costs():
    rng = np.random.default_rng(1)
    for k in (1, 2, 5, 50):
        equal = [0.3] * k
        assert tb.weighted_linear_bound_refined(1.0, equal, 1, 1, 30) == pytest.approx(
            tb.weighted_linear_bound(1.0, equal, 1, 1, 30), rel=1e-7)
        costs = rng.uniform(0.01, 1.0, size=k)
        assert tb.weighted_linear_bound_refined(1.0, costs, 1, 1, 30) <= tb.weighted_linear_bound(
            1.0, costs, 1, 1, 30) * (1 + 1e-9)


def test_penalised_bound_is_the_weighted_bound_at_radius_ell0_over_lambda():
    expr = tb.penalised_linear_bound_expr()
    direct = tb.linear_gated_bound_expr().subs(tb.A, tb.ell0 / (tb.lam * tb.c_min))
    assert sp.simplify(expr - direct) == 0


def test_known_bounds():
    assert tb.massart_l1_bound(2, 3, 0.5, 1, 9) == pytest.approx(3 * math.sqrt(2 * math.log(2)) / 3)
    for k in (1, 2, 5, 7):  # ln k < 2: q = 2 is best, the bound is A W B sqrt(k / n)
        assert float(tb.group_norm_q(k)) == 2.0
        assert tb.group_norm_bound(1, 1, 1, k, 4) == pytest.approx(math.sqrt(k) / 2)
    q = float(tb.group_norm_q(1000))  # ln k > 2: the stationary point (1 + t)^2 = 2 t ln k
    assert (q ** 2) == pytest.approx(2 * (q - 1) * math.log(1000)) and 1 < q < 2
