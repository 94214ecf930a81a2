"""A per-module latency lookup table, the model latency it predicts, and how wrong that prediction is.

DARC's latency cost model prices each candidate by a measured latency. The table is a plain
``dict[LatencyKey, float]`` (median seconds), keyed by everything a latency depends on:
``(module, in_shape, batch_size, threads, device, dtype)``. ``module`` is the name the caller gives
the module (e.g. ``"stage2.block0.branch/narrow_0.5"``); :func:`build_latency_table` also stores a short
description of it (class and parameter count) and the quartiles in the JSON file.

Timed alone, every entry is a median taken at its own moment, so a machine whose speed drifts (other
tenants, frequency scaling) puts that drift into the table. With a ``reference`` (DARC passes the base
network) each module is instead timed against the reference in interleaved A/B blocks and stored as
its ratio to it times the reference's median: the drift cancels in each ratio.

Summing module latencies ignores what runs between modules (Python dispatch, the residual additions,
memory traffic of the shortcut) and cache effects between neighbours, so the prediction is checked
against a measured whole-model latency with :func:`cost_model_error`.

JSON layout (``format: darc-latency-table/1``)::

    {"format": ..., "environment": {...}, "entries": [
        {"module": str, "in_shape": [int, ...], "batch_size": int, "threads": int, "device": str,
         "dtype": str, "median_s": float, "q25_s": float, "q75_s": float, "n_measurements": int,
         "description": str}, ...]}
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from darc.bench.env import bench_environment, dtype_name, resolve_device, resolve_threads
from darc.bench.latency import compare_latency, measure_module_latency
from darc.io import atomic_write_json

TABLE_FORMAT = "darc-latency-table/1"


class LatencyKey(NamedTuple):
    """What a module latency depends on. ``in_shape`` excludes the batch dimension."""

    module: str
    in_shape: tuple[int, ...]
    batch_size: int
    threads: int
    device: str
    dtype: str


def describe_module(module: nn.Module) -> str:
    """A short description: class name and parameter count, e.g. ``"Conv2d(params=4640)"``."""
    return f"{type(module).__name__}(params={sum(p.numel() for p in module.parameters())})"


def build_latency_table(
    modules: Mapping[str, nn.Module],
    in_shapes: Mapping[str, Sequence[int]],
    batch_size: int = 1,
    *,
    device: str | torch.device = "cpu",
    threads: int | None = None,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
    min_run_time: float = 0.1,
    warmup: int = 3,
    min_measurements: int = 10,
    reference: tuple[str, nn.Module, Sequence[int]] | None = None,
    pairs: int = 10,
    min_block_time: float = 0.02,
    path: str | os.PathLike | None = None,
) -> dict[LatencyKey, float]:
    """Measure every module; returns ``{LatencyKey: median seconds}``.

    ``modules`` maps a name to a module, ``in_shapes`` the same names to the module's input shape
    (without batch). Without ``reference`` each module is timed alone
    (:func:`darc.bench.latency.measure_module_latency`). With ``reference=(name, module, in_shape)``
    (DARC passes the base network) each module is timed *against the reference* by the interleaved A/B
    protocol (:func:`darc.bench.latency.compare_latency`, ``pairs`` pairs of blocks lasting about
    ``min_block_time`` seconds): an entry is its median
    per-pair ratio to the reference times the reference's median over all pairs, so drifts of the
    machine while the table is built cancel; the reference gets an entry of its own. With ``path``
    also writes the JSON file (atomically) with quartiles, ratios, descriptions and the environment,
    keeping the entries a file already there holds for other keys.
    """
    missing = [n for n in modules if n not in in_shapes]
    if missing:
        raise KeyError(f"no input shape for modules {missing}")
    dev = resolve_device(device)
    n_threads = resolve_threads(threads)
    common = dict(device=dev, threads=n_threads, dtype=dtype, channels_last=channels_last)

    def key(name: str, shape: Sequence[int]) -> LatencyKey:
        return LatencyKey(name, tuple(int(s) for s in shape), batch_size, n_threads, str(dev), dtype_name(dtype))

    rows: list[dict[str, Any]] = []
    if reference is None:
        for name, module in modules.items():
            res = measure_module_latency(module, in_shapes[name], batch_size, min_run_time=min_run_time,
                                         warmup=warmup, min_measurements=min_measurements, **common)
            rows.append({**key(name, in_shapes[name])._asdict(), "median_s": res.median_s, "q25_s": res.q25_s,
                         "q75_s": res.q75_s, "n_measurements": res.n_measurements,
                         "description": describe_module(module)})
    else:
        ref_name, ref_module, ref_shape = reference
        ref_times: list[float] = []
        ratios: dict[str, tuple[float, float, float]] = {}
        for name, module in modules.items():
            if name == ref_name:
                continue
            ab = compare_latency(module, ref_module, in_shapes[name], batch_size, pairs=pairs, warmup=warmup,
                                 min_block_time=min_block_time, input_shape_b=ref_shape, **common)
            ratios[name] = (ab.ratio_q25, ab.ratio_median, ab.ratio_q75)
            ref_times += ab.times_b_s
        if not ref_times:  # nothing to compare: time the reference alone
            ref_times = measure_module_latency(ref_module, ref_shape, batch_size, min_run_time=min_run_time,
                                               warmup=warmup, min_measurements=min_measurements,
                                               **common).times_s
        q25, t_ref, q75 = (float(v) for v in np.percentile(ref_times, [25, 50, 75]))
        rows.append({**key(ref_name, ref_shape)._asdict(), "median_s": t_ref, "q25_s": q25, "q75_s": q75,
                     "n_measurements": len(ref_times), "description": describe_module(ref_module),
                     "ratio_to_reference": 1.0})
        for name, (r25, r50, r75) in ratios.items():
            rows.append({**key(name, in_shapes[name])._asdict(), "median_s": r50 * t_ref, "q25_s": r25 * t_ref,
                         "q75_s": r75 * t_ref, "n_measurements": pairs,
                         "description": describe_module(modules[name]), "ratio_to_reference": r50,
                         "reference": ref_name})
    table = {key(r["module"], r["in_shape"]): r["median_s"] for r in rows}
    if path is not None:
        env = bench_environment(dev, threads=n_threads, dtype=dtype, batch_size=batch_size,
                                channels_last=channels_last)
        entries = [{**r, "in_shape": list(r["in_shape"])} for r in rows]
        if Path(path).exists():  # keep the file's other entries; the new measurements replace theirs
            old = json.loads(Path(path).read_text(encoding="utf-8")).get("entries", [])
            entries = [e for e in old if _entry_key(e) not in table] + entries
        atomic_write_json({"format": TABLE_FORMAT, "environment": env, "entries": entries}, path)
    return table


def _entry_key(e: Mapping[str, Any]) -> LatencyKey:
    return LatencyKey(str(e["module"]), tuple(int(v) for v in e["in_shape"]), int(e["batch_size"]),
                      int(e["threads"]), str(e["device"]), str(e["dtype"]))


def load_latency_table(path: str | os.PathLike) -> dict[LatencyKey, float]:
    """Read a table written by :func:`build_latency_table`."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if data.get("format") != TABLE_FORMAT:
        raise ValueError(f"{path} is not a {TABLE_FORMAT} file (format={data.get('format')!r})")
    return {_entry_key(e): float(e["median_s"]) for e in data["entries"]}


