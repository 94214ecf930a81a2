"""The README's headline table, generated from the workflow's points tables (``results/tables/*_points.csv``).

``python -m darc.headline README.md results/tables/cifar_wrn_points.csv results/tables/imagenet_resnet_points.csv``
rewrites the block between ``<!-- headline:begin -->`` and ``<!-- headline:end -->``; a test checks that the
committed README holds what the committed results give, so the two cannot drift apart.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from darc.io import atomic_write_text

BEGIN, END = "<!-- headline:begin -->", "<!-- headline:end -->"
#: How a peer's verdict against DARC reads in a cell ("gain": the peer is ahead beyond noise).
VERDICTS = {"gain": "the peer wins", "loss": "DARC wins", "no change": "no change", "one seed": "one seed",
            "not matched": "not matched"}
#: Rows after the reference and DARC's points: (role, label).
PEER_ROWS = (("random", "random decisions (same counts)"), ("scratch", "DARC's architecture from scratch"),
             ("tp_latency", "Torch-Pruning, matched latency"), ("sss", "SSS, its one lambda"))


def protocol_batch(points: pd.DataFrame) -> int:
    """The batch size the protocol's claim is about: 1 for a single-sample claim, else the largest timed."""
    kind = str(points["paper_speedup_kind"].iloc[0]) if "paper_speedup_kind" in points else ""
    batches = sorted(int(c[len("speedup_b"):-len("_mean")]) for c in points.columns
                     if c.startswith("speedup_b") and c.endswith("_mean"))
    return 1 if "batch 1" in kind or not batches else batches[-1]


def _acc(row: pd.Series) -> str:
    mean, std = 100 * row["test_acc_mean"], row.get("test_acc_std")
    return f"{mean:.2f}" if pd.isna(std) else f"{mean:.2f} ± {100 * std:.2f}"


def _ratios(row: pd.Series, batch: int) -> str:
    """Measured speed-ups at every timed batch size (the protocol's ``batch`` in bold), parameter bytes."""
    timed = sorted(int(k[len("speedup_b"):-len("_mean")]) for k in row.index
                   if k.startswith("speedup_b") and k.endswith("_mean") and pd.notna(row[k]))
    parts = [f"**{row[f'speedup_b{b}_mean']:.2f}x b{b}**" if b == batch else f"{row[f'speedup_b{b}_mean']:.2f}x b{b}"
             for b in timed]
    if pd.notna(row.get("param_reduction_mean")):
        parts.append(f"{row['param_reduction_mean']:.2f}x param. bytes")
    return ", ".join(parts)


def _darc_cell(row: pd.Series, batch: int) -> str:
    if pd.isna(row.get("lam")):
        return "none: no lambda of the grid met it on validation"
    keeps_base = row.get("slots_kept_mean") == row.get("kept_slots_mean") and not row.get("slots_replaced_mean")
    change = row.get("change_vs_reference")
    against = "" if pd.isna(change) else f" ({100 * change:+.2f} vs the reference, {row['verdict_vs_reference']})"
    what = "the base architecture" if keeps_base else _ratios(row, batch)
    return f"λ {row['lam']:g}: **{_acc(row)}**{against}; {what}"


def _peer_cell(row: pd.Series, batch: int) -> str:
    change, verdict = row.get("change_vs_darc"), row.get("verdict_vs_darc")
    cell = _acc(row)
    if pd.notna(change):
        cell += f" ({100 * change:+.2f} vs DARC, {VERDICTS.get(verdict, verdict)})"
    if verdict == "not matched" and pd.notna(row.get("match_ratio")):
        curve = row.get("curve_change_vs_darc")
        cell += (f": {row['match_ratio']:.2f}x DARC's speed-up in the bench"
                 + ("" if pd.isna(curve) else f"; on its trade-off curve {100 * curve:+.2f} vs DARC"))
    if row["role"] == "sss":
        cell = f"λ {row['lam']:g}: {cell}"
    return f"{cell}; {_ratios(row, batch)}"


def headline_markdown(points_tables: Sequence[str | Path]) -> str:
    """One Markdown table, a column per experiment: raw base, equal-budget reference, DARC's operating points,
    random decisions, DARC's architecture from scratch, Torch-Pruning at matched latency, SSS, and the paper's
    claim (test accuracy %, mean ± std over seeds; changes against the reference or DARC with their verdict)."""
    tables = [pd.read_csv(p) for p in points_tables]
    batches = [protocol_batch(t) for t in tables]
    head = ["test accuracy %", *(f"{t['model'].iloc[0]} ({t['paper_experiment'].iloc[0].split(',')[0]} protocol, "
                                 f"batch-{b} costs)" for t, b in zip(tables, batches))]
    rows: list[list[str]] = []

    def add(label: str, cells: list[str]) -> None:
        if any(c != "-" for c in cells):
            rows.append([label, *cells])

    def first(t: pd.DataFrame, role: str, point: str | None = None) -> pd.Series | None:
        sel = t[(t["role"] == role) & ((t["point"] == point) if point else True)]
        return None if sel.empty else sel.iloc[0]

    base = [first(t, "base") for t in tables]
    add("raw base", [f"{100 * r['test_acc_mean']:.2f} (seed {r['seeds']})" if r is not None else "-" for r in base])
    add("equal-budget reference", [_acc(r) if (r := first(t, "reference")) is not None else "-" for t in tables])
    names = list(dict.fromkeys(p for t in tables for p in t.loc[t["role"] == "darc", "point"].dropna()))
    for name in names:
        add(f'DARC, "{name}" point', [_darc_cell(r, b) if (r := first(t, "darc", name)) is not None else "-"
                                      for t, b in zip(tables, batches)])
    for role, label in PEER_ROWS:
        add(label, [_peer_cell(r, b) if (r := first(t, role)) is not None else "-" for t, b in zip(tables, batches)])
    add("the paper's claim, for networks and data we did not run",
        [f"{t['paper_speedup'].iloc[0]}x {t['paper_speedup_kind'].iloc[0]}, {t['paper_memory_reduction'].iloc[0]}x "
         f"memory, {100 * t['paper_acc_change'].iloc[0]:+.1f} points" for t in tables])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"


def replace_block(text: str, block: str) -> str:
    """``text`` with what lies between the headline markers replaced by ``block``; refuses a text without
    exactly one pair of markers."""
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise ValueError(f"expected one {BEGIN} ... {END} block")
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    return pattern.sub(lambda _: f"{BEGIN}\n{block}{END}", text)


def current_block(text: str) -> str:
    """What lies between the headline markers of ``text``."""
    return text.split(BEGIN, 1)[1].split(END, 1)[0].removeprefix("\n")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="rewrite the README's headline table from the points tables")
    ap.add_argument("readme")
    ap.add_argument("points", nargs="+")
    args = ap.parse_args(argv)
    path = Path(args.readme)
    atomic_write_text(replace_block(path.read_text(), headline_markdown(args.points)), path)


if __name__ == "__main__":
    main()
