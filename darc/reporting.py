"""Tables and figures of the workflow, from the raw run files (one function per output)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from darc.io import atomic_write_json, atomic_write_text
from darc.paper import PAPER_CLAIMS

PROVENANCE_COLUMNS = ("scale", "dataset", "dataset_is_stand_in", "model", "device", "device_name", "cpu_model",
                      "threads", "torch", "git_commit")


def experiment_table(bench_csv: str | Path, base_result: str | Path, stands_for: str | None,
                     out_csv: str | Path, out_base_json: str | Path) -> pd.DataFrame:
    """Our measured rows (one per lambda) plus the paper's claims as ``paper_*`` reference columns."""
    frame = pd.read_csv(bench_csv)
    claims = PAPER_CLAIMS.get(stands_for or "", {})
    for key, value in claims.items():
        frame[key] = value
    front = ["experiment", "lam", "base_test_acc", "test_acc", "acc_change", "speedup_b1"]
    rest = [c for c in frame.columns if c not in front]
    frame = frame[[c for c in front if c in frame.columns] + rest]
    atomic_write_text(frame.to_csv(index=False), out_csv)
    atomic_write_json(json.loads(Path(base_result).read_text()), out_base_json)
    return frame


def _operating_point(frame: pd.DataFrame, max_loss: float) -> pd.Series | None:
    ok = frame[frame["acc_change"] >= -max_loss]
    if ok.empty:
        return None
    return ok.sort_values("speedup_b1", ascending=False).iloc[0]


def summary_markdown(tables: Sequence[str | Path], out_md: str | Path) -> str:
    """A Markdown page: per experiment, every lambda's measured numbers and the paper's claims."""
    lines = ["# DARC reproduction: measured results", "",
             "Produced by `snakemake` from the raw runs; `paper_*` values are the paper's claims, for reference.",
             ""]
    for path in tables:
        frame = pd.read_csv(path)
        name = Path(path).stem
        first = frame.iloc[0]
        stand_in = " (stand-in dataset)" if bool(first.get("dataset_is_stand_in")) else ""
        lines += [f"## {name}: {first['model']} on {first['dataset']}{stand_in}", "",
                  f"scale `{first['scale']}`, {first['threads']} thread(s) on {first['cpu_model']}, "
                  f"torch {first['torch']}, commit `{first['git_commit']}`", ""]
        batched = sorted(c for c in frame.columns if c.startswith("speedup_b") and not c.endswith("_iqr")
                         and c != "speedup_b1")
        cols = ["lam", "base_test_acc", "test_acc", "acc_change", "kept_slots", "speedup_b1", *batched,
                "param_reduction", "macs_ratio"]
        cols += [c for c in frame.columns if c.startswith("peak_mem_reduction")]
        cols = [c for c in cols if c in frame.columns]
        lines.append("| " + " | ".join(cols) + " |")
        lines.append("|" + "---|" * len(cols))
        for _, row in frame.iterrows():
            cells = [f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c]) for c in cols]
            lines.append("| " + " | ".join(cells) + " |")
        for label, loss in (("no accuracy loss", 0.0), ("at most 1 % loss", 0.01)):
            best = _operating_point(frame, loss)
            text = "none of the lambdas" if best is None else (
                f"lambda {best['lam']:g}: batch-1 speed-up {best['speedup_b1']:.2f}x, parameters "
                f"{best['param_reduction']:.2f}x smaller, accuracy change {100 * best['acc_change']:+.2f} points")
            lines.append(f"\nOperating point with {label}: {text}.")
        if "paper_speedup" in frame.columns:
            lines.append(
                f"\nPaper (reference, {first['paper_experiment']}): {first['paper_speedup']}x "
                f"{first['paper_speedup_kind']} speed-up, {first['paper_memory_reduction']}x memory reduction, "
                f"accuracy change {100 * first['paper_acc_change']:+.1f} points.")
        lines.append("")
    text = "\n".join(lines) + "\n"
    atomic_write_text(text, out_md)
    return text


def _save(fig: Any, png: str | Path, pdf: str | Path, meta: dict[str, str]) -> None:
    import os
    import tempfile

    for path, fmt in ((png, "png"), (pdf, "pdf")):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=Path(path).parent, suffix=f".{fmt}")
        os.close(fd)
        keys = meta if fmt == "png" else {"Subject": json.dumps(meta)}
        fig.savefig(tmp, format=fmt, metadata=keys, bbox_inches="tight")
        os.replace(tmp, path)


def _meta(frame: pd.DataFrame) -> dict[str, str]:
    first = frame.iloc[0]
    return {k: str(first[k]) for k in PROVENANCE_COLUMNS if k in frame.columns}


def tradeoff_figure(table_csv: str | Path, png: str | Path, pdf: str | Path) -> None:
    """Accuracy vs measured batch-1 speed-up, and vs parameter reduction, one point per lambda."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = pd.read_csv(table_csv)
    first = frame.iloc[0]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, col, label in ((axes[0], "speedup_b1", "measured batch-1 speed-up (x)"),
                           (axes[1], "param_reduction", "parameter-byte reduction (x)")):
        ax.axhline(100 * first["base_test_acc"], color="gray", ls="--", label="base")
        ax.plot(frame[col], 100 * frame["test_acc"], "o-", label="DARC (ours)")
        for _, row in frame.iterrows():
            ax.annotate(f"λ={row['lam']:g}", (row[col], 100 * row["test_acc"]), fontsize=7,
                        textcoords="offset points", xytext=(3, 3))
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy (%)")
    stand_in = " [stand-in data]" if bool(first.get("dataset_is_stand_in")) else ""
    fig.suptitle(f"{first['model']} on {first['dataset']}{stand_in}, scale {first['scale']}, "
                 f"{first['threads']} thread(s)", fontsize=9)
    axes[0].legend(fontsize=8)
    _save(fig, png, pdf, _meta(frame))
    plt.close(fig)


def gates_figure(search_dirs: Sequence[str | Path], png: str | Path, pdf: str | Path) -> None:
    """Gate trajectories (|gate| per epoch), one panel per lambda, one line per (slot, candidate)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = []
    for d in search_dirs:
        d = Path(d)
        result = json.loads((d / "result.json").read_text())
        rows = [json.loads(line) for line in (d / "gates.jsonl").read_text().splitlines() if line]
        runs.append((result, pd.DataFrame(rows)))
    runs.sort(key=lambda r: r[0]["lam"])
    fig, axes = plt.subplots(1, len(runs), figsize=(3.2 * len(runs), 3.2), squeeze=False, sharey=True)
    colors = {"original": "C0", "narrow": "C1", "dwsep": "C2", "identity": "C3"}
    for ax, (result, frame) in zip(axes[0], runs):
        for (_slot, cand), g in frame.groupby(["slot", "candidate"]):
            kind = cand.split("(")[0]
            ax.plot(g["epoch"] + 1, g["gate"].abs(), color=colors.get(kind, "C4"), lw=0.8, alpha=0.8)
        ax.set_title(f"λ={result['lam']:g}, cost model {result['cost_model']}", fontsize=8)
        ax.set_xlabel("search epoch")
    axes[0][0].set_ylabel("|gate|")
    handles = [plt.Line2D([], [], color=c, label=k) for k, c in colors.items()]
    axes[0][-1].legend(handles=handles, fontsize=7)
    first = runs[0][0]
    fig.suptitle(f"{first['model']} on {first['dataset']}, scale {first['scale']}", fontsize=9)
    _save(fig, png, pdf, {k: str(first.get(k)) for k in PROVENANCE_COLUMNS})
    plt.close(fig)
