"""Does the refined lambda path find networks that drop some branches and narrow others? (issue: the recipe
and the lambda path)

On a finished run's first seed (its base, gated start and latency table), :func:`darc.lampath.refine_path`
searches the given grid (a search already in the run is read, not repeated, unless ``--set`` changes the
search) and bisects where neighbouring
lambdas differ in more than one slot. Every point that mixes drops and replacements is then fine-tuned with
the experiment's recipe (``--set`` overrides, e.g. the recipe chosen by ``recipe_ablation.py``) and measured
against the base (interleaved A/B, the bench's settings).

    python benchmarks/studies/lam_path_study.py --run runs/default/cifar_wrn --lams 8,64 --max-searches 6 \
        --set 'finetune.distill={alpha: 0.9}' --out benchmarks/measured/DATE-lam-path/cifar_wrn

With ``--continuation`` each lambda's search starts where the nearest lower lambda's search ended
(:func:`darc.search.continuation_start`), not from the level start: a warm-started lambda path.

Writes ``<out>/path.json`` (every point: lambda, decisions, and for mixed points val / test accuracy and
measured ratios) and ``<out>/path.md``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="an experiment's run folder, e.g. runs/default/cifar_wrn")
    ap.add_argument("--lams", required=True, help="comma-separated grid to refine, e.g. 8,64")
    ap.add_argument("--max-searches", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], help="KEY=VALUE overrides (the fine-tune's recipe)")
    ap.add_argument("--no-finetune", action="store_true", help="only the path's decisions")
    ap.add_argument("--no-start", action="store_true",
                    help="gate and distill in each search instead of reading the run's gated start (needed where "
                         "--set changes a gating field, e.g. search.revive)")
    ap.add_argument("--continuation", action="store_true",
                    help="start each lambda from the gates the nearest lower lambda's search ended with")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    from darc import experiment as E
    from darc.bench.env import bench_environment
    from darc.bench_stage import compare_to_base
    from darc.config import load_experiment
    from darc.io import atomic_write_json, atomic_write_text
    from darc.lampath import refine_path
    from darc.peers.loading import load_finetuned
    from darc.search import continuation_start

    run, out = Path(args.run), Path(args.out)
    seed_dir = run / f"seed{args.seed}"
    exp = load_experiment(run / "experiment.yaml", [f"seed={args.seed}", *args.set,
                                                     f"search.latency_table={run / 'latency_table.json'}"])
    base = seed_dir / "base"
    start = seed_dir / "gated" / "start.pt"
    where: dict[float, Path] = {}

    def search(lam: float) -> dict[str, list[str]]:
        done = seed_dir / "search" / f"lam{lam:g}"
        lower = max((lo for lo in where if lo < lam), default=None) if args.continuation else None
        reuse = (done / "result.json").exists() and lower is None and not any(o.startswith("search.")
                                                                                  for o in args.set)
        target = done if reuse else out / "search" / f"lam{lam:.4g}"
        first = start if start.exists() and not args.no_start else None
        if lower is not None:
            first = continuation_start(start, where[lower], out / "search" / f"from{lower:.4g}.pt")
        if not (target / "result.json").exists():
            E.search(exp, lam, base, target, progress=False, start=first)
        where[lam] = target
        kept = json.loads((target / "result.json").read_text())["kept"]
        print(f"lambda {lam:.4g}: {kept}", flush=True)
        return kept

    path = refine_path(search, [float(v) for v in args.lams.split(",")], max_searches=args.max_searches)
    rows: list[dict[str, Any]] = [{"lam": p.lam, "refined": p.refined, "kept": p.kept, "replaced": p.replaced,
                                   "dropped": p.dropped, "search": str(where[p.lam])} for p in path]
    if not args.no_finetune:
        base_model = E.load_base(exp, base).eval()
        shape = tuple(E.load_data(exp).meta.input_shape)
        b = exp.get("bench", {})
        for row, point in zip(rows, path):
            if not point.mixes_drops_and_replacements:
                continue
            res = E.finetune_search(exp, row["search"], out / "finetune" / f"lam{point.lam:.4g}", progress=False,
                                    base_dir=base)
            row.update({"val_acc": res["val_acc"], "test_acc": res["test_acc"]})
            row.update(compare_to_base(base_model, load_finetuned(out / "finetune" / f"lam{point.lam:.4g}"),
                                         shape, batch_sizes=list(b.get("batch_sizes", [1, 64])),
                                         threads=int(b.get("threads") or 1), pairs=int(b.get("pairs", 10)),
                                         min_block_time=float(b.get("min_block_time", 0.05))))
            print(f"lambda {point.lam:.4g}: val {row['val_acc']:.4f} b1 {row.get('speedup_b1', 0):.2f}x", flush=True)
    atomic_write_json({"benchmark": "lam_path_study", "run": str(run), "grid": args.lams, "overrides": args.set,
                       "continuation": args.continuation,
                       "rows": rows, "environment": bench_environment("cpu", threads=1)}, out / "path.json")
    lines = ["| lambda | refined | replaced | dropped | val % | test % | b1 | bytes |", "|---" * 8 + "|"]
    for r in rows:
        acc = [f"{100 * r[k]:.2f}" if r.get(k) is not None else "-" for k in ("val_acc", "test_acc")]
        ratios = [f"{r[k]:.2f}x" if r.get(k) is not None else "-" for k in ("speedup_b1", "param_reduction")]
        lines.append(f"| {r['lam']:.4g} | {r['refined']} | {r['replaced']} | {r['dropped']} | {' | '.join(acc)} | "
                     f"{' | '.join(ratios)} |")
    atomic_write_text("\n".join(lines) + "\n", out / "path.md")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
