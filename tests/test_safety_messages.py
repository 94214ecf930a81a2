"""One-line messages that say what went wrong and what to do (issue #32): a corrupt checkpoint, a misspelt
alternative option (in gating or in an architecture file), a workflow config without --experiment, and a
budget's lambda range upside down."""

from __future__ import annotations

import json
import os
import re

import pytest
import torch
import yaml

from darc.budget import find_lambda
from darc.cli import main
from darc.gates import gate_model
from darc.io import CheckpointError, safe_torch_load
from darc.materialize import materialize, save_materialized
from darc.models import create_model

TYPO = {"alternative": "narrow", "ratoi": 0.25}


def cli_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The single error line ``darc`` prints (exit status 2)."""
    assert main(args) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if not re.match(r"[WI]\d{4} ", ln)]  # torch logs
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"darc {args[0]}: error: "), lines
    return lines[0]


def test_random_bytes_are_not_a_readable_checkpoint_and_no_unsafe_advice(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError) as err:
        safe_torch_load(path)
    msg = str(err.value)
    assert "not a readable checkpoint (corrupt, truncated, or not a torch file)" in msg and "re-create it" in msg
    assert "weights_only" not in msg and "\n" not in msg and str(path) in msg


class NotATensor:
    pass


def test_a_pickled_object_is_named_and_not_loaded(tmp_path):
    path = tmp_path / "obj.pt"
    torch.save({"x": NotATensor()}, path)
    with pytest.raises(CheckpointError, match=r"holds a Python object \(.*NotATensor\).*re-create it") as err:
        safe_torch_load(path)
    assert "weights_only" not in str(err.value)


def test_a_misspelt_alternative_option_is_refused_when_gating():
    base = create_model("wrn10_2", in_chans=3, input_size=8, num_classes=4)
    with pytest.raises(ValueError, match=r"alternative 'narrow' has no option 'ratoi' \(its options: ratio\)"):
        gate_model(base, "branch", ["original", TYPO])
    with pytest.raises(ValueError, match=r"has no option 'size' \(its options: distill_lr, distill_steps, kernel"):
        gate_model(base, "branch", ["original", {"alternative": "dwsep", "size": 3}])


def test_a_misspelt_option_in_an_architecture_file_is_named_not_blamed_on_the_weights(tmp_path, capsys):
    base = create_model("wrn10_2", in_chans=3, input_size=8, num_classes=4)
    plain, arch = materialize(gate_model(base, "branch", ["original", {"alternative": "narrow", "ratio": 0.25}]))
    arch_path, weights = save_materialized(plain, arch, tmp_path / "mat")
    edited = json.loads(arch_path.read_text())
    edited["slots"][0]["kept"] = [{**edited["slots"][0]["kept"][0], **TYPO, "config": {"ratoi": 0.25}}]
    arch_path.write_text(json.dumps(edited))
    err = cli_error(["bench", "--out", str(tmp_path / "b"), "--arch", str(arch_path), "--weights", str(weights)],
                    capsys)
    assert str(arch_path) in err and "no option 'ratoi' (its options: ratio)" in err, err
    assert "another network" not in err


def test_a_workflow_config_without_experiment_says_to_pick_one(tmp_path, capsys):
    one = {"dataset": "synthetic", "model": "wrn10_2", "model_kwargs": {"input_size": 8}}
    cfg = tmp_path / "workflow.yaml"
    cfg.write_text(yaml.safe_dump({"experiments": {"wrn": one, "resnet": one}}, sort_keys=False))
    err = cli_error(["search", "--config", str(cfg), "--lam", "1", "--base", str(tmp_path / "base"),
                     "--out", str(tmp_path / "s")], capsys)
    assert f"{cfg} is a workflow config: pick one with --experiment KEY (one of wrn, resnet)" in err


@pytest.mark.parametrize("low, high, expected", [
    (10.0, 1.0, r"budget.lam_low \(10.0\) must be below budget.lam_high \(1.0\)"),
    (0.0, 1.0, "config key budget.lam_low: 0.0 is less than or equal to the minimum of 0"),  # the schema's
    (0.1, -1.0, "config key budget.lam_high: -1.0 is less than or equal to the minimum of 0"),
])
def test_a_bad_budget_lambda_range_is_refused_before_any_search(low, high, expected, tmp_path):
    exp = {"dataset": "synthetic", "model": "wrn10_2",  # no base, no data: refused before either is read
           "budget": {"lam_low": low, "lam_high": high}}
    with pytest.raises(ValueError, match=expected):
        find_lambda(exp, tmp_path / "no-base", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_budget_with_an_upside_down_range_exits_2(tmp_path, capsys):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump({"dataset": "synthetic", "model": "wrn10_2", "model_kwargs": {"input_size": 8}}))
    err = cli_error(["budget", "--config", str(cfg), "--set", "budget.lam_low=5", "--set", "budget.lam_high=0.5",
                     "--base", str(tmp_path / "no-base"), "--out", str(tmp_path / "out")], capsys)
    assert "budget.lam_low (5) must be below budget.lam_high (0.5)" in err
