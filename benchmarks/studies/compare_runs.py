"""Do two runs of the workflow give the same results? (issue: a typed experiment; "the refactor alone changes no
result: a default run before and after it on the same machine gives the same accuracies and decisions")

Joins the per-experiment tables (``results/tables/<exp>.csv``) of two runs on (role, point, seed, lambda) and
compares what a rerun on the same machine must reproduce: validation and test accuracy, the slots' decisions
and the architecture's cost. Timing columns (speed-ups, latency matches) are left out: they are measurements.
Rows present in one run only are listed too.

    python benchmarks/studies/compare_runs.py /work/def8/results /work/def/results --out DIR

Writes ``<out>/compare.json`` and ``<out>/compare.md``; prints the differing rows.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

#: What identifies a row across runs.
KEY = ("role", "point", "seed", "lam")
#: What a rerun on the same machine must reproduce (timing columns are measurements and left out).
COMPARED = ("val_acc", "test_acc", "kept", "slots_kept", "slots_replaced", "slots_dropped", "replaced_by",
            "arch_cost", "num_parameters", "recipe")


def rows_of(results: Path, exp: str) -> dict[tuple[str, ...], dict[str, str]]:
    """The table's rows by :data:`KEY`."""
    with (results / "tables" / f"{exp}.csv").open(newline="") as fh:
        return {tuple(r[k] for k in KEY): r for r in csv.DictReader(fh)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("before", type=Path, help="the first run's results folder")
    ap.add_argument("after", type=Path, help="the second run's results folder")
    ap.add_argument("--experiments", default="cifar_wrn,imagenet_resnet")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)

    report: dict[str, dict] = {}
    lines = ["| experiment | rows in both | identical | differing | only before | only after |", "|---" * 6 + "|"]
    for exp in args.experiments.split(","):
        before, after = rows_of(args.before, exp), rows_of(args.after, exp)
        differing = []
        for key in sorted(before.keys() & after.keys()):
            diff = {c: [before[key].get(c), after[key].get(c)] for c in COMPARED
                    if before[key].get(c) != after[key].get(c)}
            if diff:
                differing.append({"key": dict(zip(KEY, key)), "method": after[key]["method"], "diff": diff})
        both = len(before.keys() & after.keys())
        report[exp] = {"both": both, "differing": differing,
                       "only_before": [dict(zip(KEY, k)) for k in sorted(before.keys() - after.keys())],
                       "only_after": [dict(zip(KEY, k)) for k in sorted(after.keys() - before.keys())],
                       "commits": sorted({r["git_commit"] for r in before.values()} |
                                         {r["git_commit"] for r in after.values()})}
        lines.append(f"| {exp} | {both} | {both - len(differing)} | {len(differing)} | "
                     f"{len(report[exp]['only_before'])} | {len(report[exp]['only_after'])} |")
        for d in differing:
            print(exp, d["key"], d["method"], d["diff"])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "compare.json").write_text(json.dumps({"before": str(args.before), "after": str(args.after),
                                                       "compared": COMPARED, "experiments": report}, indent=1))
    (args.out / "compare.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
