"""Mutation test: every bound, shrunk, is refuted by the certified constructions of theory.tightness.

Each bound function of ``theory.bounds`` is replaced by one returning ``bound / factor``; the
tightness table is rebuilt and ``theory.checks.violations`` (what the workflow uses to fill the
``violated`` column) must flag that bound. Factors: 2 for the linear, box, weighted and penalised
bounds (their constructions reach ratio 1, or 0.9 for the penalised radius); 2.1 for the hidden-layer,
hidden box and T-type bounds, whose best certified ratio is exactly 1/2 (identity units on orthonormal
points; notebook 02, Step 5 shows why no construction of ours does better, so 1.5x is out of reach);
for the generalisation bound only its 2 L R_S term is shrunk, by 2.
"""

import pytest

from theory import bounds, checks, tightness

CFG = {"A": 1.0, "W": 1.0, "B": 1.0, "V": 1.0, "U": 1.0, "n": 10, "ks": [1, 16, 256], "box_ks": [1, 16],
       "box_ms": [1, 4], "Ts": [1, 2, 4], "cost": 0.1, "lambdas": [0.5, 0.9],
       "plane": {"n": 6, "activations": ["relu", "abs"], "restarts": 1, "steps": 10},
       "generalisation": {"N": 100000, "n": 300, "samples": 20, "delta": 0.05}, "known_ks": [1, 16],
       "patterns": {"ns": [16, 64, 256], "draws": 100},
       "coverage": {"n": 1000, "risk": 0.5, "runs": [{"delta": 0.05, "samples": 4000},
                                                     {"delta": 1e-6, "samples": 3_000_000}]}}

SHRUNK = {  # bound function -> (the bound_name its rows carry, shrink factor)
    "linear_gated_bound": ("linear_gated", 2.0),
    "linear_shared_bound": ("linear_shared", 2.0),
    "linear_box_bound": ("linear_box", 2.0),
    "weighted_linear_bound": ("weighted_linear", 2.0),
    "weighted_linear_bound_refined": ("weighted_linear_refined", 2.0),
    "penalised_radius": ("penalised_radius", 2.0),
    "hidden_gated_bound": ("hidden_gated", 2.1),
    "hidden_box_bound": ("hidden_box", 2.1),
    "hidden_types_bound": ("hidden_types", 2.1),
}


def test_the_honest_bounds_pass():
    df = tightness.table(CFG)
    assert checks.violations(df).empty, checks.violations(df)
    assert set(df["bound_name"].dropna()) >= {name for name, _ in SHRUNK.values()} | {"generalisation"}


@pytest.mark.parametrize("function", sorted(SHRUNK))
def test_a_shrunk_bound_is_caught(function, monkeypatch):
    name, factor = SHRUNK[function]
    original = getattr(bounds, function)
    monkeypatch.setattr(bounds, function, lambda *a, **kw: original(*a, **kw) / factor)
    flagged = checks.violations(tightness.table(CFG))
    assert name in set(flagged["bound_name"]), f"{function} / {factor} passed the check"


def test_the_generalisation_bound_with_its_rs_term_halved_is_caught(monkeypatch):
    original = bounds.generalisation_slack
    monkeypatch.setattr(bounds, "generalisation_slack",
                        lambda R_S, n, delta, L=1.0: original(R_S / 2.0, n, delta, L))
    rows = tightness.generalisation_rows({**CFG, **CFG["generalisation"]})
    assert rows[0]["violations"] == rows[0]["samples"]  # every sample refutes it
    assert not checks.violations(tightness.pd.DataFrame(rows)).empty
