"""Budget mode: find the penalty weight lambda that meets a target by bisection over short searches.

The user asks for a ratio ``base / compressed`` of one metric: ``param_bytes``, ``macs``, or
``latency_b1`` (measured batch-1 latency on this machine, interleaved A/B, at the experiment's bench threads).
Each try is a full (short) search at one lambda; the bisection (:func:`darc.target.search_lambda`) runs in
log-lambda space, measures each distinct architecture once, keeps the smallest lambda that meets the target, and
reports every try. ``max_param_mb: N`` asks for "at most N MiB of parameters" directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from darc.io import atomic_write_json
from darc.materialize import load_materialized
from darc.spec import Experiment, ExperimentLike
from darc.target import LambdaPath, Target, check_lambda_range, search_lambda

#: The config's metric names -> :class:`darc.target.Target` metrics.
METRICS = {"param_bytes": "param_bytes", "macs": "macs", "latency_b1": "latency"}


def find_lambda(exp: ExperimentLike, base_dir: str | Path, out_dir: str | Path, *, scale: str = "default",
                progress: bool = False) -> dict[str, Any]:
    """Bisection over lambda for ``exp['budget']`` (:func:`darc.target.search_lambda`: each distinct architecture
    measured once, latency at the experiment's bench threads); writes ``out_dir/budget.json`` after every try."""
    from dataclasses import asdict

    from darc import experiment

    exp = Experiment.of(exp)
    b = {k: v for k, v in asdict(exp.budget).items() if v is not None}  # the schema's defaults under the config's
    check_lambda_range(b["lam_low"], b["lam_high"])
    if b["metric"] not in METRICS:
        raise ValueError(f"budget.metric must be one of {sorted(METRICS)}, got {b['metric']!r}")
    out = Path(out_dir)
    base = experiment.load_base(exp, base_dir).eval()
    if b.get("max_param_mb"):  # "at most N MB of parameters" is a parameter-byte ratio
        from darc.bench.memory import param_bytes

        b["metric"], b["target_ratio"] = "param_bytes", param_bytes(base) / (b["max_param_mb"] * 2**20)
    target = Target(METRICS[b["metric"]], float(b["target_ratio"]))
    threads = exp.timing_threads

    def search_at(lam: float) -> tuple[torch.nn.Module, dict[str, Any]]:
        run_dir = out / f"try{len(dirs)}_lam{lam:.4g}"
        dirs.append(run_dir)
        summary = experiment.search(exp, lam, base_dir, run_dir, scale=scale, progress=progress)
        mat = run_dir / "materialized"
        model = load_materialized(mat / "architecture.json", mat / "weights.pt").eval()
        return model, {"test_acc": summary["metrics"].get("test_acc"), "dir": str(run_dir)}

    def report(path: LambdaPath) -> dict[str, Any]:
        tries = [{"try": i, "lam": t.lam, "ratio": t.ratio, "ratio_q25": t.q25, "ratio_q75": t.q75,
                  "meets_target": t.meets_target, "same_network_as_before": t.reused, **t.info}
                 for i, t in enumerate(path.tries)]
        best = None if path.best is None else tries[path.best]
        return {"budget": b, "threads": threads, "tries": tries, "best": best, "stopped": path.stopped}

    dirs: list[Path] = []
    path = search_lambda(search_at, base, target, tuple(base.input_shape), lam_low=b["lam_low"],
                         lam_high=b["lam_high"], max_tries=int(b["max_tries"]), tolerance=float(b["tolerance"]),
                         threads=threads, pairs=exp.bench.pairs,
                         log=lambda line: print(f"budget: {line}"),
                         on_try=lambda p: atomic_write_json(report(p), out / "budget.json"))
    result = report(path)
    atomic_write_json(result, out / "budget.json")
    return result
