"""Misuse gets a clear error: negative lambda, costs never assigned, bad files at the CLI, devices and
dtypes of the original module, durable atomic writes, error messages that name real config keys."""

from __future__ import annotations

import json
import math
import os
import re

import pytest
import torch
import yaml
from tiny_nets import TinyResNet

from darc.cli import main
from darc.costs import CostContext, CostsNotAssignedError, assign_costs
from darc.gates import gate_model, gated_slots
from darc.materialize import materialize, save_materialized
from darc.models import create_model
from darc.penalty import ProximalGateStep, gate_penalty, search_param_groups, soft_threshold_
from darc.search import SearchConfig

SHAPE = (3, 16, 16)
CANDIDATES = ["original", {"alternative": "narrow", "ratio": 0.5}, "identity"]


def _gated():
    return gate_model(TinyResNet(), ["blocks.*.body"], CANDIDATES, example_input=SHAPE)


@pytest.mark.parametrize("lam", [-5.0, -1e-12, math.nan, math.inf])
def test_negative_or_non_finite_lambda_is_refused_everywhere(lam):
    gated = _gated()
    assign_costs(gated, TinyResNet(), "params", CostContext(SHAPE))
    with pytest.raises(ValueError, match="lambda must be a finite number >= 0"):
        SearchConfig(lam=lam)
    with pytest.raises(ValueError, match="lambda must be a finite number >= 0"):
        ProximalGateStep(gated, lam)
    with pytest.raises(ValueError, match="lambda must be a finite number >= 0"):
        gate_penalty(gated, lam)
    with pytest.raises(ValueError, match="must be finite and >= 0"):
        soft_threshold_(gated, lam)
    assert SearchConfig(lam=0.0).lam == 0.0  # no penalty is allowed


def test_non_positive_gate_lr_is_refused():
    with pytest.raises(ValueError, match="lr_gate must be > 0"):
        SearchConfig(lr_gate=-0.1)


def test_cli_refuses_a_negative_lambda(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["search", "--config", "x.yaml", "--lam", "-5", "--base", "b", "--out", str(tmp_path)])
    assert exit_.value.code == 2
    assert "--lam: the penalty weight must be a finite number >= 0, got -5" in capsys.readouterr().err


def test_proximal_step_refuses_a_model_whose_costs_were_never_assigned():
    gated = _gated()
    with pytest.raises(CostsNotAssignedError, match=r"never assigned.*call darc.assign_costs"):
        ProximalGateStep(gated, 1.0)
    with pytest.raises(ValueError, match="no gated slots"):
        ProximalGateStep(TinyResNet(), 1.0)
    assign_costs(gated, TinyResNet(), "params", CostContext(SHAPE))
    step = ProximalGateStep(gated, 1.0)  # a weightless candidate's legitimate zero cost is fine
    slot = gated_slots(gated)["blocks.0.body"]
    assert slot.cost[slot.labels.index("identity")] == 0 and slot.cost_model == "params"
    opt = torch.optim.SGD(search_param_groups(gated, lr=0.1, lr_gate=0.1, weight_decay=0.0), lr=0.1)
    before = slot.gate.detach().clone()
    step(opt)
    assert slot.gate[0] < before[0]  # the original pays its cost


def _arch_files(tmp_path):
    base = create_model("wrn10_2", in_chans=3, input_size=8, num_classes=4)
    gated = gate_model(base, "branch", ["original", {"alternative": "narrow", "ratio": 0.5}])
    plain, arch = materialize(gated)
    return save_materialized(plain, arch, tmp_path / "mat")


def _cli_error(args, capsys) -> str:
    assert main(args) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if not re.match(r"[WI]\d{4} ", ln)]  # torch logs
    assert len(lines) == 1, lines  # one line, no traceback
    assert lines[0].startswith(f"darc {args[0]}: error: "), lines
    return lines[0]


def test_cli_corrupt_or_mismatched_weights_print_one_line_and_exit_2(tmp_path, capsys):
    arch, weights = _arch_files(tmp_path)
    bench = ["bench", "--out", str(tmp_path / "b"), "--arch", str(arch), "--weights"]
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(weights.read_bytes()[:200])
    err = _cli_error([*bench, str(corrupt)], capsys)
    assert "corrupt.pt" in err and "corrupt" in err
    other = tmp_path / "other.pt"
    torch.save(create_model("wrn16_1", input_size=8, num_classes=4).state_dict(), other)
    err = _cli_error([*bench, str(other)], capsys)
    assert re.search(r"other\.pt do not fit this WideResNet .*keys: \d+ missing .*\d+ unexpected", err), err
    assert len(err) < 600


