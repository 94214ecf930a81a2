"""Config validation, overrides and the `darc` CLI on synthetic data."""

import json

import pytest
import yaml

from darc.cli import main
from darc.config import ConfigError, apply_overrides, load_experiment, peer_seeds, validate_experiment

EXP = {
    "dataset": "synthetic", "model": "wrn10_2", "threads": 1,
    "model_kwargs": {"input_size": 8},
    "train": {"epochs": 1, "batch_size": 32, "lr": 0.05, "schedule": "constant"},
    "search": {"lams": [1.0], "cost_model": "params", "calibration_samples": 16,
               "train": {"epochs": 1, "batch_size": 32, "lr": 0.05, "schedule": "constant"}},
    "finetune": {"epochs": 1, "batch_size": 32, "lr": 0.01, "schedule": "constant"},
    "bench": {"batch_sizes": [1, 4], "pairs": 2, "min_block_time": 0.005, "peak_memory": False, "threads": 1},
}


def test_unknown_key_is_named_with_the_allowed_ones():
    bad = {**EXP, "train": {**EXP["train"], "epocs": 3}}
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) \['epocs'\] under train; allowed: \[.*'epochs'"):
        validate_experiment(bad)


def test_bad_value_names_the_key():
    with pytest.raises(ConfigError, match="search.cost_model"):
        validate_experiment({**EXP, "search": {"cost_model": "flops"}})


def test_peer_seeds_per_peer_and_per_prune_match():
    """`peers.<key>_seeds` takes the first n seeds (null: all); `prune_seeds` may give each match its own n,
    a match it leaves out runs on every seed, and asking for the mapping without a match is refused."""
    exp = {**EXP, "seeds": [4, 5, 6],
           "peers": {"scratch_seeds": 1, "random_seeds": None, "prune_seeds": {"latency": None, "params": 2}}}
    validate_experiment(exp)
    assert peer_seeds(exp, "scratch_seeds") == [4] and peer_seeds(exp, "random_seeds") == [4, 5, 6]
    assert peer_seeds(exp, "prune_seeds", "latency") == [4, 5, 6]
    assert peer_seeds(exp, "prune_seeds", "params") == [4, 5] and peer_seeds(exp, "prune_seeds", "macs") == [4, 5, 6]
    with pytest.raises(ValueError, match="per match"):
        peer_seeds(exp, "prune_seeds")
    with pytest.raises(ConfigError, match="peers.prune_seeds"):
        validate_experiment({**exp, "peers": {"prune_seeds": {"flops": 1}}})


def test_overrides_parse_yaml_values():
    cfg = apply_overrides(EXP, ["train.epochs=3", "search.lams=[0.1, 1]", "seed=5"])
    assert cfg["train"]["epochs"] == 3 and cfg["search"]["lams"] == [0.1, 1] and cfg["seed"] == 5
    assert EXP["train"]["epochs"] == 1
    with pytest.raises(ConfigError, match="key.path=value"):
        apply_overrides(EXP, ["nonsense"])


def test_workflow_config_experiments_are_valid_at_every_scale():
    from pathlib import Path

    from darc.config import experiment_at_scale

    root = Path(__file__).resolve().parent.parent
    cfg = yaml.safe_load((root / "config" / "config.yaml").read_text())
    for name, raw in cfg["experiments"].items():
        for scale in ("smoke", "default", "paper"):
            exp = experiment_at_scale(raw, scale, name)
            assert exp["dataset"] == ("fashion-mnist" if scale != "paper" else exp["dataset"])


def test_cli_end_to_end_on_synthetic_data(tmp_path, capsys):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump(EXP))
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "base"), "--scale", "smoke"]) == 0
    assert "outputs in" in capsys.readouterr().out
    base = json.loads((tmp_path / "base" / "result.json").read_text())
    assert base["scale"] == "smoke" and base["dataset"] == "synthetic" and base["dataset_is_stand_in"]
    assert base["git_commit"] and base["torch"]
    assert main(["search", "--config", str(cfg), "--lam", "1.0", "--base", str(tmp_path / "base"),
                 "--out", str(tmp_path / "s"), "--scale", "smoke"]) == 0
    assert main(["finetune", "--config", str(cfg), "--search-dir", str(tmp_path / "s"),
                 "--out", str(tmp_path / "f"), "--scale", "smoke"]) == 0
    assert main(["bench", "--config", str(cfg), "--base", str(tmp_path / "base"), "--finetuned",
                 str(tmp_path / "f"), "--out", str(tmp_path / "b"), "--scale", "smoke"]) == 0
    import pandas as pd

    row = pd.read_csv(tmp_path / "b" / "bench.csv").iloc[0]
    for col in ("speedup_b1", "speedup_b4", "param_reduction", "macs_ratio", "test_acc", "scale", "git_commit"):
        assert col in row.index
    assert row["speedup_b1"] > 0


