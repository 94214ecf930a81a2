"""Does redoing the crossing step in sub-steps make Torch-Pruning's latency match hold? (issue: the recipe and
the lambda path, item 4)

On a finished run, for every seed's latency-matched Torch-Pruning job of an experiment, prunes the same base
again with the run's experiment and ``peers.prune.refine_steps`` (``--refine``), through the workflow's own
stage (:func:`darc.peers.stages.prune_to_match`), then times DARC's fine-tuned network against the run's
pruned network and against the refined one in one interleaved A/B session (the bench's protocol at the
experiment's cost batch, ``--pairs`` pairs). A match holds where DARC's time over the pruned network's lies
within 5 % of 1. Pruned networks are timed before fine-tuning (fine-tuning does not change their shape).

    python benchmarks/studies/prune_refinement.py --run runs/default/cifar_wrn --refine 8 \
        --out benchmarks/measured/DATE-prune-refinement/cifar_wrn

Writes ``<out>/refinement.json`` and ``<out>/refinement.md``; the refined networks under ``<out>/seed<S>``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from darc.selection import MATCH_TOLERANCE as TOLERANCE  # the bench's rule


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="an experiment's run folder, e.g. runs/default/cifar_wrn")
    ap.add_argument("--refine", type=int, default=8, help="peers.prune.refine_steps for the new matches")
    ap.add_argument("--pairs", type=int, default=20, help="A/B pairs of the final comparison")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    import torch

    from darc.bench.env import bench_environment
    from darc.bench.latency import compare_latency
    from darc.config import load_experiment
    from darc.inputs import load_data
    from darc.io import atomic_write_json, atomic_write_text
    from darc.models import create_model
    from darc.peers.loading import load_finetuned
    from darc.peers.pruning import RECORD_NAME, load_pruned_dir
    from darc.peers.stages import prune_to_match
    from darc.spec import Experiment

    def pruned(folder: Path) -> torch.nn.Module:
        record = json.loads((folder / RECORD_NAME).read_text())
        return load_pruned_dir(lambda: create_model(record["model_name"], **record["model_kwargs"]), folder).eval()

    run, out = Path(args.run), Path(args.out)
    shape: tuple[int, ...] | None = None
    matches = sorted(run.glob("seed*/tp/latency-lam*/prune.json"))
    if not matches:
        raise SystemExit(f"no latency-matched Torch-Pruning job under {run}/seed*/tp/: pass a finished run's "
                         "experiment folder, e.g. runs/default/cifar_wrn")
    rows: list[dict[str, Any]] = []
    for old_record_path in matches:
        old = json.loads(old_record_path.read_text())
        seed = int(old_record_path.parts[-4].removeprefix("seed"))
        exp = Experiment.of(load_experiment(run / "experiment.yaml",
                                            [f"seed={seed}", f"peers.prune.refine_steps={args.refine}"]))
        new_dir = out / f"seed{seed}"
        if not (new_dir / "prune.json").exists():
            prune_to_match(exp, old["pruned_from"], old["darc_finetune"], "latency", new_dir)
        new = json.loads((new_dir / "prune.json").read_text())
        torch.set_num_threads(exp.timing_threads)
        darc = load_finetuned(old["darc_finetune"]).eval()
        shape = shape or tuple(load_data(exp).meta.input_shape)   # one load: every seed shares the data

        row: dict[str, Any] = {"seed": seed, "lam": old["lam"], "darc_finetune": old["darc_finetune"]}
        for name, folder, record in (("coarse", old_record_path.parent / "pruned", old),
                                     ("refined", new_dir / "pruned", new)):
            ab = compare_latency(darc, pruned(folder), shape, exp.cost_batch_size, pairs=args.pairs,
                                 device=exp.device, threads=exp.timing_threads,
                                 min_block_time=exp.bench.min_block_time)
            speed = float(ab.ratio_median)   # t(DARC) / t(pruned): above 1, the pruned network is faster
            row[name] = {"match_job_ratio": record["measured"], "steps_taken": record["steps_taken"],
                         "sub_steps": record.get("sub_steps", 0), "ratio": record["ratio"],
                         "darc_over_pruned": speed, "quartiles": [ab.ratio_q25, ab.ratio_q75],
                         "holds": abs(speed - 1.0) <= TOLERANCE}
        rows.append(row)
        print(json.dumps(row), flush=True)
    atomic_write_json({"benchmark": "prune_refinement", "run": str(run), "refine_steps": args.refine,
                       "pairs": args.pairs, "tolerance": TOLERANCE, "rows": rows,
                       "environment": bench_environment("cpu", threads=1)}, out / "refinement.json")
    lines = ["| seed | lambda | coarse: steps | coarse: DARC / pruned | holds | refined: steps + sub-steps | "
             "refined: DARC / pruned | holds |", "|---" * 8 + "|"]
    for r in rows:
        c, f = r["coarse"], r["refined"]
        whole = f["steps_taken"] - (1 if f["sub_steps"] else 0)
        lines.append(f"| {r['seed']} | {r['lam']:g} | {c['steps_taken']} | {c['darc_over_pruned']:.3f}x | "
                     f"{'yes' if c['holds'] else 'no'} | {whole} + {f['sub_steps']}/{args.refine} | "
                     f"{f['darc_over_pruned']:.3f}x | {'yes' if f['holds'] else 'no'} |")
    atomic_write_text("\n".join(lines) + "\n", out / "refinement.md")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