def test_cli_search_from_a_corrupt_or_foreign_base_checkpoint_exits_2(tmp_path, capsys):
    exp = {"dataset": "synthetic", "model": "wrn10_2", "model_kwargs": {"input_size": 8}, "subset": [32, 16]}
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump(exp))
    (tmp_path / "base").mkdir()
    search = ["search", "--config", str(cfg), "--lam", "1", "--base", str(tmp_path / "base"),
              "--out", str(tmp_path / "s")]
    (tmp_path / "base" / "model.pt").write_bytes(b"not a checkpoint")
    err = _cli_error(search, capsys)
    assert "model.pt" in err and "corrupt" in err
    torch.save(create_model("wrn16_1", input_size=8, num_classes=4).state_dict(), tmp_path / "base" / "model.pt")
    err = _cli_error(search, capsys)
    assert "model.pt do not fit this WideResNet" in err and "missing" in err


def _tamper(arch: dict, how: str) -> dict | str:
    if how == "not json":
        return "{'slots': ["
    if how == "no slots":
        return {k: v for k, v in arch.items() if k != "slots"}
    kept = arch["slots"][0]["kept"][0]
    if how == "gate is text":
        kept["gate"] = "one"
    elif how == "unknown alternative":
        kept["alternative"] = "nonesuch"
    elif how == "shapes edited":
        arch["slots"][0]["out_shape"] = [7, 8, 8]
    elif how == "other format":
        arch["format"] = "darc-architecture/0"
    return arch


@pytest.mark.parametrize("how", ["not json", "no slots", "gate is text", "unknown alternative", "shapes edited",
                                 "other format"])
def test_cli_tampered_architecture_file_prints_one_line_and_exits_2(how, tmp_path, capsys):
    arch_path, weights = _arch_files(tmp_path)
    arch = _tamper(json.loads(arch_path.read_text()), how)
    arch_path.write_text(arch if isinstance(arch, str) else json.dumps(arch))
    err = _cli_error(["bench", "--out", str(tmp_path / "b"), "--arch", str(arch_path), "--weights", str(weights)],
                     capsys)
    assert str(arch_path) in err
    expected = {"not json": "not a JSON architecture file", "no slots": "slots must be a list",
                "gate is text": r"kept\[0\].gate must be a finite number", "unknown alternative": "nonesuch",
                "shapes edited": "cannot rebuild", "other format": "not a darc architecture file"}[how]
    assert re.search(expected, err), err


def test_candidates_follow_the_original_device_and_dtype():
    # float64: the candidates' shape probe, distillation and gates run in the model's dtype
    gated = gate_model(TinyResNet().double(), ["blocks.*.body"], [*CANDIDATES, "dwsep"], example_input=SHAPE,
                       calibration=torch.randn(4, *SHAPE, dtype=torch.float64))
    assert {p.dtype for p in gated.parameters()} == {torch.float64}
    assert all(s.cost.dtype == torch.float64 for s in gated_slots(gated).values())
    assert gated(torch.randn(2, *SHAPE, dtype=torch.float64)).dtype == torch.float64
    # device: candidates and gates of a module on another device (meta stands in for CUDA) stay there
    from darc.alternatives import get_alternative
    from darc.gates import CandidateRef, GatedSlot
    from darc.slots import describe_slots

    net = TinyResNet()
    spec = describe_slots(net, ["blocks.1.body"], SHAPE)[0]
    original = net.get_submodule("blocks.1.body").to("meta")
    built = [get_alternative(name).build(spec, original, False) for name in ("narrow", "dwsep")]
    for module in built:
        assert {t.device.type for t in [*module.parameters(), *module.buffers()]} == {"meta"}
    slot = GatedSlot(spec, [original, *built], [CandidateRef(n) for n in ("original", "narrow", "dwsep")],
                     [1.0, 0.05, 0.05])
    assert slot.gate.device.type == "meta" and slot.cost.device.type == "meta"


def test_atomic_writes_fsync_before_rename(tmp_path, monkeypatch):
    from darc import io

    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(io.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(io.os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])
    io.atomic_torch_save({"w": torch.ones(3)}, tmp_path / "w.pt")
    assert events[:2] == ["fsync", "replace"]
    assert torch.equal(torch.load(tmp_path / "w.pt", weights_only=True)["w"], torch.ones(3))
    events.clear()
    io.atomic_write_json({"a": 1}, tmp_path / "a.json")
    assert events[:2] == ["fsync", "replace"]


def test_missing_dataset_messages_name_real_config_keys(tmp_path):
    from darc.config import experiment_schema
    from darc.data import get_dataset

    keys = set(experiment_schema()["properties"])
    for name in ("cifar10", "fashion-mnist", "imagenet"):
        with pytest.raises(FileNotFoundError) as err:
            get_dataset(name, root=str(tmp_path / "nowhere"))
        named = re.findall(r"config key `(\w+)", str(err.value))
        assert named and set(named) <= keys, (name, named)
