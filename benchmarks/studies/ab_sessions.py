"""How far apart do the A/B ratios of one fixed pair of networks land in separate timing sessions? (issue: the
recipe and the lambda path, item 4)

For every seed's latency-matched Torch-Pruning network of a finished run, times the DARC network it was matched
to against it in ``--sessions`` fresh Python processes, one after another (seeds inner, sessions outer, so a
drift of the machine shows as a trend across rounds and a process effect as scatter within one). Each process
is one interleaved A/B session of the bench's protocol (``--pairs`` pairs at the experiment's cost batch) and
reports its median ratio t(DARC) / t(pruned). Across sessions: the spread (max / min of the medians). Where the
spread is wider than the 5 % a match allows, one session cannot decide whether a match holds.

    python benchmarks/studies/ab_sessions.py --run runs/default/imagenet_resnet --sessions 5 \
        --out benchmarks/measured/DATE-ab-sessions/imagenet_resnet

Writes ``<out>/sessions.json`` and ``<out>/sessions.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

#: How far from DARC's latency a match may land (the bench's rule).
TOLERANCE = 0.05


def one_session(experiment: str, seed: int, darc_dir: str, pruned_dir: str, pairs: int) -> dict[str, float]:
    """One interleaved A/B session in this process: DARC's network against the pruned one."""
    import torch

    from darc.bench.latency import compare_latency
    from darc.config import load_experiment
    from darc.inputs import load_data
    from darc.models import create_model
    from darc.peers.loading import load_finetuned
    from darc.peers.pruning import RECORD_NAME, load_pruned_dir
    from darc.spec import Experiment

    exp = Experiment.of(load_experiment(experiment, [f"seed={seed}"]))
    torch.set_num_threads(exp.timing_threads)
    record = json.loads((Path(pruned_dir) / RECORD_NAME).read_text())
    pruned = load_pruned_dir(lambda: create_model(record["model_name"], **record["model_kwargs"]),
                             Path(pruned_dir)).eval()
    darc = load_finetuned(darc_dir).eval()
    shape = tuple(load_data(exp).meta.input_shape)
    ab = compare_latency(darc, pruned, shape, exp.cost_batch_size, pairs=pairs, device=exp.device,
                         threads=exp.timing_threads, min_block_time=exp.bench.min_block_time)
    return {"ratio": float(ab.ratio_median), "q25": float(ab.ratio_q25), "q75": float(ab.ratio_q75),
            "darc_ms": 1e3 * float(ab.median_a_s), "pruned_ms": 1e3 * float(ab.median_b_s)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", help="an experiment's run folder, e.g. runs/default/imagenet_resnet")
    ap.add_argument("--sessions", type=int, default=5, help="fresh processes per pair of networks")
    ap.add_argument("--pairs", type=int, default=20, help="A/B pairs per session")
    ap.add_argument("--out")
    ap.add_argument("--one", nargs=4, metavar=("EXPERIMENT", "SEED", "DARC_DIR", "PRUNED_DIR"),
                    help=argparse.SUPPRESS)   # a child process: one session, JSON on stdout
    args = ap.parse_args(argv)
    if args.one:
        experiment, seed, darc_dir, pruned_dir = args.one
        print(json.dumps(one_session(experiment, int(seed), darc_dir, pruned_dir, args.pairs)))
        return
    if not args.run or not args.out:
        ap.error("--run and --out are required")

    from darc.bench.env import bench_environment
    from darc.io import atomic_write_json, atomic_write_text

    run, out = Path(args.run), Path(args.out)
    matches = sorted(run.glob("seed*/tp/latency-lam*/prune.json"))
    if not matches:
        raise SystemExit(f"no latency-matched Torch-Pruning job under {run}/seed*/tp/: pass a finished run's "
                         "experiment folder, e.g. runs/default/imagenet_resnet")
    pairs = [(int(p.parts[-4].removeprefix("seed")), json.loads(p.read_text())["darc_finetune"],
              str(p.parent / "pruned")) for p in matches]
    sessions: dict[int, list[dict[str, float]]] = {seed: [] for seed, _, _ in pairs}
    for round_ in range(args.sessions):
        for seed, darc_dir, pruned_dir in pairs:
            child = subprocess.run(
                [sys.executable, __file__, "--pairs", str(args.pairs), "--one", str(run / "experiment.yaml"),
                 str(seed), darc_dir, pruned_dir], check=True, capture_output=True, text=True)
            sessions[seed].append({"round": round_, **json.loads(child.stdout.strip().splitlines()[-1])})
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
