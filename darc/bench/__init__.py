"""Benchmarking: latency (eager and optional backends), memory, MACs, reports and the latency table.

One idea per module: :mod:`~darc.bench.latency` (the timing protocol), :mod:`~darc.bench.memory`
(parameter bytes and peak inference memory), :mod:`~darc.bench.macs`, :mod:`~darc.bench.env` (what
every record carries), :mod:`~darc.bench.backends` (torch.compile, ONNX Runtime),
:mod:`~darc.bench.report` (tidy records, CSV/JSON, text table), :mod:`~darc.bench.signature` (when two
networks run the same computation) and :mod:`~darc.bench.cost_check` (the
per-module latency lookup table and its error). Names are imported lazily so that the memory probe's
child processes import only what they need.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "env": ("ENV_KEYS", "bench_environment", "torch_threads"),
    "latency": ("ABResult", "LatencyResult", "compare_latency", "measure_latency", "measure_module_latency"),
    "memory": ("MemoryResult", "ModelSpec", "param_bytes", "peak_inference_memory", "peak_tensor_memory",
               "state_dict_bytes", "tensor_bytes"),
    "macs": ("count_macs", "macs_by_module"),
    "backends": ("BACKENDS", "run_backend"),
    "report": ("benchmark_model", "format_table", "read_records", "write_records"),
    "signature": ("architecture_signature",),
    "cost_check": ("LatencyKey", "build_latency_table", "cost_model_error", "load_latency_table",
                   "predict_model_latency"),
}
_WHERE = {name: mod for mod, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"darc.bench.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'darc.bench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
