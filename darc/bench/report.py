"""Benchmark a model end to end and write tidy records (CSV + JSON) and a short text table.

A record is one flat dict per (metric, backend, batch size): ``model, metric, backend, batch_size,
input_shape, value, unit, status, reason`` first, then metric-specific columns (for latency: median,
quartiles, IQR, mean, number of measurements, per-sample latency, throughput) and the environment
(:data:`darc.bench.env.ENV_KEYS` and the rest of :func:`darc.provenance.environment`). Batch-independent
metrics (parameter counts and bytes) have ``batch_size = None``.

Metrics: ``num_parameters``, ``parameter_bytes``, ``buffer_bytes``, ``param_bytes`` (their sum),
``state_dict_bytes``, ``macs`` (per batch size), ``latency`` (per backend and batch size, value = median
seconds), ``peak_tensor_memory`` (per batch size, value = net bytes: weights + peak tensor allocations, exact),
``peak_memory`` (per batch size, value = net resident bytes; only with ``peak_memory=True``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from darc.bench.backends import run_backend
from darc.bench.env import bench_environment
from darc.bench.latency import shape_str
from darc.bench.macs import count_macs
from darc.bench.memory import (
    ModelSpec,
    peak_inference_memory,
    peak_tensor_memory,
    state_dict_bytes,
    tensor_bytes,
)
from darc.io import atomic_write_json, atomic_write_text

LEAD_COLUMNS = (
    "model", "metric", "backend", "batch_size", "input_shape", "value", "unit", "status", "reason"
)


def _record(base: dict[str, Any], **fields: Any) -> dict[str, Any]:
    rec = {k: None for k in LEAD_COLUMNS}
    rec["status"] = "ok"
    rec.update(base)
    rec.update(fields)
    return {**{k: rec[k] for k in LEAD_COLUMNS}, **{k: v for k, v in rec.items() if k not in LEAD_COLUMNS}}


def benchmark_model(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    batch_sizes: Sequence[int] = (1, 8),
    device: str | torch.device = "cpu",
    threads: int | None = None,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
    backends: Iterable[str] = (),
    model_name: str | None = None,
    min_run_time: float = 0.2,
    warmup: int = 3,
    autorange: str = "blocked",
    min_measurements: int = 10,
    macs: bool = True,
    peak_memory: bool = False,
    memory_spec: ModelSpec | None = None,
    backend_options: dict[str, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """All darc metrics of ``model`` as tidy records (see the module docstring).

    Eager latency is always measured; ``backends`` adds optional ones (``"compile"``, ``"onnxruntime"``),
    each reported separately and skipped with a reason where unavailable. ``backend_options`` maps a
    backend name to extra keyword arguments (e.g. ``{"compile": {"compile_backend": "eager"}}``).
    :func:`darc.bench.memory.peak_tensor_memory` runs per batch size (in-process, exact);
    ``peak_memory=True`` adds :func:`darc.bench.memory.peak_inference_memory` per batch size (child
    processes on CPU, resident memory), from ``memory_spec`` if given, else from ``model`` itself.
    """
    name = model_name or type(model).__name__
    shape = tuple(int(s) for s in input_shape)
    names = ["eager"] + [b for b in dict.fromkeys(backends) if b != "eager"]
    options = backend_options or {}
    common = dict(device=device, threads=threads, dtype=dtype, channels_last=channels_last)
    static_env = bench_environment(device, threads=threads, dtype=dtype, batch_size=None,
                                   channels_last=channels_last)
    base = {"model": name, "input_shape": shape_str(shape)}
    records: list[dict[str, Any]] = []

    sizes = tensor_bytes(model)
    for metric, unit in (("num_parameters", "count"), ("parameter_bytes", "bytes"),
                         ("buffer_bytes", "bytes"), ("param_bytes", "bytes")):
        key = "total_bytes" if metric == "param_bytes" else metric
        records.append(_record({**static_env, **base}, metric=metric, value=sizes[key], unit=unit))
    records.append(_record({**static_env, **base}, metric="state_dict_bytes",
                           value=state_dict_bytes(model), unit="bytes"))

    for bs in batch_sizes:
        env = bench_environment(device, threads=threads, dtype=dtype, batch_size=bs,
                                channels_last=channels_last)
        if macs:
            records.append(_record({**env, **base}, metric="macs", value=count_macs(model, shape, bs),
                                   unit="MAC"))
        for backend in names:
            rec = run_backend(backend, model, shape, bs, **common, min_run_time=min_run_time, warmup=warmup,
                              autorange=autorange, min_measurements=min_measurements,
                              **options.get(backend, {}))
            value = rec.get("median_s") if rec.get("status") == "ok" else None
            records.append(_record({**base, **rec}, metric="latency", value=value, unit="s"))
        tensor_peak = peak_tensor_memory(model, shape, bs, device, threads=threads, dtype=dtype,
                                         channels_last=channels_last)
        records.append(_record({**base, **tensor_peak.to_record()}, metric="peak_tensor_memory",
                               value=tensor_peak.net_bytes, unit="bytes"))
        if peak_memory:
            mem = peak_inference_memory(memory_spec if memory_spec is not None else model, shape, bs,
                                        device, threads=threads, dtype=dtype, channels_last=channels_last)
            records.append(_record({**base, **mem.to_record()}, metric="peak_memory", value=mem.net_bytes,
                                   unit="bytes"))
    return records


def write_records(records: Sequence[dict[str, Any]], path: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``records`` atomically to ``<path>.csv`` and ``<path>.json`` (a .csv/.json suffix is dropped).

    Returns (csv path, json path). Columns are the union over records, lead columns first.
    """
    path = Path(path)
    if path.suffix in (".csv", ".json"):
        path = path.with_suffix("")
    csv_path, json_path = Path(f"{path}.csv"), Path(f"{path}.json")
    frame = pd.DataFrame(list(records))
    lead = [c for c in LEAD_COLUMNS if c in frame.columns]
    frame = frame[lead + [c for c in frame.columns if c not in lead]]
    atomic_write_text(frame.to_csv(index=False), csv_path)
    atomic_write_json(list(records), json_path)
    return csv_path, json_path


