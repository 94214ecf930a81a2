"""Which search settings make DARC *replace* sub-components, not only drop them (issue: replacement).

Two settings, each rerunnable and deterministic (fixed seeds; the real one with one latency table):

* ``toy``: :mod:`darc.toy` (known answers: an exact cheaper copy, a useless slot, an irreplaceable slot),
  squared error to the base's outputs, parameter-byte costs;
* ``real``: an experiment of ``config/config.yaml`` at the default scale, first seed (Fashion-MNIST, a
  stand-in), its latency cost model with one table measured once; per variant and lambda a search,
  a fine-tune and a measured A/B benchmark against the base (timed one at a time after all training).

    python benchmarks/studies/replacement_ablation.py toy  --out benchmarks/measured/DATE-replacement
    python benchmarks/studies/replacement_ablation.py real --out benchmarks/measured/DATE-replacement [--workers 2]

Each writes ``<out>/<setting>.json`` (rows plus the environment) and ``<out>/<setting>.md`` (a table); the
real setting also ``<out>/latency_table.json`` (the table its searches used), and keeps its runs (base,
searches, fine-tunes: resumable) under ``--work`` (default ``runs/replacement_ablation``).
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing as mp
import time
from pathlib import Path
from typing import Any

import torch
import yaml

#: The choices studied: name -> search settings over the defaults of darc.search.SearchConfig.
_OFF = {"warmup_epochs": 0, "single_candidate": False}
VARIANTS: dict[str, dict[str, Any]] = {
    "old: fixed 1/0.05, no distillation": {**_OFF, "gate_init": "fixed", "alternative_gate": 0.05,
                                           "distill_steps": 0},
    "fixed 1/0.05 + distillation": {**_OFF, "gate_init": "fixed", "alternative_gate": 0.05, "distill_steps": 100},
    "fixed 1/0.5 + distillation": {**_OFF, "gate_init": "fixed", "alternative_gate": 0.5, "distill_steps": 100},
    "share + distillation": {**_OFF, "gate_init": "share", "original_share": None, "distill_steps": 100},
    "share + distillation + one per slot": {**_OFF, "gate_init": "share", "original_share": None,
                                            "distill_steps": 100, "single_candidate": True},
    "share + distillation + warm-up 1": {**_OFF, "gate_init": "share", "original_share": None, "distill_steps": 100,
                                         "warmup_epochs": 1},
    "share + distillation + one per slot, 2x longer": {**_OFF, "gate_init": "share", "original_share": None,
                                                       "distill_steps": 100, "single_candidate": True,
                                                       "epochs_factor": 2},
    "share, original 1/2, + distillation + one per slot": {**_OFF, "gate_init": "share", "original_share": 0.5,
                                                            "distill_steps": 100, "single_candidate": True},
}
TOY_CASES = {"exact copies": ["half"] * 4, "mixed": ["half", "zero", "full", "half"]}


def _env() -> dict[str, Any]:
    from darc.bench.env import bench_environment
    from darc.provenance import git_commit

    return {**bench_environment(), "git_commit": git_commit()}


def _variant_search(settings: dict[str, Any]) -> tuple[dict[str, Any], int]:
    settings = dict(settings)
    return settings, int(settings.pop("epochs_factor", 1))


def run_toy(lams: list[float], epochs: int, variants: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    from darc.search import SearchConfig
    from darc.toy import toy_inputs, toy_net, toy_search
    from darc.train import TrainConfig

    rows = []
    for variant, raw in variants.items():
        settings, factor = _variant_search(raw)
        train = TrainConfig(epochs=epochs * factor, batch_size=64, lr=0.05, momentum=0.9, weight_decay=5e-4,
                            schedule="constant")
        for case, kinds in TOY_CASES.items():
            for lam in lams:
                t0 = time.perf_counter()
                cfg = SearchConfig(lam=lam, train=train, calibration_samples=128, **settings)
                res = toy_search(toy_net(kinds, width=16), cfg, inputs=toy_inputs(size=8), seed=0)
                rows.append({"variant": variant, "case": case, "kinds": kinds, "lam": lam, **res["decisions"],
                             "kept_labels": res["kept"], "rel_mse": res["rel_mse"],
                             "rel_mse_drop_all": res["rel_mse_drop_all"],
                             "param_reduction": res["param_reduction"], "seconds": time.perf_counter() - t0})
                print(json.dumps({k: rows[-1][k] for k in ("variant", "case", "lam", "kept_labels", "rel_mse")}),
                      flush=True)
    return rows


def _real_job(job: dict[str, Any]) -> dict[str, Any]:
    """One search + fine-tune (a worker process, one thread)."""
    from darc import experiment as E

    torch.set_num_threads(1)
    exp, out = job["exp"], Path(job["out"])
    if not (out / "finetune" / "result.json").exists():
        E.search(exp, job["lam"], job["base"], out / "search", progress=False,
                 method="reference" if job["reference"] else "darc")
        E.finetune_search(exp, out / "search", out / "finetune", progress=False)
    result = json.loads((out / "finetune" / "result.json").read_text())
    return {**job, "result": result}


def run_real(out: Path, work: Path, experiment: str, lams: list[float], workers: int,
             variants: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    from darc import experiment as E
    from darc.config import experiment_at_scale, experiment_for_seed, experiment_seeds
    from darc.search import slot_decisions

    raw = yaml.safe_load(Path("config/config.yaml").read_text())["experiments"][experiment]
    exp = experiment_at_scale(raw, "default", name=experiment)
    exp = experiment_for_seed(exp, experiment_seeds(exp)[0])
    torch.set_num_threads(1)
    base_dir = work / "base"
    if not (base_dir / "result.json").exists():
        E.train_base(exp, base_dir, progress=False)
    table = out / "latency_table.json"
    versioned = exp["search"].get("latency_table")
    if not table.exists():
        E.measure_latency_table(exp, table, start_from=versioned)
    jobs = []
    for variant, settings in {"reference (equal budget)": {}, **variants}.items():
        search_settings, factor = _variant_search(settings)
        v = copy.deepcopy(exp)
        v["search"].update(search_settings, latency_table=str(table))
        v["search"]["train"]["epochs"] = v["search"]["train"]["epochs"] * factor
        reference = variant.startswith("reference")
        for lam in [0.0] if reference else lams:
            slug = "".join(c if c.isalnum() else "_" for c in variant)[:48]
            jobs.append({"variant": variant, "lam": lam, "exp": v, "base": str(base_dir), "reference": reference,
                         "out": str(work / "runs" / f"{slug}_lam{lam:g}")})
    with mp.get_context("spawn").Pool(workers) as pool:
        done = pool.map(_real_job, jobs, chunksize=1)
    # timing alone, after all training
    from darc.bench_stage import compare_to_base
    from darc.experiment import load_base
    from darc.peers.loading import load_finetuned

    base = load_base(exp, base_dir).eval()
    shape = tuple(base.input_shape)
    rows = []
    for job in done:
        res = job["result"]
        model = load_finetuned(Path(job["out"]) / "finetune").eval()
        timing = compare_to_base(base, model, shape, batch_sizes=[1, 64], threads=1, pairs=6, min_block_time=0.05)
        rows.append({"variant": job["variant"], "lam": job["lam"], **slot_decisions(res["kept"]),
                     "kept_labels": res["kept"],
                     "val_acc": res["val_acc"], "test_acc": res["test_acc"], "arch_cost": res["arch_cost"],
                     **{k: timing[k] for k in ("speedup_b1", "speedup_b64", "param_reduction", "macs_ratio")}})
        print(json.dumps({k: rows[-1][k] for k in ("variant", "lam", "replaced", "dropped", "val_acc", "speedup_b1")}),
              flush=True)
    return rows


def markdown(rows: list[dict[str, Any]], columns: list[str]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}"
        if isinstance(v, dict):
            return ", ".join(f"{k} x{n}" for k, n in v.items()) or "-"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("setting", choices=["toy", "real"])
    parser.add_argument("--out", required=True)
    parser.add_argument("--lams", type=float, nargs="+", default=None)
    parser.add_argument("--epochs", type=int, default=4, help="toy: search epochs of 100 steps")
    parser.add_argument("--experiment", default="cifar_wrn")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", default="runs/replacement_ablation", help="real: where the runs go")
    parser.add_argument("--variants", nargs="+", default=None, help="names of VARIANTS to run (default: all)")
    parser.add_argument("--name", default=None, help="record name (default: the setting)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0, env = time.perf_counter(), _env()  # the code this run starts with
    variants = {k: VARIANTS[k] for k in args.variants} if args.variants else VARIANTS
    name = args.name or args.setting
    if args.setting == "toy":
        torch.set_num_threads(1)
        rows = run_toy(args.lams or [1.0], args.epochs, variants)
        cols = ["variant", "case", "lam", "kept", "replaced", "mixed", "dropped", "replaced_by", "rel_mse",
                "param_reduction"]
    else:
        rows = run_real(out, Path(args.work), args.experiment, args.lams or [1.0, 2.0], args.workers, variants)
        cols = ["variant", "lam", "kept", "replaced", "mixed", "dropped", "replaced_by", "val_acc", "test_acc",
                "speedup_b1", "speedup_b64", "param_reduction"]
    from darc.io import atomic_write_json, atomic_write_text

    record = {"setting": args.setting, "args": vars(args), "seconds": time.perf_counter() - t0,
              "environment": env, "variants": variants, "rows": rows}
    atomic_write_json(record, out / f"{name}.json")
    atomic_write_text(markdown(rows, cols), out / f"{name}.md")
    print(markdown(rows, cols))


if __name__ == "__main__":
    main()
