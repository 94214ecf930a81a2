"""The estimators themselves: the samples they draw, the check that reads them, the loss of the gap."""

import numpy as np
import pandas as pd
import pytest

from theory import checks
from theory import empirical as te
from theory import experiments as tx
from theory import generalisation as tg

LINEAR = {"A": 1.0, "W": 1.0, "B": 1.0, "d": 3, "bandwidth": 1.0, "ks": [1, 4, 16, 64]}


@pytest.mark.parametrize("radius", [0.3, 1.0, 2.5])
def test_sample_points_have_norm_B(radius):
    """Every bound assumes ||x|| <= B (hidden layer) or ||phi_j(x)|| <= B (linear); the samples sit on it."""
    rng = np.random.default_rng(0)
    for d in (1, 2, 5):
        x = te.sphere_points(50, d, radius, rng)
        np.testing.assert_allclose(np.linalg.norm(x, axis=1), radius, rtol=1e-12)
    phi = te.random_feature_maps(te.sphere_points(30, 4, 1.0, rng), 6, 3, radius, rng)
    np.testing.assert_allclose(np.linalg.norm(phi, axis=-1), radius, rtol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(te.orthonormal_points(7, radius), axis=1), radius, rtol=1e-12)


def test_a_bound_ten_standard_errors_below_a_monte_carlo_estimate_is_flagged():
    """Real Monte-Carlo rows: a bound 10 standard errors below the estimate is refuted, and by the
    Monte-Carlo branch (not when the row is unchecked); one 2 standard errors below is not."""
    df = pd.DataFrame(tx.linear_rows(LINEAR, seed=0, n=24, draws=200, p=2))
    assert (df["check"] == "monte_carlo").all() and (df["se"] > 0).all()
    assert not checks.flags(df).any()
    too_small = df.assign(bound=df["estimate"] - 10 * df["se"])
    assert checks.flags(too_small).all()
    assert not checks.flags(too_small.assign(check="")).any()  # the flag came from the Monte-Carlo branch
    assert not checks.flags(df.assign(bound=df["estimate"] - 2 * df["se"])).any()


def test_ramp_loss_is_one_at_non_positive_margins():
    margin = np.linspace(-3.0, 3.0, 601)
    loss = tg.ramp_loss(margin)
    assert np.all(loss[margin <= 0] == 1.0)
    assert np.all(loss[margin >= 1] == 0.0)
    inside = (margin > 0) & (margin < 1)
    np.testing.assert_allclose(loss[inside], 1.0 - margin[inside], rtol=1e-12)
    assert np.all(np.abs(np.diff(loss)) <= np.diff(margin) + 1e-12)  # 1-Lipschitz
