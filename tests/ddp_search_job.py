"""A DARC experiment under torchrun (run by tests/test_ddp_search.py, not collected by pytest).

``torchrun --nproc_per_node=2 tests/ddp_search_job.py OUT`` trains a tiny base, searches at one lambda
and fine-tunes the result, every stage with DDP (gloo on CPU). The cost model is wrapped to add
rank-dependent noise (as independent latency measurements would) and to count its calls, so the test can
check that costs are measured once, on rank 0, and shared. Each rank then writes ``OUT/rank{R}.pt``:
its cost-model calls, costs and final gates.
"""

from __future__ import annotations

import sys
from pathlib import Path

from darc import costs, experiment
from darc.io import atomic_torch_save
from darc.train import distributed as D

EXP = {
    "dataset": "synthetic", "model": "wrn10_2", "threads": 1, "subset": [128, 64],
    "model_kwargs": {"input_size": 8},
    "train": {"epochs": 1, "batch_size": 16, "lr": 0.05, "schedule": "constant"},
    "search": {"lams": [2.0], "cost_model": "params", "calibration_samples": 8, "alternative_gate": 0.05,
               "candidates": ["original", {"alternative": "narrow", "ratio": 0.5}],
               "train": {"epochs": 2, "batch_size": 16, "lr": 0.05, "schedule": "constant"}},
    "finetune": {"epochs": 1, "batch_size": 16, "lr": 0.01, "schedule": "constant"},
}


def main(out: Path) -> None:
    info = D.init_distributed()
    calls = []
    params = costs.COST_MODELS.get("params")

    def noisy_params(base, slots, ctx):  # every rank would measure a different cost
        calls.append(1)
        total, raw, unit = params(base, slots, ctx)
        return total, {n: [c * (1 + 0.1 * info.rank) for c in v] for n, v in raw.items()}, unit

    costs.COST_MODELS._table["params"] = noisy_params
    experiment.train_base(EXP, out / "base", scale="smoke", progress=False)
    summary = experiment.search(EXP, 2.0, out / "base", out / "search", scale="smoke", progress=False)
    experiment.finetune_search(EXP, out / "search", out / "finetune", scale="smoke", progress=False)
    rows = summary["final_gates"]
    atomic_torch_save({"cost_calls": len(calls), "gates": [(r["slot"], r["candidate"], r["gate"]) for r in rows],
                       "costs": [r["cost"] for r in rows]}, out / f"rank{info.rank}.pt")
    D.barrier()
    D.cleanup()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
