"""Speed and memory benchmarks (issue targets live here, never in timed unit tests).

    python benchmarks/tools/run.py NAME [--threads 1] [--out runs/benchmarks]
    python benchmarks/tools/run.py --list

Each benchmark prints its numbers and writes ``<out>/<name>.json`` with the environment record.
Run them on a quiet machine: timings taken beside other jobs are not worth reporting.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

from darc.bench.cost_check import cost_model_error
from darc.bench.env import bench_environment
from darc.bench.latency import compare_latency
from darc.bench.macs import count_macs
from darc.costs import CostContext, assign_costs
from darc.gates import gate_model, gated_slots
from darc.io import atomic_write_json
from darc.materialize import materialize
from darc.models import create_model
from darc.registry import Registry

BENCHMARKS: Registry[dict[str, Any]] = Registry("benchmark")
FMNIST = {"in_chans": 1, "input_size": 28, "num_classes": 10}
SHAPE = (1, 28, 28)


def every_second_branch(model: nn.Module) -> list[str]:
    """Every second residual branch, starting with the second (so each stage keeps its first block)."""
    return model.slot_names("branch")[1::2]


def drop_branches(model: nn.Module, names: list[str]) -> nn.Module:
    """Build the architecture directly: ``block.branch = None`` for each named branch."""
    for name in names:
        model.get_submodule(name.rsplit(".", 1)[0]).branch = None
    return model


def paired_step_times(
    model_a: nn.Module, model_b: nn.Module, batch: int, steps: int
) -> tuple[list[float], list[float]]:
    """Wall-clock seconds of single SGD steps (forward, backward, update) of two models, interleaved ABBA
    after 3 warm-up steps each, so drifts of the machine cancel in the per-pair ratios."""
    x, y = torch.randn(batch, *SHAPE), torch.randint(0, 10, (batch,))
    steppers = []
    for model in (model_a, model_b):
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        model.train()

        def step(model: nn.Module = model, opt: torch.optim.Optimizer = opt) -> float:
            t = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            return time.perf_counter() - t

        for _ in range(3):
            step()
        steppers.append(step)
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(steps):
        for j in ((0, 1) if i % 2 == 0 else (1, 0)):
            times[j].append(steppers[j]())
    return times


@BENCHMARKS.register("gated_step_time")
def gated_step_time(args: argparse.Namespace) -> dict[str, Any]:
    """Per-step training time of gated WRN-16-2 (branch slots, default candidates) vs the plain one,
    against the ratio of their MACs (target: time ratio <= 1.2 x MACs ratio). Also times the same
    candidates summed without gates (the materialised all-kept network), which isolates what the
    gates themselves cost from what the candidates cost."""
    torch.manual_seed(0)
    plain = create_model("wrn16_2", **FMNIST)
    gated = gate_model(plain, "branch")
    summed, _ = materialize(gated)  # every gate non-zero: each slot is the plain sum of its candidates
    t_plain, t_gated = paired_step_times(plain, gated, args.batch, args.steps)
    t_summed, t_gated2 = paired_step_times(summed, gated, args.batch, args.steps)
    time_ratio = float(np.median([g / p for g, p in zip(t_gated, t_plain)]))
    macs_ratio = count_macs(gated, SHAPE, args.batch) / count_macs(plain, SHAPE, args.batch)
    return {"t_plain_s": float(np.median(t_plain)), "t_gated_s": float(np.median(t_gated)),
            "time_ratio": time_ratio, "macs_ratio": macs_ratio, "time_over_macs": time_ratio / macs_ratio,
            "t_summed_s": float(np.median(t_summed)),
            "gate_overhead": float(np.median([g / u for g, u in zip(t_gated2, t_summed)])),
            "target": "time_over_macs <= 1.2", "batch": args.batch, "steps": args.steps,
            "candidates": gated_slots(gated)[plain.slot_names("branch")[0]].labels}


@BENCHMARKS.register("materialize_overhead")
def materialize_overhead(args: argparse.Namespace) -> dict[str, Any]:
    """A WRN-16-4 with half its branches dropped through gates at zero, materialised, versus the same
    architecture built directly; interleaved A/B (target: ratio within 3 % of 1)."""
    torch.manual_seed(0)
    base = create_model("wrn16_4", **FMNIST)
    dropped = every_second_branch(base)
    gated = gate_model(base, "branch", ["original"])
    with torch.no_grad():
        for name in dropped:
            gated_slots(gated)[name].gate.zero_()
    materialised, _ = materialize(gated.eval())
    direct = drop_branches(create_model("wrn16_4", **FMNIST), dropped)
    direct.load_state_dict(materialised.state_dict())
    out: dict[str, Any] = {"dropped_branches": dropped, "target": "|ratio - 1| <= 0.03"}
    for b in (1, args.batch):
        ab = compare_latency(direct.eval(), materialised.eval(), SHAPE, b, pairs=args.pairs, threads=args.threads)
        out[f"ratio_b{b}"] = ab.ratio_median
        out[f"ratio_b{b}_iqr"] = ab.ratio_iqr
    return out


@BENCHMARKS.register("ab_repeatability")
def ab_repeatability(args: argparse.Namespace) -> dict[str, Any]:
    """The same A/B ratio (WRN-16-4 vs WRN-16-4 with half its blocks, batch 1) measured three times."""
    torch.manual_seed(0)
    full = create_model("wrn16_4", **FMNIST).eval()
    half = drop_branches(create_model("wrn16_4", **FMNIST), every_second_branch(full)).eval()
    runs = [compare_latency(full, half, SHAPE, 1, pairs=args.pairs, threads=args.threads) for _ in range(3)]
    values = [r.ratio_median for r in runs]
    return {"ratios_b1": values, "iqrs_b1": [r.ratio_iqr for r in runs],
            "spread": (max(values) - min(values)) / min(values), "target": "spread <= 0.05"}


@BENCHMARKS.register("cost_model_error")
def cost_model_error_bench(args: argparse.Namespace) -> dict[str, Any]:
    """Latency predicted from the lookup table versus measured end to end, for five materialised
    architectures of ``--model`` (random choices per branch). Prediction = base latency - the slots'
    original costs + the kept candidates' costs, with costs in ``--context`` (target: within 10 %)."""
    torch.manual_seed(0)
    rng = random.Random(0)
    base = create_model(args.model, **FMNIST).eval()
    gated = gate_model(base, "branch", ["original", {"alternative": "narrow", "ratio": 0.5}, "dwsep"])
    table = Path(args.out) / f"cost_model_table_{args.model}_{args.context}.json"
    ctx = CostContext(SHAPE, batch_size=1, threads=args.threads, table_path=table, context=args.context)
    report = assign_costs(gated, base, "latency", ctx)
    rows = []
    for arch in range(5):
        predicted = report["base_total"]
        kept = {}
        with torch.no_grad():
            for name, slot in gated_slots(gated).items():
                choice = rng.choice([-1, *range(len(slot.labels))])  # -1: drop the branch
                slot.gate.copy_(torch.tensor([float(j == choice) for j in range(len(slot.labels))]))
                kept[name] = slot.labels[choice] if choice >= 0 else None
                predicted -= report["slots"][name]["original"]["raw"]
                if choice >= 0:
                    predicted += report["slots"][name][slot.labels[choice]]["raw"]
        plain, _ = materialize(gated.eval())
        # measured beside the base (interleaved A/B), so the base-relative error is free of machine drift
        ab = compare_latency(base, plain.eval(), SHAPE, 1, pairs=args.pairs, threads=args.threads)
        predicted_rel = predicted / report["base_total"]
        measured_rel = 1.0 / ab.ratio_median
        rows.append({"arch": arch, "kept": kept, "predicted_s": predicted, "measured_s": ab.median_b_s,
                     "error": cost_model_error(predicted, ab.median_b_s),
                     "predicted_relative": predicted_rel, "measured_relative": measured_rel,
                     "relative_error": cost_model_error(predicted_rel, measured_rel),
                     "base_now_s": ab.median_a_s})
    return {"model": args.model, "context": args.context, "base_s": report["base_total"], "architectures": rows,
            "max_abs_error": max(abs(r["error"]) for r in rows),
            "max_abs_relative_error": max(abs(r["relative_error"]) for r in rows),
            "target": "max_abs_error <= 0.10",
            "note": "error: absolute seconds (table measured earlier than the architecture); relative_error: "
                    "latency as a fraction of the base, both measured together, as the penalty uses it"}


