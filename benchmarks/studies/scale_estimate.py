"""What would a scale cost on this machine? Training images per experiment, counted from the config, over
measured training throughput (issue: scales, "state the estimated hours on 2 and 8 cores").

Counts, per experiment at ``--scale`` (default ``extended``), the training images of every job the workflow
would run, in the worst case (every operating point a different lambda that changes the network, so each
brings its peers): bases, the first seed's lambda grid, the chosen points at the other seeds, the equal-budget
reference at every seed, the grid peers (SSS, ``darc_*``), random decisions, from scratch, Torch-Pruning
(and its BN-scale sparsity phase). Search images are **gated** (every branch with all its candidates), the
rest plain; both are divided by the throughput a ``train_precision`` record measured for that network in the
experiment's precision (``python benchmarks/tools/run.py train_precision --models extended --gated``), or, for a GPU,
a ``gpu_check --plans extended`` record (steady-state plain and gated img/s of one job on the GPU; with
``--concurrent`` the records of copies run at once, for the gain of jobs sharing it). Peers' smaller
networks are counted at the base network's speed, evaluation passes and pruning steps not at all, and the
jobs are assumed to pack the cores (1 thread each): an estimate, not a run.

    python benchmarks/studies/scale_estimate.py --throughput benchmarks/measured/DATE/train_precision_extended.json \
        --out benchmarks/measured/DATE
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from darc.config import GRID_SEARCH_PEERS, experiment_at_scale, experiment_seeds, peer_seeds
from darc.recipe import (
    darc_finetune_images,
    darc_search_images,
    images_per_epoch,
    peer_recipe,
    pruned_finetune_recipe,
    scratch_recipe,
    sparsity_recipe,
    train_section,
)


def image_counts(exp: dict[str, Any], n_train: int) -> dict[str, dict[str, int]]:
    """Job family -> {"plain": images, "gated": images} of one experiment's workflow (the worst case above)."""
    seeds, peers = experiment_seeds(exp), exp.get("peers", {}) or {}
    methods = peers.get("methods", [])
    points = len(exp.get("selection", {}).get("points", {"no_loss": 0.0}))
    per = images_per_epoch
    base_train = train_section(exp, "train")
    search, tune = darc_search_images(exp, n_train), darc_finetune_images(exp, n_train)
    grid = len(exp["search"]["lams"])
    counts = {
        "bases": {"plain": (1 if exp.get("shared_base") else len(seeds)) * base_train.epochs
                  * per(base_train, n_train), "gated": 0},
        "darc (grid, points, reference)": {"gated": (grid + points * (len(seeds) - 1) + len(seeds)) * search,
                                           "plain": (grid + points * (len(seeds) - 1) + len(seeds)) * tune},
    }
    grid_peers = [m for m in methods if m in GRID_SEARCH_PEERS]
    peer_grid = len(peers.get("lams") or exp["search"]["lams"])
    counts["grid peers (" + ", ".join(grid_peers) + ")"] = {"gated": len(grid_peers) * peer_grid * search,
                                                            "plain": len(grid_peers) * peer_grid * tune}
    plain_peer = peer_recipe(exp, n_train)
    if "random" in methods:
        counts["random"] = {"plain": len(peer_seeds(exp, "random_seeds")) * points
                            * plain_peer.epochs * per(plain_peer, n_train), "gated": 0}
    if "scratch" in methods:
        scratch = scratch_recipe(exp, n_train)
        counts["scratch"] = {"plain": len(peer_seeds(exp, "scratch_seeds")) * points
                             * scratch.epochs * per(scratch, n_train), "gated": 0}
    matches = (peers.get("prune") or {}).get("match", ["latency", "params", "macs"])
    matched_runs = sum(len(peer_seeds(exp, "prune_seeds", match)) for match in matches)   # (seed, match) pairs
    sparsity_seeds = max((len(peer_seeds(exp, "prune_seeds", match)) for match in matches), default=0)
    if "torch_pruning" in methods:
        tune_tp = pruned_finetune_recipe(exp, n_train, "group_l1")
        counts["torch_pruning"] = {"plain": matched_runs * points * tune_tp.epochs * per(tune_tp, n_train),
                                   "gated": 0}
    if "torch_pruning_bn" in methods:
        sparsity, tune_bn = sparsity_recipe(exp, n_train), pruned_finetune_recipe(exp, n_train, "bn_scale")
        counts["torch_pruning_bn"] = {
            "plain": sparsity_seeds * sparsity.epochs * per(sparsity, n_train)
            + matched_runs * points * tune_bn.epochs * per(tune_bn, n_train), "gated": 0}
    return counts


