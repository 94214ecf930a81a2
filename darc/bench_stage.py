"""The bench stage: every fine-tuned network of an experiment measured against its base, one tidy row each
(interleaved A/B latency, parameter bytes, peak memory, MACs, accuracy, decisions, recipe, provenance).

It reads the networks of every method, the peers' included (:func:`darc.peers.loading.load_finetuned`), so
it sits above :mod:`darc.experiment` and :mod:`darc.peers`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from darc.inputs import load_base, load_data
from darc.match_timing import match_against_darc
from darc.peers.loading import load_finetuned
from darc.recipe import RECIPE_COLUMNS
from darc.records import PEER_COLUMNS, RESULT, begin_stage, stage_record
from darc.search import slot_decisions
from darc.spec import ExperimentLike


def compare_to_base(
    base: nn.Module, compressed: nn.Module, input_shape: tuple[int, ...], *, batch_sizes: list[int],
    threads: int, pairs: int, min_block_time: float, device: str = "cpu",
) -> dict[str, Any]:
    """Measured ratios base / compressed: latency (interleaved A/B, per batch size) and parameter
    bytes, plus MACs (an analytic cost, reported as such, never as a speed-up)."""
    from darc.bench.latency import compare_latency
    from darc.bench.macs import count_macs
    from darc.bench.memory import param_bytes

    row: dict[str, Any] = {
        "param_bytes": param_bytes(compressed), "base_param_bytes": param_bytes(base),
        "macs": count_macs(compressed, input_shape, 1), "base_macs": count_macs(base, input_shape, 1),
    }
    row["param_reduction"] = row["base_param_bytes"] / row["param_bytes"]
    row["macs_ratio"] = row["base_macs"] / row["macs"]
    for b in batch_sizes:
        ab = compare_latency(base, compressed, input_shape, b, pairs=pairs, device=device, threads=threads,
                             min_block_time=min_block_time)
        row[f"latency_b{b}_ms"] = ab.median_b_s * 1e3
        row[f"base_latency_b{b}_ms"] = ab.median_a_s * 1e3
        row[f"speedup_b{b}"] = ab.ratio_median
        row[f"speedup_b{b}_iqr"] = ab.ratio_iqr
    return row


def _matched_darc_dir(result: dict[str, Any]) -> Path | None:
    """The DARC fine-tune a latency-matched peer was pruned to match (from its ``prune.json``), else None."""
    if not str(result.get("role", "")).endswith("_latency") or not result.get("pruned"):
        return None
    record = Path(result["pruned"]).parent / "prune.json"
    if not record.exists():
        return None
    darc_dir = json.loads(record.read_text()).get("darc_finetune")
    return Path(darc_dir) if darc_dir else None


def peak_memory_columns(
    base: nn.Module, compressed: dict[str, nn.Module], input_shape: tuple[int, ...], batch_sizes: list[int],
    threads: int, device: str = "cpu", *, resident: bool = True,
) -> dict[str, dict[str, Any]]:
    """Per compressed model and batch size: peak tensor memory (exact, in-process: weights + the inference's
    peak allocations) and, with ``resident``, measured peak resident memory (spawned children), each with its
    reduction against the base (measured once)."""
    from darc.bench.memory import peak_inference_memory_many, peak_tensor_memory

    cols: dict[str, dict[str, Any]] = {k: {} for k in compressed}
    for b in batch_sizes:
        tensor = {key: peak_tensor_memory(m, input_shape, b, device, threads=threads).net_bytes
                  for key, m in {"__base__": base, **compressed}.items()}
        for key in compressed:
            cols[key][f"peak_tensor_b{b}_bytes"] = tensor[key]
            cols[key][f"base_peak_tensor_b{b}_bytes"] = tensor["__base__"]
            cols[key][f"peak_tensor_reduction_b{b}"] = tensor["__base__"] / max(tensor[key], 1)
        if not resident:
            continue
        mem = peak_inference_memory_many({"__base__": base, **compressed}, input_shape, b, device, threads=threads)
        for key in compressed:
            cols[key][f"peak_mem_b{b}_bytes"] = mem[key].net_bytes
            cols[key][f"base_peak_mem_b{b}_bytes"] = mem["__base__"].net_bytes
            cols[key][f"peak_mem_reduction_b{b}"] = mem["__base__"].net_bytes / max(mem[key].net_bytes, 1)
            cols[key]["peak_mem_method"] = mem[key].method
    return cols


def bench(
    exp: ExperimentLike, base_dir: str | Path, finetune_dirs: list[str | Path], out_csv: str | Path, *,
    scale: str = "default",
) -> list[dict[str, Any]]:
    """Benchmark every fine-tuned network of an experiment against its base; one tidy row each.

    Rows carry the run's seed, role, cost and accuracy (validation and test; the base's accuracy where
    the run has the base's seed), measured speed-ups at batch 1 and the batched size, parameter-byte
    and peak-memory reductions, the MACs ratio, kept candidates and provenance. Every base of an
    experiment has the same architecture, so one of them serves as the timing reference for all seeds; and
    runs with the same architecture (:func:`darc.bench.signature.architecture_signature`: the reference and
    a point that keeps the base, a point every seed decided alike) share one measurement (``timed_as``).
    """
    import pandas as pd

    from darc.bench.signature import architecture_signature
    from darc.io import atomic_write_text

    exp = begin_stage(exp)
    b = exp.bench
    threads = exp.timing_threads
    torch.set_num_threads(threads)
    data = load_data(exp)
    base = load_base(exp, base_dir).eval()
    base_result = json.loads((Path(base_dir) / RESULT).read_text()) if (Path(base_dir) / RESULT).exists() else {}
    shape = tuple(data.meta.input_shape)
    batch_sizes = list(b.batch_sizes)
    runs = {str(d): (json.loads((Path(d) / RESULT).read_text()), load_finetuned(d).eval()) for d in finetune_dirs}
    device = exp.device
    # Latency and memory depend on the architecture, not the weights: each distinct architecture is measured
    # once (the first run that has it) and every run with it carries that measurement (column timed_as).
    signature = {key: architecture_signature(m) for key, (_, m) in runs.items()}
    timed_as: dict[str, str] = {}
    for key, sig in signature.items():
        timed_as.setdefault(sig, key)
    first = {key: timed_as[sig] for key, sig in signature.items()}
    distinct = {k: runs[k][1] for k in dict.fromkeys(first.values())}
    memory = peak_memory_columns(base, distinct, shape, batch_sizes, threads, device=device,
                                 resident=b.peak_memory)
    measured: dict[str, dict[str, Any]] = {}
    matched: dict[tuple[str, str], dict[str, Any]] = {}  # (DARC's architecture, the peer's): timed once
    prov = {k: v for k, v in stage_record(exp, scale, data, "bench", threads=threads).items() if k != "config"}
    rows = []
    for key, (res, _) in runs.items():
        same_seed = base_result.get("seed", 0) == res.get("base_seed", res.get("seed", 0))
        base_acc = base_result.get("test_acc") if same_seed else None
        row = {
            "experiment": exp.stands_for, "role": res.get("role", "darc"),
            "seed": res.get("seed", 0), "base_seed": res.get("base_seed", res.get("seed", 0)), "lam": res["lam"],
            "arch_cost": res.get("arch_cost"),
            "val_acc": res.get("val_acc"), "test_acc": res["test_acc"], "base_test_acc": base_acc,
            "test_acc_before_finetune": res["test_acc_before_finetune"],
            "acc_change": None if base_acc is None else res["test_acc"] - base_acc,
            "kept_slots": sum(1 for v in res["kept"].values() if v) if res["kept"] else None,
            "total_slots": len(res["kept"]) or None, "kept": json.dumps(res["kept"]),
            **{f"slots_{k}": v if res["kept"] else None  # a pruned network has no slots
               for k, v in slot_decisions(res["kept"]).items() if k != "replaced_by"},
            "replaced_by": json.dumps(slot_decisions(res["kept"])["replaced_by"]),
            **{k: res[k] for k in (*PEER_COLUMNS, *RECIPE_COLUMNS, "recipe") if k in res},
        }
        if first[key] not in measured:
            measured[first[key]] = compare_to_base(
                base, runs[first[key]][1], shape, batch_sizes=batch_sizes, threads=threads,
                pairs=b.pairs, min_block_time=b.min_block_time, device=device,
            )
        row.update(measured[first[key]])
        darc_dir = _matched_darc_dir(res)
        if darc_dir is not None:
            darc_model = next((m for k, (_, m) in runs.items() if Path(k).resolve() == darc_dir.resolve()), None)
            if darc_model is None:
                darc_model = load_finetuned(darc_dir).eval()
            pair = (architecture_signature(darc_model), signature[key])
            if pair not in matched:
                matched[pair] = match_against_darc(
                    darc_model, runs[key][1], shape, exp.cost_batch_size, threads=threads, pairs=b.pairs,
                    min_block_time=b.min_block_time, device=device, sessions=b.match_sessions,
                    darc_dir=darc_dir, peer_dir=key)
            row.update(matched[pair])
        row["timed_as"] = first[key]  # the run whose measurement this row carries (itself, or one of its architecture)
        row.update(memory[first[key]])
        row.update(prov)
        row["config"] = json.dumps(exp.raw, sort_keys=True)
        rows.append(row)
    frame = pd.DataFrame(rows).sort_values(["role", "seed", "lam"], kind="stable")
    atomic_write_text(frame.to_csv(index=False), out_csv)
    return rows
