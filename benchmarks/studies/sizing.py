"""Is the default scale's equal-budget reference converged? (issue: scales)

The default sizing is credible if the equal-budget reference (the base trained through DARC's search and
fine-tune with the penalty off; mean over its seeds, the first seed's shown beside it) is within 1 point of the
same network trained **twice as long**. This trains
each experiment's base network with its base recipe for twice the reference's training images (the base's
epochs plus DARC's search and fine-tune images, rounded up to whole epochs), at the first seed or at
``--seeds``, and compares its validation and test accuracy with the references of a finished default run.

    python benchmarks/studies/sizing.py --out benchmarks/measured/DATE-sizing [--runs runs/default] [--workers 2]

``--train-only`` trains the long networks first (before or without a default run); a later call without it
finds them finished under ``--work`` and only compares.

``--base-epochs 8,12,16`` measures the **epoch curve** that picks the base's epochs: for each E, the base
recipe trained for E epochs and for twice the reference's images at E (both arms, each a fresh cosine run),
written to ``<out>/curve.md`` / ``curve.json``. Their gap, plus the reference's measured offset from its base,
predicts the criterion at E before a 60-minute default run is spent on it. ``--device cuda`` runs the arms on a
lent GPU, all at once (``--workers``); ``--data-root`` points at Fashion-MNIST where the Debian package is not
installed; ``--seeds 0,1,2`` trains every arm from several base seeds (same data split; mean ± std);
``--experiments`` sizes some of the config's experiments only. An arm whose ``result.json`` is already under
``--work`` is read, not retrained (so arms trained on a GPU compare later against a CPU default run).

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


def with_base_seed(exp: dict[str, Any], seed: int) -> dict[str, Any]:
    """``exp`` with its base network's initialisation and data order drawn from ``seed`` (the data split
    unchanged: every arm validates on the same images)."""
    out = copy.deepcopy(exp)
    out["seed"] = out["train"]["seed"] = int(seed)
    return out


def _run(job: dict[str, Any]) -> dict[str, Any]:
    from darc import experiment as E

    exp, out = job["exp"], Path(job["out"])
    done = out / "result.json"
    result = (json.loads(done.read_text()) if done.exists()
              else E.train_base(exp, out, scale="default", progress=False))
    return {"experiment": job["name"], "model": exp["model"], "epochs": exp["train"]["epochs"],
            "seed": exp["train"]["seed"], "val_acc": result["val_acc"], "test_acc": result["test_acc"],
            "train_seconds": result["train_seconds"], "device": result.get("device", exp.get("device", "cpu")),
            "git_commit": result.get("git_commit")}


def _arm_jobs(name: str, exp: dict[str, Any], work: str, seeds: list[int]) -> list[dict[str, Any]]:
    """One job per base seed; the first seed's run lives at ``<work>/<name>/epochs<N>``, others beside it."""
    first, jobs = exp["train"]["seed"], []
    for seed in seeds or [first]:
        tail = "" if seed == first else f"-seed{seed}"
        jobs.append({"name": name, "exp": with_base_seed(exp, seed),
                     "out": str(Path(work) / name / f"epochs{exp['train']['epochs']}{tail}")})
    return jobs


def _pool_rows(jobs: list[dict[str, Any]], workers: int) -> dict[tuple[str, int], list[dict[str, Any]]]:
    """Run (or read) ``jobs``, longest first; rows grouped by (experiment, epochs)."""
    ordered = sorted(jobs, key=lambda j: -j["exp"]["train"]["epochs"])
    with mp.get_context("spawn").Pool(max(1, min(workers, len(ordered)))) as pool:
        rows = pool.map(_run, ordered)
    grouped: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault((row["experiment"], row["epochs"]), []).append(row)
    return grouped


def _acc(rows: list[dict[str, Any]], key: str) -> tuple[float, float]:
    from darc.selection import mean_std

    mean, std, _ = mean_std([r[key] for r in rows])
    return mean, std


def _fmt(rows: list[dict[str, Any]]) -> str:
    """``val / test %`` of one run; of several, the val mean / test ``mean ± std (n seeds)``."""
    if len(rows) == 1:
        return f"{100 * rows[0]['val_acc']:.2f} / {100 * rows[0]['test_acc']:.2f}"
    (vm, _), (tm, ts) = _acc(rows, "val_acc"), _acc(rows, "test_acc")
    return f"{100 * vm:.2f} / {100 * tm:.2f} ± {100 * ts:.2f} ({len(rows)} seeds)"


