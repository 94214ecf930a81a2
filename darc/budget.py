"""Budget mode: find the penalty weight lambda that meets a target by bisection over short searches.

The user asks for a ratio ``base / compressed`` of one metric: ``param_bytes``, ``macs``, or
``latency_b1`` (measured batch-1
latency on this machine, interleaved A/B). Each try is a full (short) search at one lambda; the
bisection runs in log-lambda space, keeps the smallest lambda that meets the target, and reports
every try. ``max_param_mb: N`` asks for "at most N MiB of parameters" directly.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from darc.io import atomic_write_json
from darc.materialize import load_materialized

METRICS = ("param_bytes", "macs", "latency_b1")


def measured_ratio(metric: str, base: torch.nn.Module, compressed: torch.nn.Module, input_shape: tuple[int, ...],
                   threads: int) -> float:
    """``metric(base) / metric(compressed)``, measured the way :mod:`darc.bench` measures it."""
    from darc.bench.latency import compare_latency
    from darc.bench.macs import count_macs
    from darc.bench.memory import param_bytes

    if metric == "param_bytes":
        return param_bytes(base) / param_bytes(compressed)
    if metric == "macs":
        return count_macs(base, input_shape, 1) / count_macs(compressed, input_shape, 1)
    if metric == "latency_b1":
        return compare_latency(base, compressed, input_shape, 1, pairs=10, threads=threads).ratio_median
    raise ValueError(f"budget metric must be one of {METRICS}, got {metric!r}")


def check_lambda_range(lam_low: Any, lam_high: Any) -> None:
    """Refuse a bisection range that is not ``0 < lam_low < lam_high`` (finite numbers), before any search."""
    for key, value in (("lam_low", lam_low), ("lam_high", lam_high)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"budget.{key} must be a finite number > 0 (the bisection runs in log lambda), "
                             f"got {value!r}: fix it in the config or with --set budget.{key}=...")
    if lam_low >= lam_high:
        raise ValueError(f"budget.lam_low ({lam_low}) must be below budget.lam_high ({lam_high}): the bisection "
                         "searches between them; swap them or widen the range")


def find_lambda(exp: dict[str, Any], base_dir: str | Path, out_dir: str | Path, *, scale: str = "default",
                progress: bool = False) -> dict[str, Any]:
    """Bisection over lambda for ``exp['budget']``; writes ``out_dir/budget.json`` after every try."""
    from darc import experiment

    b = {"metric": "param_bytes", "target_ratio": 2.0, "lam_low": 0.01, "lam_high": 100.0, "max_tries": 6,
         "tolerance": 0.05, **exp.get("budget", {})}
    check_lambda_range(b["lam_low"], b["lam_high"])
    out = Path(out_dir)
    base = experiment.load_base(exp, base_dir).eval()
    if b.get("max_param_mb"):  # "at most N MB of parameters" is a parameter-byte ratio
        from darc.bench.memory import param_bytes

        b["metric"], b["target_ratio"] = "param_bytes", param_bytes(base) / (b["max_param_mb"] * 2**20)
    shape = tuple(base.input_shape)
    threads = torch.get_num_threads()
    lo, hi = math.log(b["lam_low"]), math.log(b["lam_high"])
    tries: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    for i in range(int(b["max_tries"])):
        lam = math.exp((lo + hi) / 2)
        run_dir = out / f"try{i}_lam{lam:.4g}"
        summary = experiment.search(exp, lam, base_dir, run_dir, scale=scale, progress=progress)
        mat = run_dir / "materialized"
        model = load_materialized(mat / "architecture.json", mat / "weights.pt").eval()
        ratio = measured_ratio(b["metric"], base, model, shape, threads)
        met = ratio >= b["target_ratio"]
        tries.append({"try": i, "lam": lam, "ratio": ratio, "meets_target": met,
                      "test_acc": summary["metrics"].get("test_acc"), "dir": str(run_dir)})
        print(f"budget try {i}: lambda={lam:.4g} {b['metric']} ratio={ratio:.3f} "
              f"({'meets' if met else 'misses'} target {b['target_ratio']})")
        if met and (best is None or lam < best["lam"]):
            best = tries[-1]
        if met:
            hi = math.log(lam)
        else:
            lo = math.log(lam)
        atomic_write_json({"budget": b, "tries": tries, "best": best}, out / "budget.json")
        if met and ratio <= b["target_ratio"] * (1 + b["tolerance"]):
            break
    return {"budget": b, "tries": tries, "best": best}
