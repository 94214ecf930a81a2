"""The bench stage on a finished run's latency matches, each timed against DARC's network in several fresh
processes (``bench.match_sessions``): what the points table would read with it. (issue: the recipe and the
lambda path, item 4)

    python benchmarks/studies/bench_match_sessions.py --run runs/default/imagenet_resnet --sessions 5 \
        --out benchmarks/measured/DATE-bench-match-sessions/imagenet_resnet

Benches only the DARC networks the matches were pruned to and the matched networks (peak memory off), through
:func:`darc.bench_stage.bench`; writes ``<out>/bench.csv`` and prints one line per row.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="an experiment's run folder, e.g. runs/default/imagenet_resnet")
    ap.add_argument("--sessions", type=int, default=5, help="bench.match_sessions")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    from darc.bench_stage import bench
    from darc.config import load_experiment

    run, out = Path(args.run), Path(args.out)
    matches = sorted(run.glob("seed*/tp/latency-lam*/prune.json"))
    if not matches:
        raise SystemExit(f"no latency-matched Torch-Pruning job under {run}/seed*/tp/: pass a finished run's "
                         "experiment folder, e.g. runs/default/imagenet_resnet")
    darc = list(dict.fromkeys(Path(json.loads(p.read_text())["darc_finetune"]) for p in matches))
    peers = [p.parent / "finetune" for p in matches]
    exp = load_experiment(run / "experiment.yaml",
                          [f"bench.match_sessions={args.sessions}", "bench.peak_memory=false"])
    t0 = time.perf_counter()
    rows = bench(exp, run / "seed0" / "base", [*darc, *peers], out / "bench.csv")
    for r in rows:
        print(json.dumps({k: r.get(k) for k in ("role", "seed", "lam", "timed_as", "match_sessions")
                          } | {k: v for k, v in r.items() if k.startswith(("speedup_b", "match_speedup_b"))}))
    print(f"seconds {time.perf_counter() - t0:.1f}")


if __name__ == "__main__":
    main()
