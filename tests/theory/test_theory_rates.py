"""The 1/sqrt(n) rate: R_S against n on a log-log scale has slope -1/2 (within 0.1)."""

import pytest

from theory import experiments as tx

CFG = {"A": 1.0, "W": 1.0, "B": 1.0, "V": 1.0, "U": 1.0, "ns": [16, 64, 256, 1024, 4096], "draws": 100,
       "linear": {"k": 16, "p": 8, "d": 5}, "hidden": {"d": 2, "activation": "relu"}}


@pytest.fixture(scope="module")
def table():
    return tx.rates_table(CFG, [0, 1])


def test_loglog_slopes_are_minus_one_half(table):
    slopes = table[table["experiment"] == "rate_slope"].set_index("family")
    assert set(slopes.index) == {"linear", "hidden"}
    for family, row in slopes.iterrows():
        assert abs(row["estimate"] + 0.5) <= 0.1, (family, row["estimate"])
        assert abs(row["seed_mean"] + 0.5) <= 0.1


def test_every_point_is_under_its_bound_and_exact(table):
    pts = table[table["experiment"] == "rates"]
    assert (pts["sup"] == "exact").all() and len(pts) == 2 * 2 * len(CFG["ns"])
    assert (pts["estimate"] - 3 * pts["se"] <= pts["bound"]).all()
