"""Do the chosen points' decisions hinge on rounding? (issue: the recipe and the lambda path, item 3)

Reruns a run's searches at the given lambdas with other numerics (default: float32 instead of bfloat16
autocast, a proxy for another CPU's rounding) and optionally a longer search, from the same base and gated
start, and reports which slots decide differently, with every gate at the end of both searches (how far from
zero the deciding gates were) and whether each search had settled (:func:`darc.gate_trace.settling`: did a
gate reach or leave zero in its last third).

    python benchmarks/studies/stability_check.py --run runs/default/cifar_wrn --lams 8 --seeds 0,1,2 \
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
    """Every gate at the end of a search's training (before the one-candidate rule), slot -> candidate ->
    |gate|, rounded to 4 places."""
    from darc.gate_trace import gates_at, logged_times, read_gate_log

    rows = read_gate_log(search_dir)
    return {slot: {c: round(g, 4) for c, g in gates.items()}
            for slot, gates in gates_at(rows, logged_times(rows)[-1]).items()}


def settled(search_dir: Path) -> dict[str, object]:
    """:func:`darc.gate_trace.settling` of a search, as a JSON-ready mapping (``settled`` included)."""
    from dataclasses import asdict

    from darc.gate_trace import read_gate_log, settling

    s = settling(read_gate_log(search_dir))
    return {**asdict(s), "settled": s.settled}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="an experiment's run folder, e.g. runs/default/cifar_wrn")
    ap.add_argument("--lams", required=True, help="comma-separated lambdas whose searches are in the run")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds whose searches are in the run")
    ap.add_argument("--variant", action="append", required=True,
                    help="NAME=KEY=VALUE[,KEY=VALUE...]: overrides of one rerun, e.g. fp32=search.train.amp=false")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    from darc import experiment as E
    from darc.bench.env import bench_environment
    from darc.config import load_experiment
    from darc.io import atomic_write_json, atomic_write_text

    run, out = Path(args.run), Path(args.out)
    rows = []
    for seed in [int(v) for v in args.seeds.split(",")]:
        seed_dir = run / f"seed{seed}"
        start = seed_dir / "gated" / "start.pt"
        for spec in args.variant:
            name, _, overrides = spec.partition("=")
            sets = [o for o in overrides.split(",") if o]
            exp = load_experiment(run / "experiment.yaml", [f"seed={seed}", *sets,
                                                             f"search.latency_table={run / 'latency_table.json'}"])
            for lam in [float(v) for v in args.lams.split(",")]:
                searched = seed_dir / "search" / f"lam{lam:g}"
                if not (searched / "result.json").exists():
                    continue  # this seed did not search this lambda (the other seeds rerun the chosen points only)
                ref = json.loads((searched / "result.json").read_text())
                target = out / name / f"seed{seed}" / f"lam{lam:g}"
                if not (target / "result.json").exists():
                    base = Path(ref.get("base") or seed_dir / "base")  # a shared base lives under the first seed
                    E.search(exp, lam, base, target, progress=False, start=start if start.exists() else None)
                new = json.loads((target / "result.json").read_text())
                changed = flips(ref["kept"], new["kept"])
                rows.append({"variant": name, "overrides": sets, "seed": seed, "lam": lam, "flips": changed,
                             "n_flips": len(changed), "kept_run": ref["kept"], "kept_variant": new["kept"],
                             "gates_run": last_gates(searched), "gates_variant": last_gates(target),
                             "settling_run": settled(searched), "settling_variant": settled(target)})
                print(f"{name} seed {seed} lambda {lam:g}: {len(changed)} slot(s) flip {changed}", flush=True)
    atomic_write_json({"benchmark": "stability_check", "run": str(run), "rows": rows,
                       "environment": bench_environment("cpu", threads=1)}, out / "stability.json")
    lines = ["| variant | seed | lambda | slots that flip | which | last third settled (run / variant) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        which = "; ".join(f"{k}: {a} -> {b}" for k, (a, b) in r["flips"].items()) or "none"
        moved = " / ".join(f"{'yes' if s['settled'] else 'no'} (largest move {s['max_change']:.3f})"
                           for s in (r["settling_run"], r["settling_variant"]))
        lines.append(f"| {r['variant']} | {r['seed']} | {r['lam']:g} | {r['n_flips']} | {which} | {moved} |")
    atomic_write_text("\n".join(lines) + "\n", out / "stability.md")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
