"""How far apart do the A/B ratios of one fixed pair of networks land in separate timing sessions? (issue: the
recipe and the lambda path, item 4)

For every seed's latency-matched Torch-Pruning network of a finished run, times the DARC network it was matched
to against it in ``--sessions`` fresh Python processes, one after another (seeds inner, sessions outer, so a
drift of the machine shows as a trend across rounds and a process effect as scatter within one). Each process
is one interleaved A/B session of the bench's protocol (``--pairs`` pairs at the experiment's cost batch) and
reports its median ratio t(DARC) / t(pruned) (:func:`darc.match_timing.session_in_fresh_process`, the
bench's own child, on the matched network as fine-tuned: the pruned architecture). Across sessions: the spread
(max / min of the medians). Where the spread is wider than the 5 % a match allows, one session cannot decide
whether a match holds.

    python benchmarks/studies/ab_sessions.py --run runs/default/imagenet_resnet --sessions 5 \
        --out benchmarks/measured/DATE-ab-sessions/imagenet_resnet

Writes ``<out>/sessions.json`` and ``<out>/sessions.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from darc.selection import MATCH_TOLERANCE as TOLERANCE  # the bench's rule


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="an experiment's run folder, e.g. runs/default/imagenet_resnet")
    ap.add_argument("--sessions", type=int, default=5, help="fresh processes per pair of networks")
    ap.add_argument("--pairs", type=int, default=20, help="A/B pairs per session")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    from darc.bench.env import bench_environment
    from darc.config import load_experiment
    from darc.inputs import load_data
    from darc.io import atomic_write_json, atomic_write_text
    from darc.match_timing import session_in_fresh_process
    from darc.spec import Experiment

    run, out = Path(args.run), Path(args.out)
    matches = sorted(run.glob("seed*/tp/latency-lam*/prune.json"))
    if not matches:
        raise SystemExit(f"no latency-matched Torch-Pruning job under {run}/seed*/tp/: pass a finished run's "
                         "experiment folder, e.g. runs/default/imagenet_resnet")
    exp = Experiment.of(load_experiment(run / "experiment.yaml"))
    shape = tuple(load_data(exp).meta.input_shape)
    # the fine-tuned matched network: the pruned network's architecture, the weights the bench loads
    pairs = [(int(p.parts[-4].removeprefix("seed")), json.loads(p.read_text())["darc_finetune"],
              p.parent / "finetune") for p in matches]
    sessions: dict[int, list[dict[str, float]]] = {seed: [] for seed, _, _ in pairs}
    for round_ in range(args.sessions):
        for seed, darc_dir, peer_dir in pairs:
            done = session_in_fresh_process(darc_dir, peer_dir, shape, exp.cost_batch_size,
                                            threads=exp.timing_threads, pairs=args.pairs,
                                            min_block_time=exp.bench.min_block_time, device=exp.device)
            sessions[seed].append({"round": round_, **done})
            print(json.dumps({"seed": seed, **sessions[seed][-1]}), flush=True)
    rows = []
    for seed, done in sessions.items():
        ratios = [s["ratio"] for s in done]
        rows.append({"seed": seed, "sessions": done, "median": statistics.median(ratios), "min": min(ratios),
                     "max": max(ratios), "spread": max(ratios) / min(ratios),
                     "holds": [abs(r - 1.0) <= TOLERANCE for r in ratios]})
    atomic_write_json({"benchmark": "ab_sessions", "run": str(run), "pairs": args.pairs,
                       "sessions": args.sessions, "tolerance": TOLERANCE, "rows": rows,
                       "environment": bench_environment("cpu", threads=1)}, out / "sessions.json")
    lines = ["| seed | t(DARC) / t(pruned), one per session | median | max / min | sessions where it holds |",
             "|---|---|---|---|---|"]
    for r in rows:
        each = ", ".join(f"{s['ratio']:.3f}" for s in r["sessions"])
        lines.append(f"| {r['seed']} | {each} | {r['median']:.3f} | {r['spread']:.3f} | "
                     f"{sum(r['holds'])} of {len(r['holds'])} |")
    atomic_write_text("\n".join(lines) + "\n", out / "sessions.md")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