def _train_precision_speed(exp: dict[str, Any], record: dict[str, Any]) -> dict[str, float] | None:
    """From a CPU ``train_precision --gated`` record: the experiment's network in its base recipe's precision."""
    for row in record["rows"]:
        if row["model"] == exp["model"] and row.get("model_kwargs", {}) == (exp.get("model_kwargs") or {}):
            mode = "bfloat16_channels_last" if train_section(exp, "train").amp else "float32"
            if f"img_per_s_gated_{mode}" not in row:
                raise SystemExit("the throughput record has no gated rows: rerun train_precision with --gated")
            return {"plain": row[f"img_per_s_{mode}"], "gated": row[f"img_per_s_gated_{mode}"]}
    return None


def _gpu_check_plan(exp: dict[str, Any], record: dict[str, Any]) -> str | None:
    """The key of the ``gpu_check`` plan that runs the experiment's network (its config kwargs a subset)."""
    for key, plan in record.get("plans", {}).items():
        kwargs, wanted = plan.get("model_kwargs", {}), exp.get("model_kwargs") or {}
        if plan["model"] == exp["model"] and all(kwargs.get(k) == v for k, v in wanted.items()):
            return key
    return None


def _gpu_check_speed(exp: dict[str, Any], record: dict[str, Any]) -> dict[str, float] | None:
    """From a GPU ``gpu_check --plans extended`` record: plain training after its first steps and the gated
    search's epoch after a whole epoch of warm-up (AMP bf16 + channels_last, one job on the GPU)."""
    key = _gpu_check_plan(exp, record)
    if key is None:
        return None
    train, search = record["stages"][f"{key}_train"], record["stages"][f"{key}_search"]
    if not (train.get("img_per_s") and search.get("img_per_s")):
        raise SystemExit(f"the gpu_check record has no steady-state throughput for {key}: rerun it with "
                         "--plans extended (two search epochs) and the train and search stages")
    return {"plain": float(train["img_per_s"]), "gated": float(search["img_per_s"])}


#: record kind -> reader of one experiment's {"plain", "gated"} img/s (None: no row for its network)
THROUGHPUT_READERS: dict[str, Callable[[dict[str, Any], dict[str, Any]], dict[str, float] | None]] = {
    "train_precision": _train_precision_speed,
    "gpu_check": _gpu_check_speed,
}


def record_kind(record: dict[str, Any]) -> str:
    """``gpu_check`` or ``train_precision`` (what made a throughput record)."""
    if str(record.get("script", "")).endswith("gpu_check.py"):
        kind = "gpu_check"
    else:
        kind = str(record.get("benchmark", "train_precision" if "rows" in record else None))
    if kind not in THROUGHPUT_READERS:
        raise SystemExit(f"not a throughput record ({kind!r}): pass a train_precision --gated or a gpu_check "
                         "--plans extended record")
    return kind


def throughput_for(exp: dict[str, Any], record: dict[str, Any]) -> dict[str, float]:
    """{"plain", "gated"} img/s of the experiment's network, from either kind of throughput record."""
    speed = THROUGHPUT_READERS[record_kind(record)](exp, record)
    if speed is None:
        raise SystemExit(f"the throughput record has no row for {exp['model']} {exp.get('model_kwargs')}: "
                         "measure the networks of this scale (train_precision --models extended, or gpu_check "
                         "--plans extended)")
    return speed