def _single_change_savings(gated: nn.Module, base: nn.Module, shape: tuple[int, ...], batch: int, pairs: int,
                           threads: int) -> dict[tuple[str, str], float]:
    """(slot, label) -> measured end-to-end saving ``1 - t(changed) / t(base)`` of the network in which only
    that slot changes (to an alternative, or ``"dropped"``), each timed against the base in interleaved A/B
    pairs."""
    from darc.peers.decisions import materialize_decisions

    slots = gated_slots(gated)
    keep = {n: s.refs[s.labels.index("original")] for n, s in slots.items()}
    out = {}
    for name, slot in slots.items():
        for label in [*[lb for lb in slot.labels if lb != "original"], "dropped"]:
            decisions = {**keep, name: None if label == "dropped" else slot.refs[slot.labels.index(label)]}
            plain, _ = materialize_decisions(gated, decisions)
            ab = compare_latency(base, plain.eval(), shape, batch, pairs=pairs, threads=threads,
                                 min_block_time=0.1)
            out[name, label] = 1.0 - 1.0 / ab.ratio_median
            print(f"{name:24s} {label:20s} measured saving {out[name, label]:+.4f}", flush=True)
    return out


@BENCHMARKS.register("slot_costs")
def slot_costs_bench(args: argparse.Namespace) -> dict[str, Any]:
    """Each single-slot change priced by latency tables against the same change measured end to end.

    For the experiment in ``--config`` (e.g. ``runs/default/cifar_wrn/experiment.yaml``) the base is gated as
    a search gates it; every slot x (alternative or dropped) becomes one network in which only that slot
    changes, timed against the base at the search's cost batch (A/B, ``--pairs``). A table's predicted saving
    is ``(cost(original) - cost(candidate)) / base_total``. Reports per table the rank correlation and the
    mean absolute error of predicted against measured savings: does the table rank the choices right?
    """
    import shutil
    import tempfile

    from darc.config import load_experiment
    from darc.experiment import base_model, load_data, search_config
    from darc.search import gate_for_search

    exp = load_experiment(args.config)
    data = load_data(exp)
    base = base_model(exp, data).eval()
    cfg = search_config(exp, 0.0)
    cfg.distill_steps = 0  # timings depend on each candidate's structure, not its weights
    gated = gate_for_search(base, data, cfg)
    shape, batch = tuple(data.meta.input_shape), cfg.cost_batch_size
    predicted: dict[str, dict[tuple[str, str], float]] = {}
    for table in args.tables:
        context, _, path = table.rpartition("=")
        with tempfile.TemporaryDirectory() as tmp:  # a copy: an entry the table lacks is timed, never written back
            copy = Path(tmp) / "table.json"
            shutil.copyfile(path, copy)
            ctx = CostContext(shape, batch_size=batch, threads=args.threads, table_path=copy,
                              context=context or cfg.latency_context)
            report = assign_costs(gated, base, "latency", ctx)
        norm = {n: {lb: v["normalized"] for lb, v in s.items()} for n, s in report["slots"].items()}
        predicted[table] = {(n, lb): c["original"] - c.get(lb, 0.0)
                            for n, c in norm.items() for lb in [*[x for x in c if x != "original"], "dropped"]}
    measured = _single_change_savings(gated, base, shape, batch, args.pairs, args.threads)
    keys = list(measured)
    rows = [{"slot": n, "candidate": lb, "measured_saving": measured[n, lb],
             **{f"predicted_saving[{t}]": predicted[t][n, lb] for t in args.tables}} for n, lb in keys]
    observed = [measured[k] for k in keys]
    summary = {t: {"rank_correlation": float(spearmanr([predicted[t][k] for k in keys], observed)[0]),
                   "mean_abs_error": float(np.mean([abs(predicted[t][k] - measured[k]) for k in keys]))}
               for t in args.tables}
    return {"config": args.config, "model": exp["model"], "batch_size": batch, "pairs": args.pairs,
            "tables": summary, "changes": rows}