def _curve(config: dict[str, Any], args: argparse.Namespace, base_epochs: list[int], seeds: list[int]) -> None:
    """Train (or read) both arms of every E in ``base_epochs``; write ``curve.md`` / ``curve.json``."""
    from darc.bench.env import bench_environment
    from darc.io import atomic_write_json, atomic_write_text

    jobs, arms = {}, []
    for name, exp, n_train in _experiments(config, args):
        for e in base_epochs:
            base, long = with_base_epochs(exp, e), twice_as_long(with_base_epochs(exp, e), n_train)
            for arm in (base, long):
                jobs.update({job["out"]: job for job in _arm_jobs(name, arm, args.work, seeds)})
            arms.append((name, e, long["train"]["epochs"]))
    rows = _pool_rows(list(jobs.values()), args.workers)
    lines = ["| experiment | base epochs E | E: val / test % | twice the reference's images (epochs) val / test % "
             "| gap (test) |", "|---|---|---|---|---|"]
    curve = []
    for name, e, e2 in arms:
        b, t = rows[(name, e)], rows[(name, e2)]
        gap_test = _acc(t, "test_acc")[0] - _acc(b, "test_acc")[0]
        curve.append({"experiment": name, "base_epochs": e, "epochs_2x": e2, "base": b, "twice": t,
                      "gap_test": gap_test, "gap_val": _acc(t, "val_acc")[0] - _acc(b, "val_acc")[0]})
        lines.append(f"| {name} | {e} | {_fmt(b)} | ({e2}) {_fmt(t)} | {100 * gap_test:+.2f} |")
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

    wanted = args.experiments.split(",") if getattr(args, "experiments", None) else list(config["experiments"])
    unknown = sorted(set(wanted) - set(config["experiments"]))
    if unknown:
        raise SystemExit(f"--experiments: {unknown} not in {args.config}; it has {sorted(config['experiments'])}")
    for name, raw in config["experiments"].items():
        if name not in wanted:
            continue
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
    ap.add_argument("--seeds", default=None,
                    help="comma-separated base seeds for every arm (default: the first seed only)")
    ap.add_argument("--experiments", default=None,
                    help="comma-separated experiments of the config to size (default: all)")
    ap.add_argument("--max-steps", type=int, default=None, help="cap steps per epoch (a dry run of this script)")
    args = ap.parse_args()

    from darc.bench.env import bench_environment
    from darc.io import atomic_write_json, atomic_write_text

    config = yaml.safe_load(Path(args.config).read_text())
    seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else []
    if args.base_epochs:
        _curve(config, args, [int(e) for e in args.base_epochs.split(",")], seeds)
        return
    jobs, references = [], {}
    for name, exp, n_train in _experiments(config, args):
        paths = [Path(args.runs) / name / f"seed{s}" / "finetune" / "reference" / "result.json"
                 for s in exp.get("seeds") or [exp["seed"]]]
        if not paths[0].exists() and not args.train_only:
            raise SystemExit(f"no reference at {paths[0]}: run the default workflow first (make reproduce)")
        references[name] = [json.loads(p.read_text()) for p in paths if p.exists()]
        jobs += _arm_jobs(name, twice_as_long(exp, n_train), args.work, seeds)
    grouped = _pool_rows(jobs, args.workers)
    if args.train_only:
        print(json.dumps([r for rs in grouped.values() for r in rs], indent=1))
        return
    lines = ["| experiment | model | reference val / test %, first seed | reference test %, mean ± std (seeds) "
             "| 2x as long (epochs) val / test % | gap (test): first seed / mean |", "|---|---|---|---|---|---|"]
    rows = []
    for (name, epochs_2x), arm in grouped.items():
        refs = references[name]
        ref, (ref_mean, ref_std), (long_mean, _) = refs[0], _acc(refs, "test_acc"), _acc(arm, "test_acc")
        row = {"experiment": name, "model": arm[0]["model"], "epochs_2x": epochs_2x, "arms": arm,
               "val_acc_2x": _acc(arm, "val_acc")[0], "test_acc_2x": long_mean,
               "reference_val_acc": ref["val_acc"], "reference_test_acc": ref["test_acc"],
               "reference_test_mean": ref_mean, "reference_test_std": ref_std, "reference_seeds": len(refs),
               "reference_commit": ref.get("git_commit"), "gap_test": long_mean - ref["test_acc"],
               "gap_test_mean": long_mean - ref_mean, "gap_val": _acc(arm, "val_acc")[0] - ref["val_acc"]}
        row["within_1pt"] = row["gap_test_mean"] <= 0.01
        rows.append(row)
        lines.append(f"| {name} | {row['model']} | {100 * ref['val_acc']:.2f} / {100 * ref['test_acc']:.2f} | "
                     f"{100 * ref_mean:.2f} ± {100 * ref_std:.2f} ({len(refs)}) | ({epochs_2x}) {_fmt(arm)} | "
                     f"{100 * row['gap_test']:+.2f} / {100 * row['gap_test_mean']:+.2f} |")
    out = Path(args.out)
    atomic_write_json({"benchmark": "sizing", "rows": rows, "environment": bench_environment()}, out / "sizing.json")
    atomic_write_text("\n".join(lines) + "\n", out / "sizing.md")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
