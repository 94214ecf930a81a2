"""Which post-compression recipe? Each lever on a fixed setting, for DARC and for Torch-Pruning (issue: the recipe).

A finished default run gives, per protocol, a trained base, DARC's search at a fixed lambda and Torch-Pruning's
network matched to DARC's measured latency there. This fine-tunes both networks under each lever (a set of
``key=value`` overrides of the experiment, :data:`LEVERS`) with the library's own stages
(:func:`darc.experiment.finetune_search`, :func:`darc.peers.stages.prune_finetune`), so the recipe is exactly
the workflow's. A lever that changes the search (``joint``) searches again first. Levers are chosen on
validation accuracy; test accuracy is recorded beside it.

    python benchmarks/studies/recipe_ablation.py --run runs/default/cifar_wrn --point lam8 --seeds 0 \
        --levers today,distill,lr,rewind,budget12,joint,distill_lr --out benchmarks/measured/DATE-recipe/cifar_wrn

Writes ``<out>/ablation.json`` (one row per lever, method and seed, plus the environment) as it goes (a
rerun skips rows already there) and ``<out>/ablation.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

#: The recipe before the issue, stated in full (plain cross-entropy, cosine from lr 0.005 without warm-up), so a
#: lever means the same whichever recipe the run's own ``experiment.yaml`` carries.
TODAY: list[str] = ["finetune.distill={alpha: 0.0}", "finetune.lr=0.005", "finetune.warmup_epochs=0.0",
                    "finetune.schedule=cosine"]
_DISTILL = ["finetune.distill={alpha: 0.9, temperature: 4.0}"]
_LR = ["finetune.lr=0.02", "finetune.warmup_epochs=0.05"]
_JOINT = ["search.weights=train", "search.handoff=searched"]

#: Each lever as overrides of the experiment (``--set`` syntax), applied after :data:`TODAY` (later ones win).
LEVERS: dict[str, list[str]] = {
    "today": [],
    "distill": _DISTILL,
    "lr": _LR,
    "lr05": ["finetune.lr=0.05", "finetune.warmup_epochs=0.05"],
    "rewind": ["finetune.schedule=rewind"],
    "budget12": ["finetune.budget=0.12"],  # the paper's proportion after the base (10-14 %); today's is 4-6 %
    "joint": _JOINT,
    "distill_lr": [*_DISTILL, *_LR],
    "distill_budget12": [*_DISTILL, "finetune.budget=0.12"],
    "distill_lr_budget12": [*_DISTILL, *_LR, "finetune.budget=0.12"],
    "distill_lr_joint": [*_DISTILL, *_LR, *_JOINT],
}


def _changes_search(overrides: list[str]) -> bool:
    return any(o.startswith("search.") for o in overrides)


def run_lever(run: Path, point: str, seed: int, base_seed: int, lever: str, out: Path, *,
              methods: frozenset[str] = frozenset({"darc", "tp_latency"}), tp_family: str = "tp",
              ) -> list[dict[str, Any]]:
    """Fine-tune DARC's network at ``point`` (``darc``; searched again where the lever changes the search)
    and Torch-Pruning's latency match (``tp_latency``) under ``lever``, those of ``methods``; one row each."""
    from darc import experiment as E
    from darc.config import load_experiment
    from darc.peers import stages

    overrides = [*TODAY, *LEVERS[lever]]
    exp = load_experiment(run / "experiment.yaml", [f"seed={seed}", *overrides])
    base = run / f"seed{base_seed}" / "base"
    search = run / f"seed{seed}" / "search" / point
    if _changes_search(overrides) and "darc" in methods:
        lam = float(point.removeprefix("lam"))
        exp = load_experiment(run / "experiment.yaml", [f"seed={seed}", *overrides,
                                                         f"search.latency_table={run / 'latency_table.json'}"])
        search = out / lever / f"seed{seed}" / "search"
        if not (search / "result.json").exists():
            E.search(exp, lam, base, search, progress=False)
    rows = []
    if "darc" in methods:
        t0 = time.perf_counter()
        res = E.finetune_search(exp, search, out / lever / f"seed{seed}" / "darc", progress=False, base_dir=base)
        rows.append(_row(lever, "darc", seed, res, time.perf_counter() - t0))
    prune = run / f"seed{seed}" / tp_family / f"latency-{point}"
    if "tp_latency" in methods:
        if not (prune / "prune.json").exists():
            raise FileNotFoundError(f"{prune / 'prune.json'}: run the workflow's Torch-Pruning latency match first")
        t0 = time.perf_counter()
        res = stages.prune_finetune(exp, prune, out / lever / f"seed{seed}" / "tp_latency", progress=False,
                                    base_dir=base)
        rows.append(_row(lever, "tp_latency", seed, res, time.perf_counter() - t0))
    return rows


def _row(lever: str, method: str, seed: int, res: dict[str, Any], seconds: float) -> dict[str, Any]:
    keep = ("val_acc", "test_acc", "kept", "architecture", "pruned", "weights", "recipe_distill_alpha",
            "recipe_schedule", "recipe_lr", "recipe_images_after_base", "recipe_fraction_of_base")
    return {"lever": lever, "method": method, "seed": seed, "seconds": seconds,
            "overrides": LEVERS[lever], **{k: res.get(k) for k in keep}}


