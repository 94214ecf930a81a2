"""Is the default scale's equal-budget reference converged? (issue: scales)

The default sizing is credible if the equal-budget reference (the base trained through DARC's search and
fine-tune with the penalty off) is within 1 point of the same network trained **twice as long**. This trains
each experiment's base network with its base recipe for twice the reference's training images (the base's
epochs plus DARC's search and fine-tune images, rounded up to whole epochs) at the first seed, and compares
its validation and test accuracy with the first seed's reference of a finished default run.

    python benchmarks/sizing.py --out benchmarks/measured/DATE-sizing [--runs runs/default] [--workers 2]

``--train-only`` trains the long networks first (before or without a default run); a later call without it
finds them finished under ``--work`` and only compares.

Writes ``<out>/sizing.json`` (rows plus the environment) and ``<out>/sizing.md``; the long runs are kept
(resumable) under ``--work`` (default ``runs/sizing``).
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing as mp
from pathlib import Path
from typing import Any

import yaml


def twice_as_long(exp: dict[str, Any], n_train: int) -> dict[str, Any]:
    """``exp`` with its base recipe stretched to twice the equal-budget reference's training images."""
    from darc.peers.stages import darc_images_after_base, images_per_epoch
    from darc.train import TrainConfig

    out = copy.deepcopy(exp)
    train = TrainConfig.from_dict(exp["train"])
    per_epoch = images_per_epoch(train, n_train)
    reference_images = train.epochs * per_epoch + darc_images_after_base(exp, n_train)
    out["train"]["epochs"] = -(-2 * reference_images // per_epoch)
    out["train"]["eval_every"] = out["train"]["epochs"]
    return out


def _run(job: dict[str, Any]) -> dict[str, Any]:
    from darc import experiment as E

    exp, out = job["exp"], Path(job["out"])
    result = E.train_base(exp, out, scale="default", progress=False)
    return {"experiment": job["name"], "model": exp["model"], "epochs_2x": exp["train"]["epochs"],
            "val_acc_2x": result["val_acc"], "test_acc_2x": result["test_acc"],
            "train_seconds_2x": result["train_seconds"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", default="runs/default", help="a finished default run (its references)")
    ap.add_argument("--work", default="runs/sizing")
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--train-only", action="store_true",
                    help="train the 2x-as-long networks (resumable) without a finished default run; compare later")
    args = ap.parse_args()

    from darc.bench.env import bench_environment
    from darc.config import experiment_at_scale, experiment_for_seed, experiment_seeds
    from darc.experiment import load_data
    from darc.io import atomic_write_json, atomic_write_text

    config = yaml.safe_load(Path(args.config).read_text())
    jobs, references = [], {}
    for name, raw in config["experiments"].items():
        exp = experiment_at_scale(raw, "default", name=name)
        seed = experiment_seeds(exp)[0]
        exp = experiment_for_seed(exp, seed)
        ref_path = Path(args.runs) / name / f"seed{seed}" / "finetune" / "reference" / "result.json"
        if not ref_path.exists() and not args.train_only:
            raise SystemExit(f"no reference at {ref_path}: run the default workflow first (make reproduce)")
        if ref_path.exists():
            references[name] = json.loads(ref_path.read_text())
        long = twice_as_long(exp, len(load_data(exp).train))
        jobs.append({"name": name, "exp": long, "out": str(Path(args.work) / name)})
    with mp.get_context("spawn").Pool(min(args.workers, len(jobs))) as pool:
        rows = pool.map(_run, jobs)
    if args.train_only:
        print(json.dumps(rows, indent=1))
        return
    lines = ["| experiment | model | reference val / test % | 2x as long (epochs) val / test % | gap (test) |",
             "|---|---|---|---|---|"]
    for row in rows:
        ref = references[row["experiment"]]
        row.update({"reference_val_acc": ref["val_acc"], "reference_test_acc": ref["test_acc"],
                    "reference_commit": ref.get("git_commit"), "gap_test": row["test_acc_2x"] - ref["test_acc"],
                    "gap_val": row["val_acc_2x"] - ref["val_acc"]})
        row["within_1pt"] = row["gap_test"] <= 0.01
        lines.append(f"| {row['experiment']} | {row['model']} | {100 * ref['val_acc']:.2f} / "
                     f"{100 * ref['test_acc']:.2f} | ({row['epochs_2x']}) {100 * row['val_acc_2x']:.2f} / "
                     f"{100 * row['test_acc_2x']:.2f} | {100 * row['gap_test']:+.2f} |")
    out = Path(args.out)
    atomic_write_json({"benchmark": "sizing", "rows": rows, "environment": bench_environment()}, out / "sizing.json")
    atomic_write_text("\n".join(lines) + "\n", out / "sizing.md")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