def lookup(table: Mapping[LatencyKey, float], module: str | LatencyKey, **where: Any) -> float:
    """The median of ``module``: a full key, or a name plus filters on the other key fields.

    Raises ``KeyError`` unless exactly one entry matches (e.g. pass ``batch_size=1`` when the table
    holds several batch sizes).
    """
    if isinstance(module, LatencyKey):
        return table[module]
    bad = set(where) - set(LatencyKey._fields)
    if bad:
        raise TypeError(f"unknown key fields {sorted(bad)}; use {LatencyKey._fields}")
    if "in_shape" in where:
        where["in_shape"] = tuple(where["in_shape"])
    if "dtype" in where:
        where["dtype"] = dtype_name(where["dtype"])
    hits = [k for k in table if k.module == module and all(getattr(k, f) == v for f, v in where.items())]
    if len(hits) != 1:
        what = "no entry" if not hits else f"{len(hits)} entries"
        raise KeyError(f"{what} for module {module!r} with {where}; narrow with {LatencyKey._fields[1:]}")
    return table[hits[0]]


def predict_model_latency(table: Mapping[LatencyKey, float], module_names: Iterable[str | LatencyKey],
                          **where: Any) -> float:
    """Predicted latency in seconds: the sum of the table entries of ``module_names`` (see :func:`lookup`)."""
    return float(sum(lookup(table, name, **where) for name in module_names))


def cost_model_error(predicted: float, measured: float) -> float:
    """Signed relative error ``(predicted - measured) / measured`` (negative: the table under-predicts)."""
    if measured <= 0:
        raise ValueError(f"measured latency must be positive, got {measured}")
    return (predicted - measured) / measured