def measure(run: Path, rows: list[dict[str, Any]], base_seed: int) -> dict[str, dict[str, Any]]:
    """Speed-ups (interleaved A/B against the base, the bench's settings) and parameter bytes of each distinct
    network among ``rows``, keyed by its architecture signature."""
    from darc import experiment as E
    from darc.bench.signature import architecture_signature
    from darc.bench_stage import compare_to_base
    from darc.config import load_experiment
    from darc.peers.pruning import load_pruned_dir

    exp = load_experiment(run / "experiment.yaml", [f"seed={base_seed}"])
    E.set_threads(exp)
    b = exp.get("bench", {})
    data = E.load_data(exp)
    base = E.load_base(exp, run / f"seed{base_seed}" / "base").eval()
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row.get("pruned"):
            model = load_pruned_dir(lambda: E.base_model(exp, data), Path(row["pruned"]))
        else:
            from darc.materialize import load_materialized

            model = load_materialized(row["architecture"], row["weights"])
        sig = architecture_signature(model.eval())
        row["signature"] = sig
        if sig not in out:
            out[sig] = compare_to_base(base, model, tuple(data.meta.input_shape),
                                         batch_sizes=list(b.get("batch_sizes", [1, 64])),
                                         threads=int(b.get("threads") or 1), pairs=int(b.get("pairs", 10)),
                                         min_block_time=float(b.get("min_block_time", 0.05)))
    return out


def markdown(rows: list[dict[str, Any]], measured: dict[str, dict[str, Any]]) -> str:
    """One line per lever and method: val / test mean ± std over seeds, speed-ups, bytes, change vs today."""
    import statistics as st

    def pm(values: list[float]) -> str:
        values = [100 * v for v in values if v is not None]
        if not values:
            return "-"
        return f"{st.mean(values):.2f}" + (f" ± {st.stdev(values):.2f}" if len(values) > 1 else "")

    def mean(values: list[float]) -> float | None:
        values = [v for v in values if v is not None]
        return st.mean(values) if values else None

    lines = ["| lever | method | seeds | val % | test % | Δval vs today | Δtest vs today | b1 | batched | bytes | "
             "images after base |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["lever"], r["method"]), []).append(r)
    for (lever, method), rs in groups.items():
        today = groups.get(("today", method), [])
        seeds = sorted({r["seed"] for r in rs})
        base_v = mean([r["val_acc"] for r in today if r["seed"] in seeds])
        base_t = mean([r["test_acc"] for r in today if r["seed"] in seeds])
        dv = mean([r["val_acc"] for r in rs])
        dt = mean([r["test_acc"] for r in rs])
        m = measured.get(rs[0].get("signature", ""), {})
        batched = next((k for k in m if k.startswith("speedup_b") and k[9:].isdigit() and k != "speedup_b1"), "")
        cells = [lever, method, " ".join(map(str, seeds)), pm([r["val_acc"] for r in rs]),
                 pm([r["test_acc"] for r in rs]),
                 "-" if base_v is None or dv is None else f"{100 * (dv - base_v):+.2f}",
                 "-" if base_t is None or dt is None else f"{100 * (dt - base_t):+.2f}",
                 f"{m.get('speedup_b1', float('nan')):.2f}x",
                 f"{m.get(batched, float('nan')):.2f}x",
                 f"{m.get('param_reduction', float('nan')):.2f}x", str(rs[0].get("recipe_images_after_base"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="an experiment's run folder, e.g. runs/default/cifar_wrn")
    ap.add_argument("--point", required=True, help="DARC's search folder of the fixed lambda, e.g. lam8")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--base-seed", type=int, default=0, help="the seed whose base is shared (shared_base)")
    ap.add_argument("--levers", default="today,distill,lr,rewind,budget12,joint,distill_lr",
                    help=f"comma-separated, from {sorted(LEVERS)}")
    ap.add_argument("--tp-levers", default=None,
                    help="the levers Torch-Pruning's match also gets (default: all; 'none': DARC only)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    from darc.bench.env import bench_environment
    from darc.io import atomic_write_json, atomic_write_text

    levers = args.levers.split(",")
    unknown = sorted(set(levers) - set(LEVERS))
    if unknown:
        raise SystemExit(f"unknown levers {unknown}; choose from {sorted(LEVERS)}")
    run, out = Path(args.run), Path(args.out)
    record_path = out / "ablation.json"
    rows: list[dict[str, Any]] = json.loads(record_path.read_text())["rows"] if record_path.exists() else []
    done = {(r["lever"], r["seed"], r["method"]) for r in rows}
    for lever in levers:
        for seed in args.seeds:
            methods = {"darc"} | ({"tp_latency"} if args.tp_levers is None or lever in args.tp_levers.split(",")
                                  else set())
            methods = frozenset(m for m in methods if (lever, seed, m) not in done)
            if not methods:
                continue
            new = run_lever(run, args.point, seed, args.base_seed, lever, out, methods=methods)
            rows += new
            for r in new:
                print(f"{lever} {r['method']} seed {seed}: val {r['val_acc']:.4f} test {r['test_acc']:.4f} "
                      f"({r['seconds']:.0f} s)", flush=True)
            atomic_write_json({"benchmark": "recipe_ablation", "run": str(run), "point": args.point, "rows": rows,
                               "levers": {k: LEVERS[k] for k in levers}}, record_path)
    measured = measure(run, rows, args.base_seed)
    atomic_write_json({"benchmark": "recipe_ablation", "run": str(run), "point": args.point, "rows": rows,
                       "levers": {k: LEVERS[k] for k in levers}, "measured": measured,
                       "environment": bench_environment("cpu", threads=1)}, record_path)
    atomic_write_text(markdown(rows, measured), out / "ablation.md")
    print(markdown(rows, measured))


if __name__ == "__main__":
    main()