#: (width, map size) pairs of the alternative-latency benchmark: each stage of a WRN on 28x28 inputs at
#: widen factors 1, 2, 4, 8 (stage 1: 28x28, stage 2: 14x14, stage 3: 7x7).
ALT_SETTINGS = [(16, 28), (32, 14), (64, 7), (32, 28), (64, 14), (128, 7), (64, 28), (128, 14), (256, 7),
                (128, 28)]
ALT_CANDIDATES = [{"alternative": "narrow", "ratio": 0.5}, {"alternative": "narrow", "ratio": 0.25}, "dwsep"]


@BENCHMARKS.register("alternative_latency")
def alternative_latency(args: argparse.Namespace) -> dict[str, Any]:
    """Each alternative against the original WRN branch (conv3x3-BN-ReLU-conv3x3), per width and map size,
    batch 1 and ``--batch``: measured speed-up (interleaved A/B) and the MACs ratio beside it."""
    from darc.gates import CandidateRef, build_candidate
    from darc.models.wrn import PreActBlock
    from darc.slots import SlotSpec

    rows = []
    for width, size in ALT_SETTINGS:
        torch.manual_seed(0)
        branch = PreActBlock(width, width).branch.eval()
        spec = SlotSpec("branch", "branch", (width, size, size), (width, size, size))
        for item in ALT_CANDIDATES:
            ref = CandidateRef.parse(item)
            alt = build_candidate(ref, spec, branch, True).eval()
            macs = count_macs(branch, spec.in_shape, 1) / count_macs(alt, spec.in_shape, 1)
            row: dict[str, Any] = {"width": width, "map": size, "alternative": ref.label, "macs_ratio": macs}
            for batch in (1, args.batch):
                ab = compare_latency(branch, alt, spec.in_shape, batch, pairs=args.pairs, threads=args.threads,
                                     min_block_time=0.02)
                row[f"speedup_b{batch}"], row[f"speedup_b{batch}_iqr"] = ab.ratio_median, ab.ratio_iqr
            rows.append(row)
            print(row, flush=True)
    return {"rows": rows, "note": "speed-up = t(original branch) / t(alternative), interleaved A/B medians"}


