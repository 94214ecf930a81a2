"""benchmarks/studies/distill_study.py: the search's own gating of a trained base, at several distillation lengths."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import darc
from darc import experiment as E
from darc.config import experiment_for_seed

SCRIPT = Path(darc.__file__).resolve().parent.parent / "benchmarks" / "studies" / "distill_study.py"
EXP = {
    "dataset": "synthetic", "model": "wrn10_2", "threads": 1, "validation": 32, "seeds": [0],
    "model_kwargs": {"input_size": 8}, "subset": [96, 32],
    "train": {"epochs": 1, "batch_size": 32, "lr": 0.05, "schedule": "constant"},
    "search": {"lams": [1.0], "cost_model": "params", "calibration_samples": 16,
               "train": {"epochs": 1, "batch_size": 32, "lr": 0.05, "schedule": "constant"}},
}


def _module():
    spec = importlib.util.spec_from_file_location("distill_study", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_longer_distillation_never_keeps_a_worse_candidate(tmp_path):
    exp = experiment_for_seed(EXP, 0)
    E.train_base(exp, tmp_path / "base", scale="smoke", progress=False)
    study = _module()
    short, _ = study.distill_errors(exp, str(tmp_path / "base"), 2)
    long, _ = study.distill_errors(exp, str(tmp_path / "base"), 8)
    assert short.keys() == long.keys() and short
    for slot, errors in short.items():
        assert "dwsep" in errors and "original" not in errors  # the original is not distilled
        for label, err in errors.items():
            # the same seeded start: 8 steps see every state 2 steps see, and keep the best
            assert math.isfinite(err) and long[slot][label] <= err + 1e-9, (slot, label)
