"""benchmarks/tools/run.py slot_costs: a latency table's predicted single-slot savings against measured ones, with
the timing replaced by a deterministic stand-in (parameter counts), so the arithmetic is checked exactly."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

import darc
from darc.bench import cost_check
from darc.cli import main

REPO = Path(darc.__file__).resolve().parent.parent

EXP = {
    "dataset": "synthetic", "model": "wrn10_2", "threads": 1, "model_kwargs": {"input_size": 8},
    "train": {"epochs": 1, "batch_size": 32, "lr": 0.05, "schedule": "constant"},
    "search": {"lams": [1.0], "cost_model": "latency", "latency_context": "network", "calibration_samples": 16,
               "train": {"epochs": 1, "batch_size": 32, "lr": 0.05, "schedule": "constant"}},
    "finetune": {"epochs": 1, "batch_size": 32, "lr": 0.01, "schedule": "constant"},
}


def _run_module():
    spec = importlib.util.spec_from_file_location("bench_run", REPO / "benchmarks" / "tools" / "run.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _params(module) -> float:
    return float(sum(p.numel() for p in module.parameters()))


def test_a_table_equal_to_the_measurement_predicts_every_saving(tmp_path, monkeypatch):
    run = _run_module()

    def fake_table(modules, in_shapes, batch_size, *, device, threads, path=None, **_):
        table = {cost_check.LatencyKey(n, tuple(in_shapes[n]), batch_size, threads, str(device), "float32"):
                 _params(m) for n, m in modules.items()}
        cost_check.atomic_write_json({"format": cost_check.TABLE_FORMAT, "environment": {}, "entries": [
            {**k._asdict(), "in_shape": list(k.in_shape), "median_s": v} for k, v in table.items()]}, path)
        return table

    def fake_ab(base, plain, *a, **k):  # "latency" = parameter count; ratio > 1: the changed net is faster
        return SimpleNamespace(ratio_median=_params(base) / _params(plain))

    monkeypatch.setattr(cost_check, "build_latency_table", fake_table)
    monkeypatch.setattr(run, "compare_latency", fake_ab)
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump(EXP))
    table = tmp_path / "table.json"
    assert main(["latency-table", "--config", str(cfg), "--out", str(table)]) == 0
    args = SimpleNamespace(config=str(cfg), tables=[f"network={table}", str(table)], pairs=2, threads=1)
    out = run.slot_costs_bench(args)
    assert len(out["changes"]) == 3 * 4  # wrn10_2: 3 branch slots x (narrow 0.5, narrow 0.25, dwsep, dropped)
    for key in (f"network={table}", str(table)):  # the config's context is network too
        assert out["tables"][key]["mean_abs_error"] == pytest.approx(0.0, abs=1e-12)
        assert out["tables"][key]["rank_correlation"] == pytest.approx(1.0)
    assert all(row["measured_saving"] > 0 for row in out["changes"] if row["candidate"] == "dropped")
