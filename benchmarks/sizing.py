"""Is the default scale's equal-budget reference converged? (issue: scales)

The default sizing is credible if the equal-budget reference (the base trained through DARC's search and
fine-tune with the penalty off) is within 1 point of the same network trained **twice as long**. This trains
each experiment's base network with its base recipe for twice the reference's training images (the base's
epochs plus DARC's search and fine-tune images, rounded up to whole epochs) at the first seed, and compares
its validation and test accuracy with the first seed's reference of a finished default run.

    python benchmarks/sizing.py --out benchmarks/measured/DATE-sizing [--runs runs/default] [--workers 2]

``--train-only`` trains the long networks first (before or without a default run); a later call without it
finds them finished under ``--work`` and only compares.

``--base-epochs 8,12,16`` measures the **epoch curve** that picks the base's epochs: for each E, the base
recipe trained for E epochs and for twice the reference's images at E (both arms, each a fresh cosine run),
written to ``<out>/curve.md`` / ``curve.json``. Their gap, plus the reference's measured offset from its base,
predicts the criterion at E before a 60-minute default run is spent on it. ``--device cuda`` runs the arms on a
lent GPU, all at once (``--workers``); ``--data-root`` points at Fashion-MNIST where the Debian package is not
installed. An arm whose ``result.json`` is already under ``--work`` is read, not retrained (so arms trained on a
GPU compare later against a CPU default run).

Writes ``<out>/sizing.json`` (rows plus the environment) and ``<out>/sizing.md``; the long runs are kept
(resumable) under ``--work/<experiment>/epochs<N>`` (default ``runs/sizing``).
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

    train = TrainConfig.from_dict(exp["train"])
    per_epoch = images_per_epoch(train, n_train)
    reference_images = train.epochs * per_epoch + darc_images_after_base(exp, n_train)
    return with_base_epochs(exp, -(-2 * reference_images // per_epoch))


def with_base_epochs(exp: dict[str, Any], epochs: int) -> dict[str, Any]:
    """``exp`` with its base recipe trained for ``epochs`` (evaluated at the end only)."""
    out = copy.deepcopy(exp)
    out["train"]["epochs"] = out["train"]["eval_every"] = int(epochs)
    return out


def _run(job: dict[str, Any]) -> dict[str, Any]:
    from darc import experiment as E

    exp, out = job["exp"], Path(job["out"])
    done = out / "result.json"
    result = (json.loads(done.read_text()) if done.exists()
              else E.train_base(exp, out, scale="default", progress=False))
    return {"experiment": job["name"], "model": exp["model"], "epochs": exp["train"]["epochs"],
            "val_acc": result["val_acc"], "test_acc": result["test_acc"],
            "train_seconds": result["train_seconds"], "device": result.get("device", exp.get("device", "cpu")),
            "git_commit": result.get("git_commit")}


def _arm_job(name: str, exp: dict[str, Any], work: str) -> dict[str, Any]:
    return {"name": name, "exp": exp, "out": str(Path(work) / name / f"epochs{exp['train']['epochs']}")}


def _curve(config: dict[str, Any], args: argparse.Namespace, base_epochs: list[int]) -> None:
    """Train (or read) both arms of every E in ``base_epochs``; write ``curve.md`` / ``curve.json``."""
    from darc.bench.env import bench_environment
    from darc.io import atomic_write_json, atomic_write_text

    jobs, arms = {}, []
    for name, exp, n_train in _experiments(config, args):
        for e in base_epochs:
            base, long = with_base_epochs(exp, e), twice_as_long(with_base_epochs(exp, e), n_train)
            for arm in (base, long):
                job = _arm_job(name, arm, args.work)
                jobs[job["out"]] = job
            arms.append((name, e, long["train"]["epochs"]))
    ordered = sorted(jobs.values(), key=lambda j: -j["exp"]["train"]["epochs"])  # longest first
    with mp.get_context("spawn").Pool(min(args.workers, len(ordered))) as pool:
        rows = {(r["experiment"], r["epochs"]): r for r in pool.map(_run, ordered)}
    lines = ["| experiment | base epochs E | E: val / test % | twice the reference's images (epochs) val / test % "
             "| gap (test) |", "|---|---|---|---|---|"]
    curve = []
    for name, e, e2 in arms:
        b, t = rows[(name, e)], rows[(name, e2)]
        curve.append({"experiment": name, "base_epochs": e, "epochs_2x": e2, "base": b, "twice": t,
                      "gap_test": t["test_acc"] - b["test_acc"], "gap_val": t["val_acc"] - b["val_acc"]})
        lines.append(f"| {name} | {e} | {100 * b['val_acc']:.2f} / {100 * b['test_acc']:.2f} | ({e2}) "
                     f"{100 * t['val_acc']:.2f} / {100 * t['test_acc']:.2f} | "
                     f"{100 * (t['test_acc'] - b['test_acc']):+.2f} |")
    out = Path(args.out)
    atomic_write_json({"benchmark": "sizing-curve", "rows": curve, "environment": bench_environment()},
                      out / "curve.json")
    atomic_write_text("\n".join(lines) + "\n", out / "curve.md")
    print("\n".join(lines))


def _experiments(config: dict[str, Any], args: argparse.Namespace):
    """``(name, default-scale experiment at its first seed, training images)`` per experiment, with the
    command line's device, data root and step cap applied."""
    from darc.config import experiment_at_scale, experiment_for_seed, experiment_seeds
    from darc.experiment import load_data

    for name, raw in config["experiments"].items():
        exp = experiment_at_scale(raw, "default", name=name)
        exp = experiment_for_seed(exp, experiment_seeds(exp)[0])
        exp["device"] = args.device
        if args.data_root:
            exp["data_root"] = args.data_root
        if args.max_steps:
            exp["train"]["max_steps_per_epoch"] = args.max_steps
        yield name, exp, len(load_data(exp).train)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", default="runs/default", help="a finished default run (its references)")
    ap.add_argument("--work", default="runs/sizing")
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--train-only", action="store_true",
                    help="train the 2x-as-long networks (resumable) without a finished default run; compare later")
    ap.add_argument("--base-epochs", default=None,
                    help="comma-separated base epochs: measure the epoch curve (both arms per value) instead")
    ap.add_argument("--device", default="cpu", help="cpu, or cuda on a lent GPU")
    ap.add_argument("--data-root", default=None, help="Fashion-MNIST's folder (default: the Debian package's)")
    ap.add_argument("--max-steps", type=int, default=None, help="cap steps per epoch (a dry run of this script)")
    args = ap.parse_args()

    from darc.bench.env import bench_environment
    from darc.io import atomic_write_json, atomic_write_text

    config = yaml.safe_load(Path(args.config).read_text())
    if args.base_epochs:
        _curve(config, args, [int(e) for e in args.base_epochs.split(",")])
        return
    jobs, references = [], {}
    for name, exp, n_train in _experiments(config, args):
        ref_path = Path(args.runs) / name / f"seed{exp['seed']}" / "finetune" / "reference" / "result.json"
        if not ref_path.exists() and not args.train_only:
            raise SystemExit(f"no reference at {ref_path}: run the default workflow first (make reproduce)")
        if ref_path.exists():
            references[name] = json.loads(ref_path.read_text())
        jobs.append(_arm_job(name, twice_as_long(exp, n_train), args.work))
    with mp.get_context("spawn").Pool(min(args.workers, len(jobs))) as pool:
        rows = [{**r, "epochs_2x": r["epochs"], "val_acc_2x": r["val_acc"], "test_acc_2x": r["test_acc"]}
                for r in pool.map(_run, jobs)]
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