def shared_gpu_gain(record: dict[str, Any], copies: list[dict[str, Any]]) -> dict[str, float]:
    """How much the gated search's throughput grows when ``len(copies)`` jobs share the GPU: the copies'
    steady-state img/s summed over the single job's, per network the copies ran."""
    gains = {}
    for key in {k for c in copies for k, st in c["stages"].items() if k.endswith("_search") and st.get("img_per_s")}:
        alone = record["stages"].get(key, {}).get("img_per_s")
        if alone:
            gains[key.removesuffix("_search")] = sum(c["stages"][key]["img_per_s"] for c in copies) / alone
    return gains


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--throughput", required=True,
                    help="a train_precision --gated record (CPU) or a gpu_check --plans extended record (GPU)")
    ap.add_argument("--concurrent", nargs="*", default=[],
                    help="gpu_check records of copies run at once on the same GPU (their shared throughput)")
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--scale", default="extended")
    ap.add_argument("--n-train", type=int, default=None,
                    help="training images per epoch's pool (default: the dataset's, after the validation split)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    from darc.experiment import load_data
    from darc.io import atomic_write_json, atomic_write_text

    record = json.loads(Path(args.throughput).read_text())
    config = yaml.safe_load(Path(args.config).read_text())
    rows: list[dict[str, Any]] = []
    lines = ["| experiment | jobs | plain images (M) | gated images (M) | core-hours |", "|---|---|---|---|---|"]
    for name, raw in config["experiments"].items():
        exp = experiment_at_scale(raw, args.scale, name=name)
        n_train = args.n_train or len(load_data(exp).train)
        speed = throughput_for(exp, record)
        for family, c in image_counts(exp, n_train).items():
            hours = (c["plain"] / speed["plain"] + c["gated"] / speed["gated"]) / 3600
            rows.append({"experiment": name, "jobs": family, **c, "core_hours": hours, "img_per_s": speed})
            lines.append(f"| {name} | {family} | {c['plain'] / 1e6:.2f} | {c['gated'] / 1e6:.2f} | {hours:.1f} |")
    total = sum(r["core_hours"] for r in rows)
    lines.append(f"| all | | {sum(r['plain'] for r in rows) / 1e6:.2f} | {sum(r['gated'] for r in rows) / 1e6:.2f} "
                 f"| {total:.1f} |")
    summary: dict[str, Any] = {}
    if record_kind(record) == "gpu_check":
        gains = shared_gpu_gain(record, [json.loads(Path(c).read_text()) for c in args.concurrent])
        summary = {"gpu_hours_one_job_at_a_time": total, "shared_gpu_gain": gains, "copies": len(args.concurrent)}
        lines.append(f"\nEstimated GPU time, one job at a time, training and search steps only: **{total:.1f} h** "
                     f"(scale {args.scale}; throughput record {args.throughput}; the last column is GPU-hours). "
                     "Not counted: each job's start, CUDA initialisation, data loading, evaluation, latency "
                     "tables, distillation, pruning steps and benchmarks.")
        if gains:
            gain = min(gains.values())
            summary["gpu_hours_shared"] = total / gain
            lines.append(f"With {len(args.concurrent)} jobs sharing the GPU the gated search's throughput grew "
                         + ", ".join(f"{g:.2f}x ({k})" for k, g in sorted(gains.items()))
                         + f": at the smaller gain, **{total / gain:.1f} h**.")
    else:
        summary = {"hours_2_cores": total / 2, "hours_8_cores": total / 8}
        lines.append(f"\nEstimated wall time at 1 thread per job, jobs packing the cores: **{total / 2:.0f} h on 2 "
                     f"cores, {total / 8:.0f} h on 8** (scale {args.scale}; throughput record {args.throughput}).")
    out = Path(args.out)
    stem = f"scale_estimate_{args.scale}" + ("_gpu" if record_kind(record) == "gpu_check" else "")
    atomic_write_json({"benchmark": "scale_estimate", "scale": args.scale, "throughput": args.throughput,
                       "rows": rows, "core_hours": total, **summary, "environment": record.get("environment")},
                      out / f"{stem}.json")
    atomic_write_text("\n".join(lines) + "\n", out / f"{stem}.md")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
