"""Repeated-sample coverage of the generalisation bound on a one-function class (theory.coverage)."""

import numpy as np
import pandas as pd
import pytest
from test_theory_mutation import CFG  # the same small configuration (tests/theory is on sys.path)

from theory import checks, coverage


@pytest.fixture(scope="module")
def rows():
    return pd.DataFrame(coverage.single_function_rows(CFG["coverage"]))


def test_the_bound_covers_a_single_function_at_delta(rows):
    """At each delta the bound fails on no more samples than the probability check allows, and stays
    above the gap's (1 - delta) quantile."""
    assert list(rows["x"]) == [run["delta"] for run in CFG["coverage"]["runs"]]
    assert (rows["check"] == "probability").all()
    assert checks.violations(rows).empty, rows[["delta", "violations", "samples", "bound"]]
    assert (rows["estimate"] < rows["bound"]).all()
    assert (rows["exact_violation_rate"] <= rows["delta"]).all()


def test_exact_failure_probability_matches_repeated_samples():
    """The binomial tail that the rows report beside their counts agrees with an independent simulation."""
    n, risk, samples = 200, 0.5, 200_000
    rng = np.random.default_rng(1)
    for slack in (0.02, 0.05, 0.1):
        gaps = risk - rng.binomial(n, risk, size=samples) / n
        rate = coverage.exact_violation_rate(n, risk, slack)
        count = int(np.sum(gaps > slack))
        assert abs(count - rate * samples) <= 5 * np.sqrt(samples * rate * (1 - rate)) + 1, (slack, count, rate)
    assert coverage.exact_violation_rate(n, risk, 0.6) == 0.0  # more than the risk: never violated


def test_a_too_small_confidence_term_is_counted(rows):
    """The check has teeth: the bound at delta with its confidence term shrunk beyond ``shrink_caught`` is
    refuted by the same counts."""
    for _, row in rows.iterrows():
        assert 1.0 < row["shrink_caught"] < np.inf
        shrunk = row["bound"] / (row["shrink_caught"] * 1.01)
        rate = coverage.exact_violation_rate(int(row["n"]), row["risk"], shrunk)
        assert rate > row["delta"]