def read_records(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Records written by :func:`write_records` (reads the JSON file)."""
    path = Path(path)
    if path.suffix != ".json":
        path = Path(f"{path.with_suffix('') if path.suffix == '.csv' else path}.json")
    return json.loads(path.read_text(encoding="utf-8"))


def _human(value: Any, unit: str | None) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if unit == "s":
        for scale, suffix in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
            if abs(value) >= scale or suffix == "us":
                return f"{value / scale:.3g} {suffix}"
    if unit == "bytes":
        for scale, suffix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
            if abs(value) >= scale:
                return f"{value / scale:.3g} {suffix}"
        return f"{int(value)} B"
    if unit in ("count", "MAC"):
        for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if abs(value) >= scale:
                return f"{value / scale:.3g}{suffix}{' MAC' if unit == 'MAC' else ''}"
        return f"{int(value)}{' MAC' if unit == 'MAC' else ''}"
    return str(value)


def format_table(records: Sequence[dict[str, Any]]) -> str:
    """A short fixed-width text table: model, metric, backend, batch, value, IQR, throughput."""
    header = ("model", "metric", "backend", "batch", "value", "iqr", "samples/s")
    rows = [header]
    for r in records:
        if r.get("status", "ok") != "ok":
            value = f"skipped: {r.get('reason')}"
            if len(value) > 60:
                value = value[:57] + "..."
        else:
            value = _human(r.get("value"), r.get("unit"))
        has_iqr = r.get("metric") == "latency" and r.get("iqr_s") is not None
        iqr = _human(r.get("iqr_s"), "s") if has_iqr else ""
        tput = f"{r['throughput_per_s']:.4g}" if r.get("throughput_per_s") is not None else ""
        batch = "" if r.get("batch_size") is None else str(r.get("batch_size"))
        rows.append((str(r.get("model", "")), str(r.get("metric", "")), str(r.get("backend") or ""), batch,
                     value, iqr, tput))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
