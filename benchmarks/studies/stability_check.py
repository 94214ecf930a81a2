"""Do the chosen points' decisions hinge on rounding? (issue: the recipe and the lambda path, item 3)

Reruns a run's searches at the given lambdas with other numerics (default: float32 instead of bfloat16
autocast, a proxy for another CPU's rounding) and optionally a longer search, from the same base and gated
start, and reports which slots decide differently, with every gate at the end of both searches (how far from
zero the deciding gates were).

    python benchmarks/studies/stability_check.py --run runs/default/cifar_wrn --lams 8 \
        --variant fp32=search.train.amp=false --out benchmarks/measured/DATE-stability/cifar_wrn

Writes ``<out>/stability.json`` and ``<out>/stability.md``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def flips(a: dict[str, list[str]], b: dict[str, list[str]]) -> dict[str, tuple[list[str], list[str]]]:
    """Slots whose kept candidates differ between two searches: slot -> (a's, b's)."""
    return {name: (a[name], b[name]) for name in a if sorted(a[name]) != sorted(b.get(name, []))}


def last_gates(search_dir: Path) -> dict[str, dict[str, float]]:
    """Every gate at the end of a search's training (``gates.jsonl``'s last time; before the one-candidate
    rule), slot -> candidate -> gate."""
    rows = [json.loads(line) for line in (search_dir / "gates.jsonl").read_text().splitlines()]
    end = max(r["t"] for r in rows)
    out: dict[str, dict[str, float]] = {}
    for r in rows:
        if r["t"] == end:
            out.setdefault(r["slot"], {})[r["candidate"]] = round(float(r["gate"]), 4)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="an experiment's run folder, e.g. runs/default/cifar_wrn")
    ap.add_argument("--lams", required=True, help="comma-separated lambdas whose searches are in the run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variant", action="append", required=True,
                    help="NAME=KEY=VALUE[,KEY=VALUE...]: overrides of one rerun, e.g. fp32=search.train.amp=false")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    from darc import experiment as E
    from darc.bench.env import bench_environment
    from darc.config import load_experiment
    from darc.io import atomic_write_json, atomic_write_text

    run, out = Path(args.run), Path(args.out)
    seed_dir = run / f"seed{args.seed}"
    start = seed_dir / "gated" / "start.pt"
    rows = []
    for spec in args.variant:
        name, _, overrides = spec.partition("=")
        sets = [o for o in overrides.split(",") if o]
        exp = load_experiment(run / "experiment.yaml", [f"seed={args.seed}", *sets,
                                                         f"search.latency_table={run / 'latency_table.json'}"])
        for lam in [float(v) for v in args.lams.split(",")]:
            ref = json.loads((seed_dir / "search" / f"lam{lam:g}" / "result.json").read_text())
            target = out / name / f"lam{lam:g}"
            if not (target / "result.json").exists():
                E.search(exp, lam, seed_dir / "base", target, progress=False, start=start if start.exists() else None)
            new = json.loads((target / "result.json").read_text())
            changed = flips(ref["kept"], new["kept"])
            rows.append({"variant": name, "overrides": sets, "lam": lam, "flips": changed,
                         "n_flips": len(changed), "kept_run": ref["kept"], "kept_variant": new["kept"],
                         "gates_run": last_gates(seed_dir / "search" / f"lam{lam:g}"),
                         "gates_variant": last_gates(target)})
            print(f"{name} lambda {lam:g}: {len(changed)} slot(s) flip {changed}", flush=True)
    atomic_write_json({"benchmark": "stability_check", "run": str(run), "rows": rows,
                       "environment": bench_environment("cpu", threads=1)}, out / "stability.json")
    lines = ["| variant | lambda | slots that flip | which |", "|---|---|---|---|"]
    for r in rows:
        which = "; ".join(f"{k}: {a} -> {b}" for k, (a, b) in r["flips"].items()) or "none"
        lines.append(f"| {r['variant']} | {r['lam']:g} | {r['n_flips']} | {which} |")
    atomic_write_text("\n".join(lines) + "\n", out / "stability.md")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
