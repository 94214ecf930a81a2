"""Where stages run and measure: the experiment's device (CPU unless it says otherwise), the latency cost
model's device following it unless `search.cost_device` is set, bench timing on it. No timing here: the
measuring functions are replaced by recorders."""

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from darc import bench_stage as B
from darc import experiment as E
from darc.search import SearchConfig, resolve_cost_device

EXP = {
    "dataset": "synthetic", "model": "wrn10_2", "threads": 1, "model_kwargs": {"input_size": 8},
    "search": {"lams": [1.0], "cost_model": "latency", "distill_steps": 0, "calibration_samples": 8},
    "bench": {"batch_sizes": [1, 4], "pairs": 2, "min_block_time": 0.005, "peak_memory": True, "threads": 1},
}


@pytest.mark.parametrize("device", [None, "cpu", "cuda", "cuda:1", "meta"])
def test_cost_device_follows_the_experiment_device(device):
    exp = {**EXP, "device": device}
    assert E.experiment_device(exp) == (device or "cpu")
    assert E.search_config(exp, 1.0).cost_device == (device or "cpu")


def test_an_explicit_cost_device_wins():
    exp = {**EXP, "device": "cuda", "search": {**EXP["search"], "cost_device": "cpu"}}
    assert E.search_config(exp, 1.0).cost_device == "cpu"
    exp = {**EXP, "search": {**EXP["search"], "cost_device": "cuda"}}  # deployment target other than training
    assert E.search_config(exp, 1.0).cost_device == "cuda"


def test_run_search_resolves_an_unset_cost_device_from_its_device():
    assert resolve_cost_device(SearchConfig(lam=1.0), None) == "cpu"
    assert resolve_cost_device(SearchConfig(lam=1.0), "cuda") == "cuda"
    assert resolve_cost_device(SearchConfig(lam=1.0), torch.device("cuda", 2)) == "cuda:2"
    assert resolve_cost_device(SearchConfig(lam=1.0, cost_device="cpu"), "cuda") == "cpu"


def test_latency_table_is_measured_on_the_experiment_device(monkeypatch, tmp_path):
    import darc.costs

    seen = {}

    def record(gated, base, model, ctx):
        seen.update(device=ctx.device, batch=ctx.batch_size, table=ctx.table_path)
        return {}

    monkeypatch.setattr(darc.costs, "assign_costs", record)
    E.measure_latency_table({**EXP, "device": "meta"}, tmp_path / "t.json")
    assert seen == {"device": "meta", "batch": 1, "table": tmp_path / "t.json"}


