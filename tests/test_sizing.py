"""benchmarks/studies/sizing.py, the check that the default's equal-budget reference is converged: its arms'
lengths, seeds and folders, and that an arm already trained (e.g. on a lent GPU) is read, not retrained."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import yaml

import darc
from darc.config import experiment_at_scale, experiment_for_seed

REPO = Path(darc.__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "studies" / "sizing.py"


def _module():
    spec = importlib.util.spec_from_file_location("sizing", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


sizing = _module()


def _default_wrn() -> dict:
    raw = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["experiments"]["cifar_wrn"]
    return experiment_for_seed(experiment_at_scale(raw, "default", name="cifar_wrn"), 0)


def test_twice_as_long_doubles_the_references_images_in_whole_epochs():
    exp = sizing.with_base_epochs(_default_wrn(), 12)
    long = sizing.twice_as_long(exp, 55_000)
    # 12 epochs of 429 steps x 128, plus the budget's share of them after the base (4 %), doubled, rounded up
    base_images = 12 * 429 * 128
    reference_images = base_images + round(exp["finetune"]["budget"] * base_images)
    assert exp["finetune"]["budget"] == 0.04
    assert long["train"]["epochs"] == -(-2 * reference_images // (429 * 128)) == 25
    assert long["train"]["eval_every"] == 25 and exp["train"]["epochs"] == 12  # the input is not changed


def test_arm_seeds_change_init_and_order_but_not_the_split(tmp_path):
    exp = _default_wrn()
    jobs = sizing._arm_jobs("cifar_wrn", sizing.with_base_epochs(exp, 12), str(tmp_path), [0, 1])
    assert [Path(j["out"]).name for j in jobs] == ["epochs12", "epochs12-seed1"]
    second = jobs[1]["exp"]
    assert second["seed"] == second["train"]["seed"] == 1
    assert second["data_seed"] == exp["data_seed"] == 0


def test_an_arm_with_a_result_is_read_not_retrained(tmp_path):
    exp = sizing.with_base_epochs(_default_wrn(), 26)
    job = sizing._arm_jobs("cifar_wrn", exp, str(tmp_path), [])[0]
    Path(job["out"]).mkdir(parents=True)
    done = {"val_acc": 0.9, "test_acc": 0.8, "train_seconds": 1.0, "device": "cuda", "git_commit": "abc"}
    (Path(job["out"]) / "result.json").write_text(json.dumps(done))
    row = sizing._run(job)  # no data, no training: it would take minutes
    assert (row["epochs"], row["test_acc"], row["device"], row["seed"]) == (26, 0.8, "cuda", 0)


def test_unknown_experiments_are_refused_before_any_work():
    import argparse

    import pytest

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    args = argparse.Namespace(experiments="cifar_wrn,nope", config="config/config.yaml", device="cpu",
                              data_root=None, max_steps=None)
    with pytest.raises(SystemExit, match="nope"):
        next(sizing._experiments(config, args))