#: WRN widen factors of the stand-in-width benchmark (WRN-16-k on 28x28 inputs).
WIDTH_FACTORS = (1, 2, 4)


def _label(item: str | dict[str, Any]) -> str:
    """The label a gated slot gives candidate ``item``."""
    from darc.gates import CandidateRef

    return CandidateRef.parse(item).label


@BENCHMARKS.register("stand_in_width")
def stand_in_width(args: argparse.Namespace) -> dict[str, Any]:
    """Which WRN-16-k width lets alternatives pay: every branch of the whole network replaced by one
    alternative (or every branch dropped), timed against the base in interleaved A/B pairs at batch 1 and
    ``--batch``, with the parameter-byte and MACs ratios beside it."""
    from darc.peers.decisions import materialize_decisions

    rows = []
    for k in WIDTH_FACTORS:
        torch.manual_seed(0)
        base = create_model(f"wrn16_{k}", **FMNIST).eval()
        gated = gate_model(create_model(f"wrn16_{k}", **FMNIST), "branch", ["original", *ALT_CANDIDATES],
                           example_input=SHAPE, distill_steps=0)
        slots = gated_slots(gated)
        base_params = sum(p.numel() for p in base.parameters())
        for label in [*[_label(c) for c in ALT_CANDIDATES], "dropped"]:
            decisions = {n: None if label == "dropped" else s.refs[s.labels.index(label)] for n, s in slots.items()}
            plain, _ = materialize_decisions(gated, decisions)
            plain.eval()
            row: dict[str, Any] = {"model": f"wrn16_{k}", "every_branch": label,
                                   "param_reduction": base_params / sum(p.numel() for p in plain.parameters()),
                                   "macs_ratio": count_macs(base, SHAPE, 1) / count_macs(plain, SHAPE, 1)}
            for batch in (1, args.batch):
                ab = compare_latency(base, plain, SHAPE, batch, pairs=args.pairs, threads=args.threads,
                                     min_block_time=0.05)
                row[f"speedup_b{batch}"], row[f"speedup_b{batch}_iqr"] = ab.ratio_median, ab.ratio_iqr
            rows.append(row)
            print(row, flush=True)
    return {"rows": rows, "note": "speed-up = t(base) / t(every branch changed), interleaved A/B medians"}


def _train_step(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, low: bool, y: torch.Tensor) -> None:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=low):
        loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()


#: Stand-ins of each scale whose training throughput `train_precision` measures (``--models``).
STAND_INS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "default": [("wrn16_1", {}), ("wrn16_2", {}), ("resnet18d_small", {})],
    "extended": [("wide_resnet", {"depth": 28, "widen_factor": 2}), ("resnet50d_small", {"width_mult": 0.25})],
}


