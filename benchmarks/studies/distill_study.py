"""How well does each alternative mimic its slot before the search? (issue: scales, "what limits it")

The search starts every alternative from block-wise distillation (``search.distill_steps`` full-batch Adam
steps on ``search.calibration_samples`` of the slot's real inputs, :func:`darc.alternatives.distill`). This
gates a trained base exactly as the search does, once per ``--steps`` value, and records every candidate's
relative output error ``||alt(x) - slot(x)|| / ||slot(x)||`` on those inputs, and the time the gating took.

    python benchmarks/studies/distill_study.py --config runs/default/cifar_wrn/experiment.yaml \
        --base runs/default/cifar_wrn/seed0/base --steps 100,400,1600 --out benchmarks/measured/DATE-distill

Writes ``<out>/distill.json`` (rows plus the environment) and ``<out>/distill.md``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any


def distill_errors(exp: dict[str, Any], base_dir: str, steps: int) -> tuple[dict[str, dict[str, float]], float]:
    """Slot -> candidate label -> relative distillation error of the experiment's search gating of the base
    at ``base_dir`` with ``steps`` distillation steps; and the seconds the gating took."""
    import dataclasses

    from darc.experiment import load_base, load_data, search_config, set_threads
    from darc.gates import gated_slots
    from darc.search import gate_for_search

    set_threads(exp)
    data = load_data(exp)
    cfg = dataclasses.replace(search_config(exp, 1.0), distill_steps=steps)
    base = load_base(exp, base_dir)
    t0 = time.perf_counter()
    gated = gate_for_search(base, data, cfg)
    seconds = time.perf_counter() - t0
    errors = {name: {label: err for label, err in zip(slot.labels, slot.distill_error) if err is not None}
              for name, slot in gated_slots(gated).items()}
    return errors, seconds


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True, help="an experiment YAML (a run's experiment.yaml)")
    ap.add_argument("--base", required=True, help="the trained base's run directory")
    ap.add_argument("--steps", default="100,400,1600", help="comma-separated distillation steps")
    ap.add_argument("--set", action="append", default=[], help="KEY=VALUE overrides of the experiment")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)

    from darc.bench.env import bench_environment
    from darc.config import load_experiment
    from darc.io import atomic_write_json, atomic_write_text

    exp = load_experiment(args.config, args.set)
    rows = []
    for steps in [int(s) for s in args.steps.split(",")]:
        errors, seconds = distill_errors(exp, args.base, steps)
        for slot, by_label in errors.items():
            rows += [{"steps": steps, "slot": slot, "candidate": label, "relative_error": err,
                      "gating_seconds": seconds} for label, err in by_label.items()]
        print(f"{steps} steps ({seconds:.0f} s): {errors}", flush=True)
    labels = list(dict.fromkeys(r["candidate"] for r in rows))
    lines = ["| steps | slot | " + " | ".join(labels) + " |", "|---|---|" + "---|" * len(labels)]
    for steps in dict.fromkeys(r["steps"] for r in rows):
        for slot in dict.fromkeys(r["slot"] for r in rows):
            cell = {r["candidate"]: r["relative_error"] for r in rows if r["steps"] == steps and r["slot"] == slot}
            lines.append(f"| {steps} | {slot} | " + " | ".join(f"{cell[c]:.3f}" if c in cell else "-"
                                                            for c in labels) + " |")
    out = Path(args.out)
    atomic_write_json({"benchmark": "distill_study", "config": args.config, "base": args.base,
                       "overrides": args.set, "rows": rows, "environment": bench_environment(
                           "cpu", threads=exp.get("threads"))}, out / "distill.json")
    atomic_write_text("\n".join(lines) + "\n", out / "distill.md")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