def _fake_runs(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    (base / "result.json").write_text(json.dumps({"seed": 0, "test_acc": 0.9}))
    runs = []
    for lam in (1.0, 2.0):
        d = tmp_path / f"ft{lam:g}"
        d.mkdir()
        (d / "result.json").write_text(json.dumps({
            "seed": 0, "lam": lam, "role": "darc", "test_acc": 0.9, "val_acc": 0.9,
            "test_acc_before_finetune": 0.8, "kept": {"s0": ["original"], "s1": []}}))
        runs.append(d)
    return base, runs


@pytest.mark.parametrize("device", [None, "meta"])
def test_bench_times_and_measures_memory_on_the_experiment_device(monkeypatch, tmp_path, device):
    calls = {"latency": [], "memory": []}

    def compare(base, compressed, shape, *, batch_sizes, threads, pairs, min_block_time, device="cpu"):
        calls["latency"].append(device)
        return {"speedup_b1": 1.0}

    def memory(base, compressed, shape, batch_sizes, threads, device="cpu", *, resident=True):
        calls["memory"].append(device)
        return {k: {} for k in compressed}

    monkeypatch.setattr(B, "compare_to_base", compare)
    monkeypatch.setattr(B, "peak_memory_columns", memory)
    monkeypatch.setattr(B, "load_base", lambda exp, d: nn.Identity())
    monkeypatch.setattr(B, "load_finetuned", lambda d: nn.Linear(2, 2) if d.name == "ft1" else nn.Linear(2, 3))
    base, runs = _fake_runs(tmp_path)
    rows = B.bench({**EXP, "device": device}, base, runs, tmp_path / "bench.csv")
    want = device or "cpu"
    assert calls == {"latency": [want, want], "memory": [want]}
    assert {r["device"] for r in rows} == {want}


def test_bench_measures_each_architecture_once_and_every_run_with_it_carries_that(monkeypatch, tmp_path):
    """Runs of one architecture (the reference and a point that keeps the base; one point every seed decided
    alike) are timed once: their rows carry the same measurement and name the run timed (timed_as)."""
    timed, probed = [], []

    def compare(base, compressed, shape, *, batch_sizes, threads, pairs, min_block_time, device="cpu"):
        timed.append(compressed)
        return {"speedup_b1": float(len(timed))}

    def memory(base, compressed, shape, batch_sizes, threads, device="cpu", *, resident=True):
        probed.extend(compressed)
        return {k: {"peak_mem_reduction_b1": 1.0} for k in compressed}

    shapes = {"ft1": (2, 2), "ft2": (2, 3), "ft3": (2, 2)}  # ft3: ft1's architecture, other weights
    monkeypatch.setattr(B, "compare_to_base", compare)
    monkeypatch.setattr(B, "peak_memory_columns", memory)
    monkeypatch.setattr(B, "load_base", lambda exp, d: nn.Identity())
    monkeypatch.setattr(B, "load_finetuned", lambda d: nn.Linear(*shapes[d.name]))
    base, runs = _fake_runs(tmp_path)
    (tmp_path / "ft3").mkdir()
    (tmp_path / "ft3" / "result.json").write_text((runs[0] / "result.json").read_text())
    rows = {Path(r["timed_as"]).name: r for r in B.bench(EXP, base, [*runs, tmp_path / "ft3"], tmp_path / "b.csv")}
    assert len(timed) == 2 and sorted(Path(k).name for k in probed) == ["ft1", "ft2"]
    assert set(rows) == {"ft1", "ft2"}
    frame = pd.read_csv(tmp_path / "b.csv")
    assert sorted(frame["timed_as"].map(lambda p: Path(p).name)) == ["ft1", "ft1", "ft2"]
    assert frame.groupby("timed_as")["speedup_b1"].nunique().max() == 1


def test_bench_helpers_pass_the_device_to_the_measurements(monkeypatch):
    """compare_to_base and peak_memory_columns hand their device to the timing and memory protocols."""
    import darc.bench.latency
    import darc.bench.memory
    from darc.bench.latency import ABResult
    from darc.bench.memory import MemoryResult

    seen = []

    def compare_latency(a, b, shape, batch, *, pairs, device, threads, min_block_time):
        seen.append(("latency", device))
        return ABResult(1.5, 1.4, 1.6, 2.0, 1.0, pairs, 1, batch, shape, str(device), threads, "float32", False)

    def peak_many(models, shape, batch, device, *, threads):
        seen.append(("memory", device))
        return {k: MemoryResult(net_bytes=10, peak_bytes=20, baseline_bytes=10, method="fake", device=str(device),
                                batch_size=batch, input_shape=shape, threads=threads, dtype="float32",
                                channels_last=False) for k in models}

    monkeypatch.setattr(darc.bench.latency, "compare_latency", compare_latency)
    def peak_tensor(model, shape, batch, device, *, threads):
        seen.append(("tensor memory", device))
        return MemoryResult(net_bytes=10, peak_bytes=10, baseline_bytes=5, method="fake", device=str(device),
                            batch_size=batch, input_shape=shape, threads=threads, dtype="float32")

    monkeypatch.setattr(darc.bench.memory, "peak_inference_memory_many", peak_many)
    monkeypatch.setattr(darc.bench.memory, "peak_tensor_memory", peak_tensor)
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    row = B.compare_to_base(net, net, (1, 2, 2), batch_sizes=[1, 8], threads=1, pairs=2, min_block_time=0.01,
                            device="cuda")
    B.peak_memory_columns(net, {"a": net}, (1, 2, 2), [1], 1, device="cuda")
    assert seen == [("latency", "cuda"), ("latency", "cuda"), ("tensor memory", "cuda"), ("tensor memory", "cuda"),
                    ("memory", "cuda")]
    assert row["speedup_b8"] == 1.5


def test_bench_times_a_latency_match_against_the_darc_network_it_was_matched_to(monkeypatch, tmp_path):
    """A latency-matched peer gets a direct A/B against DARC's network at the protocol's batch
    (``match_speedup_b<batch>``), timed once per pair of architectures; other runs get none."""
    timed = []

    def direct(darc, peer, shape, batch, *, threads, pairs, min_block_time, device="cpu", sessions, darc_dir,
               peer_dir):
        assert sessions == 5 and Path(darc_dir).name == "ft1" and Path(peer_dir).name == "tp0"
        timed.append((darc.out_features, peer.out_features, batch))
        return {f"match_speedup_b{batch}": 1.02, f"match_speedup_b{batch}_iqr": 0.01}

    shapes = {"ft1": (2, 2), "ft2": (2, 3), "tp0": (2, 5), "tp1": (2, 5)}
    monkeypatch.setattr(B, "compare_to_base", lambda *a, **k: {"speedup_b1": 1.5})
    monkeypatch.setattr(B, "peak_memory_columns", lambda base, compressed, *a, **k: {c: {} for c in compressed})
    monkeypatch.setattr(B, "match_against_darc", direct)
    monkeypatch.setattr(B, "load_base", lambda exp, d: nn.Identity())
    monkeypatch.setattr(B, "load_finetuned", lambda d: nn.Linear(*shapes[Path(d).name]))
    base, runs = _fake_runs(tmp_path)
    for seed, name in enumerate(("tp0", "tp1")):  # two seeds' matches of ft1, one architecture
        (tmp_path / name / "pruned").mkdir(parents=True)
        (tmp_path / name / "prune.json").write_text(json.dumps({"darc_finetune": str(runs[0])}))
        (tmp_path / name / "result.json").write_text(json.dumps({
            "seed": seed, "lam": 1.0, "role": "tp_latency", "test_acc": 0.9, "val_acc": 0.9,
            "test_acc_before_finetune": None, "kept": {}, "pruned": str(tmp_path / name / "pruned")}))
    rows = B.bench(EXP, base, [*runs, tmp_path / "tp0", tmp_path / "tp1"], tmp_path / "b.csv")
    assert timed == [(2, 5, 1)]  # search.cost_batch_size defaults to 1; the second seed reuses the timing
    by_role = {r["role"]: r for r in rows}
    assert by_role["tp_latency"]["match_speedup_b1"] == 1.02
    assert "match_speedup_b1" not in by_role["darc"]