def test_cli_reports_config_errors(tmp_path, capsys):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump({**EXP, "trian": {}}))
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert "unknown config key(s) ['trian']" in capsys.readouterr().err


def test_load_experiment_from_workflow_config_by_key(tmp_path):
    cfg = tmp_path / "wf.yaml"
    cfg.write_text(yaml.safe_dump({"scale": "default", "experiments": {"e": EXP}}))
    assert load_experiment(cfg, ["train.epochs=2"], key="e")["train"]["epochs"] == 2
    with pytest.raises(ConfigError, match="has no experiments.x"):
        load_experiment(cfg, key="x")


def test_budget_mode_bisects_lambda_and_reports_every_try(tmp_path):
    cfg = tmp_path / "exp.yaml"
    budget = {"metric": "param_bytes", "target_ratio": 1.5, "lam_low": 0.1, "lam_high": 1000.0, "max_tries": 3}
    cfg.write_text(yaml.safe_dump({**EXP, "budget": budget}))
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "base")]) == 0
    assert main(["budget", "--config", str(cfg), "--base", str(tmp_path / "base"), "--out", str(tmp_path / "b")]) == 0
    report = json.loads((tmp_path / "b" / "budget.json").read_text())
    lams = [t["lam"] for t in report["tries"]]
    assert 1 <= len(lams) <= 3 and lams[0] == pytest.approx(10.0)  # geometric midpoint of [0.1, 1000]
    for earlier, later, t in zip(lams, lams[1:], report["tries"]):
        assert (later < earlier) == t["meets_target"]  # met: try a smaller lambda; missed: a larger one
    if report["best"] is not None:
        assert report["best"]["ratio"] >= 1.5


def test_cli_bench_a_registered_model_and_an_architecture_file(tmp_path, capsys):
    out = tmp_path / "b"
    assert main(["bench", "--model", "wrn16_1", "--model-kwargs", '{"in_chans": 1, "input_size": 8}',
                 "--batch-sizes", "1", "2", "--threads", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "latency" in printed and "wrn16_1" in printed
    assert any(p.suffix == ".csv" for p in out.iterdir())

    from darc.gates import gate_model
    from darc.materialize import materialize, save_materialized
    from darc.models import create_model

    plain, arch = materialize(gate_model(create_model("wrn16_1", in_chans=1, input_size=8), "branch"))
    save_materialized(plain, arch, tmp_path / "m")
    assert main(["bench", "--arch", str(tmp_path / "m" / "architecture.json"), "--weights",
                 str(tmp_path / "m" / "weights.pt"), "--batch-sizes", "1", "--threads", "1",
                 "--out", str(tmp_path / "c")]) == 0


def test_cli_latency_table_times_the_experiments_candidates(tmp_path, capsys, monkeypatch):
    from darc.bench import cost_check

    def fake_table(modules, in_shapes, batch_size, *, device, threads, **_):  # no timing in tests
        return {cost_check.LatencyKey(n, tuple(in_shapes[n]), batch_size, threads, str(device), "float32"):
                (2.0 if n.startswith("base#") else 1.0 + ("dropped" not in n)) for n in modules}

    monkeypatch.setattr(cost_check, "build_latency_table", fake_table)
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump(EXP))
    out = str(tmp_path / "table.json")
    assert main(["latency-table", "--config", str(cfg), "--out", out]) == 2  # cost_model params reads no table
    assert "not latency" in capsys.readouterr().err
    assert main(["latency-table", "--config", str(cfg), "--out", out, "--set", "search.cost_model=latency",
                 "--set", "search.latency_context=network"]) == 0
    assert "base 2000.000 ms" in capsys.readouterr().out