def _training_setup(name: str, kwargs: dict[str, Any], gated: bool, low: bool) -> tuple[Any, ...]:
    """(model, optimizer, batch, low) of one `train_precision` arm; ``gated``: every branch gated with the
    original and the default alternatives (not distilled: the step's cost is what is timed)."""
    torch.manual_seed(0)
    model = create_model(name, **FMNIST, **kwargs)
    if gated:
        model = gate_model(model, "branch", ["original", *ALT_CANDIDATES], example_input=SHAPE, distill_steps=0)
    model.train()
    x = torch.randn(128, *SHAPE)
    if low:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    return model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), x, low


@BENCHMARKS.register("train_precision")
def train_precision(args: argparse.Namespace) -> dict[str, Any]:
    """Training throughput (img/s, batch 128, SGD step on random 28x28 inputs) of each stand-in of a scale
    (``--models default`` or ``extended``) in float32 against bfloat16 autocast with channels_last, the arms
    measured in alternating blocks; ``--gated`` adds the search's gated network (every branch gated) in both."""
    rows = []
    for name, kwargs in STAND_INS[args.models]:
        arms = [(gated, low) for gated in ((False, True) if args.gated else (False,)) for low in (False, True)]
        label = {arm: ("gated_" if arm[0] else "") + ("bfloat16_channels_last" if arm[1] else "float32")
                 for arm in arms}
        setups = {arm: _training_setup(name, kwargs, *arm) for arm in arms}
        times: dict[tuple[bool, bool], list[float]] = {arm: [] for arm in arms}
        y = torch.randint(0, 10, (128,))
        for arm in arms:
            _train_step(*setups[arm], y)  # warm-up
        for _ in range(args.steps // 4):
            for arm in arms:
                t0 = time.perf_counter()
                for _ in range(4):
                    _train_step(*setups[arm], y)
                times[arm].append(128 * 4 / (time.perf_counter() - t0))
        row = {"model": name, "model_kwargs": kwargs,
               **{f"img_per_s_{label[arm]}": float(np.median(v)) for arm, v in times.items()}}
        row["speedup"] = row["img_per_s_bfloat16_channels_last"] / row["img_per_s_float32"]
        if args.gated:
            row["gated_slowdown_bfloat16"] = (row["img_per_s_bfloat16_channels_last"]
                                              / row["img_per_s_gated_bfloat16_channels_last"])
        rows.append(row)
        print(row, flush=True)
    return {"rows": rows,
            "note": "medians of alternating 4-step blocks; the training loop's data loading is not included"}


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", nargs="?", help=f"one of {BENCHMARKS.list()}")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--models", default="default", choices=list(STAND_INS), help="stand-ins of train_precision")
    ap.add_argument("--gated", action="store_true", help="train_precision: time the gated search network too")
    ap.add_argument("--model", default="wrn16_2", help="base network of cost_model_error")
    ap.add_argument("--context", default="parent", choices=["parent", "network", "slot"],
                    help="latency cost context of cost_model_error (see darc.costs.CostContext)")
    ap.add_argument("--config", help="experiment YAML of slot_costs (e.g. runs/default/cifar_wrn/experiment.yaml)")
    ap.add_argument("--tables", nargs="+", default=[], metavar="[CONTEXT=]PATH",
                    help="latency tables (JSON) slot_costs prices changes with, each in its latency context "
                         "(parent, network, slot; default the config's)")
    ap.add_argument("--out", default="runs/benchmarks")
    args = ap.parse_args(argv)
    if args.list or not args.name:
        for name in BENCHMARKS.list():
            print(f"{name}: {(BENCHMARKS.get(name).__doc__ or '').splitlines()[0]}")
        return None
    torch.set_num_threads(args.threads)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    record = {"benchmark": args.name, **BENCHMARKS.create(args.name, args),
              "environment": bench_environment("cpu", threads=args.threads)}
    suffix = {"cost_model_error": f"_{args.model}_{args.context}",
              "slot_costs": f"_{Path(args.config or '').parent.name}",
              "train_precision": "" if args.models == "default" else f"_{args.models}"}.get(args.name, "")
    atomic_write_json(record, Path(args.out) / f"{args.name}{suffix}.json")
    print({k: v for k, v in record.items() if k != "environment"})
    return record


if __name__ == "__main__":
    main()
