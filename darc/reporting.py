"""Tables and figures of the workflow, from the raw run files (one function per output)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from darc.config import GRID_SEARCH_PEERS
from darc.gate_trace import Settling, logged_times, read_gate_log, settling
from darc.io import atomic_write_json, atomic_write_text
from darc.paper import PAPER_CLAIMS
from darc.selection import DEFAULT_POINTS, compare_means, interpolate_at, match_holds, mean_std, select_points
from darc.spec import Experiment, ExperimentLike

PROVENANCE_COLUMNS = ("scale", "dataset", "dataset_is_stand_in", "model", "device", "device_name", "cpu_model",
                      "threads", "torch", "git_commit")


def _read_json(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def protocol_batch(exp: ExperimentLike) -> int:
    """The batch size an experiment's claim is about: the search's ``cost_batch_size`` (1 for the CIFAR
    protocol's single-sample speed-up, a batch for the ImageNet protocol's batched one)."""
    return Experiment.of(exp).cost_batch_size


def select_operating_points(finetune_results: Sequence[str | Path], reference_result: str | Path,
                            exp: ExperimentLike, out_json: str | Path) -> dict[str, Any]:
    """Choose each operating point's lambda from the first seed's fine-tuned runs on **validation**
    accuracy against the equal-budget reference (:func:`darc.selection.select_points`); write the choice."""
    runs = [_read_json(p) for p in finetune_results]
    reference = _read_json(reference_result)
    if reference.get("val_acc") is None or any(r.get("val_acc") is None for r in runs):
        raise ValueError("choosing operating points needs validation accuracy: set the experiment's "
                         "`validation` (images held out of training)")
    points = Experiment.of(exp).selection.points or DEFAULT_POINTS
    chosen = select_points(runs, reference["val_acc"], points)
    by_lam = {float(r["lam"]): r for r in runs}
    record = {"points": chosen, "changes_base": {name: None if lam is None else _changes_base(by_lam[float(lam)])
                                                 for name, lam in chosen.items()},
              "max_val_drop": dict(points), "reference_val_acc": reference["val_acc"],
              "seed": reference.get("seed"), "selected_on": "val_acc", "cheapest_by": "arch_cost",
              "candidates": [{k: r.get(k) for k in ("lam", "val_acc", "arch_cost")} for r in runs]}
    atomic_write_json(record, out_json)
    return record


def _changes_base(result: dict[str, Any]) -> bool:
    """Whether a fine-tuned DARC run's architecture differs from the base's (``True`` when the run names no
    architecture file: then nothing says it is the base's)."""
    from darc.peers.decisions import keeps_base_architecture

    arch = result.get("architecture")
    if not arch or not Path(arch).exists():
        return True
    return not keeps_base_architecture(_read_json(arch))


def _chosen_lams(points_json: str | Path, *, unchanged_too: bool) -> list[float]:
    """The chosen lambdas whose first-seed network differs from the base's, or every chosen one."""
    record = _read_json(points_json)
    changes = record.get("changes_base", {})
    return sorted({float(lam) for name, lam in record["points"].items()
                   if lam is not None and (unchanged_too or changes.get(name, True))})


def points_with_peers(points_json: str | Path, exp: ExperimentLike) -> list[float]:
    """The chosen lambdas the matched peers (random, scratch, Torch-Pruning) run at: every one whose
    architecture differs from the base's, or every one with ``peers.at_unchanged_points``."""
    return _chosen_lams(points_json, unchanged_too=Experiment.of(exp).peers.at_unchanged_points)


def points_to_reseed(points_json: str | Path, exp: ExperimentLike) -> list[float]:
    """The chosen lambdas the seeds after the first re-run: every one, or with
    ``selection.reseed_unchanged_points: false`` only those whose first-seed network differs from the
    base's (a point that keeps the base architecture is then reported from the first seed alone)."""
    return _chosen_lams(points_json, unchanged_too=Experiment.of(exp).selection.reseed_unchanged_points)


def _result_row(result: dict[str, Any], role: str) -> dict[str, Any]:
    keys = ("seed", "base_seed", "lam", "val_acc", "test_acc", "arch_cost", "num_parameters")
    return {"role": role, **{k: result.get(k) for k in keys},
            **{k: v for k, v in result.items() if k.startswith("recipe") and k != "recipe_trials"}}


def _point_names(points: dict[str, float | None]) -> dict[float, str]:
    names: dict[float, list[str]] = {}
    for name, lam in points.items():
        if lam is not None:
            names.setdefault(float(lam), []).append(name)
    return {lam: "+".join(v) for lam, v in names.items()}


def experiment_tables(bench_csv: str | Path, base_results: Sequence[str | Path],
                      reference_results: Sequence[str | Path], points_json: str | Path, stands_for: str | None,
                      out_runs: str | Path, out_points: str | Path, *, batch: int = 1,
                      ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The run table (one row per base, reference and DARC run, with accuracy changes against the same
    seed's base and reference) and the operating-point table (mean +- std over seeds, changes judged by
    :func:`darc.selection.compare_means`, with every peer beside the point it is matched to, ``batch``
    being the protocol's batch size); the paper's claims as ``paper_*`` reference columns."""
    bench = pd.read_csv(bench_csv)
    record = _read_json(points_json)
    chosen = record["points"]
    unchanged = {float(chosen[name]) for name, changes in record.get("changes_base", {}).items()
                 if changes is False and chosen.get(name) is not None}
    names = _point_names(chosen)
    extra = pd.DataFrame([_result_row(_read_json(p), "base") for p in base_results]
                         + [_result_row(_read_json(p), "reference") for p in reference_results])
    prov = {c: bench.iloc[0][c] for c in PROVENANCE_COLUMNS if c in bench.columns}
    for col, value in prov.items():
        extra[col] = value
    at_point = bench["role"].isin(["darc", *MATCHED_PEERS])
    bench = bench.assign(point=[names.get(float(lam), "") if here else ""
                                for lam, here in zip(bench["lam"], at_point)])
    runs = pd.concat([extra, bench], ignore_index=True)
    base_acc = runs[runs.role == "base"].set_index("seed")["test_acc"]
    ref_acc = runs[runs.role == "reference"].set_index("seed")["test_acc"]
    started_from = runs["base_seed"].fillna(runs["seed"]) if "base_seed" in runs else runs["seed"]
    runs["base_test_acc"] = started_from.map(base_acc)  # the base each run started from (a shared one, or its seed's)
    runs["reference_test_acc"] = runs["seed"].map(ref_acc)
    runs["acc_change"] = runs["test_acc"] - runs["base_test_acc"]
    runs["acc_change_vs_reference"] = runs["test_acc"] - runs["reference_test_acc"]
    claims = PAPER_CLAIMS.get(stands_for or "", {})
    for key, value in claims.items():
        runs[key] = value
    runs.insert(1, "method", runs["role"].map(lambda r: METHOD_NAMES.get(r, r)))
    front = ["experiment", "method", "role", "point", "seed", "lam", "val_acc", "test_acc", "acc_change",
             "acc_change_vs_reference", "speedup_b1"]
    runs = runs[[c for c in front if c in runs.columns] + [c for c in runs.columns if c not in front]]
    atomic_write_text(runs.to_csv(index=False), out_runs)

    points = operating_point_table(runs, chosen, batch=batch, unchanged=unchanged)
    for key, value in {**claims, **prov}.items():
        points[key] = value
    atomic_write_text(points.to_csv(index=False), out_points)
    return runs, points


#: Columns summarised as mean and std over seeds in the operating-point table.
SEED_COLUMNS = ("val_acc", "test_acc")
#: Per-slot decision counts of a run (darc.search.slot_decisions).
SLOT_DECISION_COLUMNS = ("slots_kept", "slots_replaced", "slots_mixed", "slots_dropped")


#: Display names of the ``role`` column (the table's ``method`` column).
METHOD_NAMES = {
    "base": "raw base", "reference": "equal-budget reference", "darc": "DARC", "sss": "SSS (uniform cost)",
    "darc_uniform": "DARC at uniform cost", "darc_params": "DARC, params cost model",
    "darc_macs": "DARC, MACs cost model",
    "random": "random decisions", "scratch": "DARC architecture from scratch",
    "tp_latency": "Torch-Pruning, matched latency", "tp_params": "Torch-Pruning, matched param. bytes",
    "tp_macs": "Torch-Pruning, matched MACs",
    "tpbn_latency": "Torch-Pruning BN-scale, matched latency",
    "tpbn_params": "Torch-Pruning BN-scale, matched param. bytes", "tpbn_macs": "Torch-Pruning BN-scale, matched MACs",
}
#: Peers built for one DARC point (their ``lam`` is the point's): compared with it at that point.
MATCHED_PEERS = ("random", "scratch", "tp_latency", "tp_params", "tp_macs", "tpbn_latency", "tpbn_params",
                 "tpbn_macs")
#: Peers with a lambda grid of their own: the grid run nearest the point's measured speed-up is compared.
GRID_PEERS = GRID_SEARCH_PEERS
#: Line styles of the grid peers in the trade-off figure.
GRID_STYLES = {"sss": ("^:", "C7"), "darc_uniform": ("s--", "C8"), "darc_params": ("<-.", "C9"),
               "darc_macs": (">-.", "C3")}


def _nearest_grid_run(runs: pd.DataFrame, role: str, speed_col: str, target: float | None) -> pd.DataFrame:
    """The run of ``role``'s first-seed grid whose measured speed-up is nearest ``target`` (ties: the higher
    validation accuracy)."""
    grid = runs[runs.role == role]
    if grid.empty or target is None or pd.isna(target) or speed_col not in grid:
        return grid.iloc[0:0]
    grid = grid[grid["seed"] == grid["seed"].min()]
    order = grid.assign(_gap=(grid[speed_col] - target).abs(), _val=-grid["val_acc"].fillna(0))
    return order.sort_values(["_gap", "_val"], kind="stable").iloc[:1].drop(columns=["_gap", "_val"])


#: The ``peers`` note of a point whose architecture is the base's and whose matched peers were not run.
PEERS_SKIPPED = "matched peers not run: the point keeps the base's architecture"


def operating_point_table(runs: pd.DataFrame, chosen: dict[str, float | None], *, batch: int = 1,
                          unchanged: set[float] = frozenset()) -> pd.DataFrame:
    """Mean +- std over seeds of the raw base, the equal-budget reference, each operating point and every
    peer beside the point it is matched to (random decisions, from scratch and Torch-Pruning built for the
    point; SSS's grid run nearest the point's measured batch-``batch`` speed-up), with the change of test
    accuracy against the reference, the base and (peers) the DARC point: mean, noise threshold, verdict.
    A point in ``unchanged`` (lambdas whose architecture is the base's) without matched peers says why in
    its ``peers`` column."""
    measured = [c for c in runs.columns if (c.startswith("speedup_b") and not c.endswith("_iqr"))
                or c in ("param_reduction", "macs_ratio", "kept_slots", *SLOT_DECISION_COLUMNS)
                or c.startswith(("peak_tensor_reduction_b", "peak_mem_reduction_b"))]
    speed_col = f"speedup_b{batch}"
    groups: list[tuple[str, str, float | None, pd.DataFrame, pd.DataFrame | None]] = [
        ("base", "", None, runs[runs.role == "base"], None),
        ("reference", "", 0.0, runs[runs.role == "reference"], None)]
    names = _point_names(chosen)
    for name, lam in chosen.items():
        sel = runs[(runs.role == "darc") & (runs["lam"] == lam)] if lam is not None else runs.iloc[0:0]
        groups.append(("darc", name, lam, sel, None))
        if lam is None or names[float(lam)].split("+")[0] != name:
            continue  # a point's peers are listed once, under the first point with its lambda
        name = names[float(lam)]
        for role in MATCHED_PEERS:
            peer = runs[(runs.role == role) & (runs["lam"] == lam)]
            if not peer.empty:
                groups.append((role, name, lam, peer, sel))
        target = sel[speed_col].mean() if speed_col in sel and not sel.empty else None
        for role in GRID_PEERS:
            peer = _nearest_grid_run(runs, role, speed_col, target)
            if not peer.empty:
                groups.append((role, name, float(peer["lam"].iloc[0]), peer, sel))
    ref = runs[runs.role == "reference"]["test_acc"].dropna().tolist()
    base = runs[runs.role == "base"]["test_acc"].dropna().tolist()
    rows = []
    for role, name, lam, frame, darc in groups:
        row: dict[str, Any] = {"method": METHOD_NAMES.get(role, role), "role": role, "point": name, "lam": lam,
                               "n_seeds": int(frame["seed"].nunique()),
                               "seeds": " ".join(str(int(s)) for s in sorted(frame["seed"].unique()))}
        for col in (*SEED_COLUMNS, *measured):
            values = frame[col].dropna().astype(float).tolist() if col in frame else []
            row[f"{col}_mean"], row[f"{col}_std"], _ = mean_std(values)
        acc = frame["test_acc"].dropna().tolist()
        others = [("reference", ref), ("base", base)]
        if darc is not None:
            others.append(("darc", darc["test_acc"].dropna().tolist()))
        if role != "base":
            for against, other in others:
                if against == role:
                    continue
                cmp = compare_means(acc, other) if acc and other else \
                    {"delta": None, "threshold": None, "verdict": "none"}
                row[f"change_vs_{against}"] = cmp["delta"]
                row[f"noise_vs_{against}"] = cmp["threshold"]
                row[f"verdict_vs_{against}"] = cmp["verdict"]
        if darc is not None and role.endswith("_latency"):
            row.update(_latency_match(runs, role, frame, darc, speed_col))
        if role not in ("base", "reference") and not frame.empty:
            row["kept"] = frame.sort_values("seed").iloc[0].get("kept")
        if role == "darc" and lam is not None and float(lam) in unchanged and not runs[
                runs.role.isin(MATCHED_PEERS) & (runs["lam"] == lam)].shape[0]:
            row["peers"] = PEERS_SKIPPED
        first = frame.sort_values("seed")
        recipe = [c for c in frame.columns if c.startswith("recipe")]  # darc.recipe.recipe_record: one per method
        for col in ("match_target", "match_measured", *recipe):  # the first seed's (each seed has its own target)
            if col in frame and not frame.empty:
                row[col] = first[col].iloc[0]
        if "match_reached" in frame and not frame["match_reached"].dropna().empty:
            row["match_reached"] = bool(frame["match_reached"].dropna().astype(bool).all())  # every seed's
        rows.append(row)
    return pd.DataFrame(rows)


def _latency_match(runs: pd.DataFrame, role: str, frame: pd.DataFrame, darc: pd.DataFrame, speed_col: str
                   ) -> dict[str, Any]:
    """Whether a latency-matched peer's speed-up, measured in the bench beside DARC's, lies within
    :data:`darc.selection.MATCH_TOLERANCE` of it (``match_ratio``, ``match_holds``). The bench times each such
    peer directly against DARC's network (``match_speedup_b<batch>``, mean over seeds); a table without that
    column divides the two speed-ups over the base (``match_ratio_via_base``, always reported). Where the match
    does not hold, the verdict against DARC is "not matched" and the peer family's trade-off curve (every
    network of that pruner, all matches and seeds) is read at DARC's speed-up instead
    (``curve_test_acc_at_darc``, ``curve_change_vs_darc``; empty where fewer than three of its points bracket
    it)."""
    if speed_col not in frame or speed_col not in darc or frame.empty or darc.empty:
        return {}
    peer_s, darc_s = float(frame[speed_col].mean()), float(darc[speed_col].mean())
    col = f"match_{speed_col}"
    direct = frame[col].dropna().astype(float) if col in frame else pd.Series(dtype=float)
    ratio = float(direct.mean()) if not direct.empty else peer_s / darc_s
    out: dict[str, Any] = {"match_ratio": ratio, "match_ratio_via_base": peer_s / darc_s,
                           "match_timed_against_darc": not direct.empty, "match_holds": match_holds(ratio, 1.0)}
    if out["match_holds"]:
        return out
    family = runs[runs.role.astype(str).str.startswith(role.split("_")[0] + "_")].dropna(subset=[speed_col, "test_acc"])
    acc = interpolate_at(list(zip(family[speed_col], family["test_acc"])), darc_s)
    out.update({"verdict_vs_darc": "not matched", "curve_test_acc_at_darc": acc,
                "curve_change_vs_darc": None if acc is None else acc - float(darc["test_acc"].mean())})
    return out


def _match_sentence(row: pd.Series) -> str:
    """How a latency match measured in the bench, and what its comparison with DARC rests on."""
    how = ("timed against DARC's network in the bench" if bool(row.get("match_timed_against_darc"))
           else "in the bench")
    text = f"measured at {row['match_ratio']:.2f}x DARC's speed-up, {how}"
    via = row.get("match_ratio_via_base")
    if bool(row.get("match_timed_against_darc")) and via is not None and pd.notna(via):
        text += f" (the two speed-ups over the base divide to {via:.2f}x)"
    if bool(row["match_holds"]):
        return text + ", within the 5 % a match allows: matched"
    curve = row.get("curve_change_vs_darc")
    reading = ("no three of its points bracket DARC's speed-up, so no curve comparison" if curve is None
               or pd.isna(curve) else f"its trade-off curve at DARC's speed-up reads "
               f"{100 * row['curve_test_acc_at_darc']:.2f} % ({100 * curve:+.2f} vs DARC)")
    return text + f", outside the 5 % a match allows: not matched; {reading}"


def _pm(mean: Any, std: Any, scale: float = 1.0, digits: int = 2) -> str:
    if mean is None or pd.isna(mean):
        return "-"
    text = f"{scale * mean:.{digits}f}"
    return text if std is None or pd.isna(std) else f"{text} ± {scale * std:.{digits}f}"


def summary_markdown(runs_tables: Sequence[str | Path], points_tables: Sequence[str | Path],
                     out_md: str | Path) -> str:
    """A Markdown page: per experiment, the operating points (mean +- std over seeds) against the
    equal-budget reference and the raw base, the first seed's lambda grid, and the paper's claims."""
    lines = ["# DARC reproduction: measured results", "",
             "Produced by `snakemake` from the raw runs. Operating points are chosen on the first seed's "
             "validation accuracy and reported on the test set as mean ± std over seeds; a change within "
             "2·sqrt(s_a²/n_a + s_b²/n_b) is \"no change\". `paper_*` values are the paper's claims, for "
             "reference.", ""]
    for runs_path, points_path in zip(runs_tables, points_tables):
        runs, points = pd.read_csv(runs_path), pd.read_csv(points_path)
        name = Path(runs_path).stem
        first = points.iloc[0]
        stand_in = " (stand-in dataset)" if bool(first.get("dataset_is_stand_in")) else ""
        lines += [f"## {name}: {first['model']} on {first['dataset']}{stand_in}", "",
                  f"scale `{first['scale']}`, {first['threads']} thread(s) on {first['cpu_model']}, "
                  f"torch {first['torch']}, commit `{first['git_commit']}`", ""]
        speed = sorted((c[:-5] for c in points.columns if c.startswith("speedup_b") and c.endswith("_mean")),
                       key=lambda c: int(c.removeprefix("speedup_b")))
        memory = sorted((c[:-5] for c in points.columns if c.startswith("peak_tensor_reduction_b")
                         and c.endswith("_mean")), key=lambda c: int(c.removeprefix("peak_tensor_reduction_b")))
        head = ["method", "lambda", "seeds", "val acc %", "test acc %", "vs reference", "vs base", "vs DARC point",
                *[f"speed-up b{c.removeprefix('speedup_b')}" for c in speed], "param. bytes",
                *[f"peak tensor mem. b{c.removeprefix('peak_tensor_reduction_b')}" for c in memory],
                "slots kept / replaced / mixed / dropped"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for _, row in points.iterrows():
            method = row.get("method") if isinstance(row.get("method"), str) else row["role"]
            label = method if not isinstance(row["point"], str) or not row["point"] else f"{method}, {row['point']}"
            changes = []
            for against in ("reference", "base", "darc"):
                delta = row.get(f"change_vs_{against}")
                changes.append("-" if delta is None or pd.isna(delta) else
                               f"{100 * delta:+.2f} ({row[f'verdict_vs_{against}']})")
            cells = [label, "-" if pd.isna(row["lam"]) else f"{row['lam']:g}", str(row["n_seeds"]),
                     _pm(row["val_acc_mean"], row["val_acc_std"], 100),
                     _pm(row["test_acc_mean"], row["test_acc_std"], 100),
                     *changes, *[_pm(row.get(f"{c}_mean"), row.get(f"{c}_std")) + "x" for c in speed],
                     _pm(row.get("param_reduction_mean"), None) + "x",
                     *[_pm(row.get(f"{c}_mean"), None) + "x" for c in memory],
                     " / ".join(_pm(row.get(f"{c}_mean"), None, digits=1) for c in SLOT_DECISION_COLUMNS)]
            lines.append("| " + " | ".join(cells) + " |")
        matches = points[points["match_holds"].notna()] if "match_holds" in points.columns else points.iloc[0:0]
        for _, row in matches.iterrows():
            lines.append(f"\n{row['method']} ({row['point']}): {_match_sentence(row)}.")
        skipped = points[points["peers"].notna()] if "peers" in points.columns else points.iloc[0:0]
        for _, row in skipped.drop_duplicates("lam").iterrows():
            lines.append(f"\nAt lambda {row['lam']:g} ({row['point']}): {row['peers']} (each would be the base "
                         "architecture retrained; `peers.at_unchanged_points: true` runs them).")
        grid = runs[(runs.role == "darc") & (runs["seed"] == runs["seed"].min())].sort_values("lam")
        cols = ["lam", "point", "val_acc", "test_acc", "acc_change_vs_reference", "arch_cost",
                *SLOT_DECISION_COLUMNS, "replaced_by", *speed, "param_reduction", *memory, "macs_ratio"]
        cols = [c for c in cols if c in grid.columns]
        lines += ["", f"Lambda grid, seed {int(grid['seed'].min()) if len(grid) else '-'}:", "",
                  "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        for _, row in grid.iterrows():
            cells = ["" if pd.isna(row[c]) else f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c])
                     for c in cols]
            lines.append("| " + " | ".join(cells) + " |")
        if "paper_speedup" in points.columns:
            lines.append(
                f"\nPaper (reference, {first['paper_experiment']}): {first['paper_speedup']}x "
                f"{first['paper_speedup_kind']} speed-up, {first['paper_memory_reduction']}x memory reduction, "
                f"accuracy change {100 * first['paper_acc_change']:+.1f} points.")
        lines.append("")
    text = "\n".join(lines) + "\n"
    atomic_write_text(text, out_md)
    return text


def rule_times(benchmark_dir: str | Path, out_csv: str | Path) -> pd.DataFrame:
    """Per rule: jobs, total and largest wall seconds, from Snakemake's ``benchmark:`` TSV files
    (``<benchmark_dir>/<rule>/<job>.tsv``)."""
    rows = []
    for path in sorted(Path(benchmark_dir).glob("*/*.tsv")):
        frame = pd.read_csv(path, sep="\t")
        rows.append({"rule": path.parent.name, "job": path.stem, "seconds": float(frame["s"].iloc[0])})
    jobs = pd.DataFrame(rows, columns=["rule", "job", "seconds"])
    table = jobs.groupby("rule")["seconds"].agg(jobs="count", total_s="sum", max_s="max").reset_index()
    table = table.sort_values("total_s", ascending=False)
    total = pd.DataFrame([{"rule": "all rules (sum of job wall times)", "jobs": int(table["jobs"].sum()),
                           "total_s": float(table["total_s"].sum()), "max_s": float(table["max_s"].max())}])
    table = pd.concat([table, total], ignore_index=True)
    atomic_write_text(table.to_csv(index=False), out_csv)
    return table


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


#: Markers of the peers in the trade-off figure.
PEER_MARKERS = {"random": "v", "scratch": "D", "tp_latency": "P", "tp_params": "X", "tp_macs": "*",
                "tpbn_latency": "p", "tpbn_params": "h", "tpbn_macs": "8"}


class _Panel:
    """One trade-off panel's y window (the region that decides: around the reference) and its labels.

    Values below the window are drawn at its lower edge with a downward marker and their value as a label;
    labels are placed at the end, each at the first offset where it overlaps no label placed before it."""

    def __init__(self, ax: Any, low: float, high: float) -> None:
        self.ax, self.low, self.high = ax, low, high
        self.labels: list[tuple[float, float, str]] = []

    def y(self, value: float) -> float:
        return max(value, self.low)

    def plot(self, x: Any, acc: Any, fmt: str, *, label: str | None = None, names: Sequence[str] | None = None,
             clipped_names: Sequence[str] | None = None, **kw: Any) -> None:
        """A series (accuracies in %), clipped to the window; ``names`` label each point, ``clipped_names``
        only the points below the window."""
        xs, ys = list(x), list(acc)
        line = self.ax.plot(xs, [self.y(v) for v in ys], fmt, label=label, **kw)[0]
        for i, (xv, yv) in enumerate(zip(xs, ys)):
            name = names[i] if names else None
            if yv < self.low:
                name = name or (clipped_names[i] if clipped_names else None)
                self.ax.plot([xv], [self.low], "v", color=line.get_color(), ms=7, clip_on=False)
                self.labels.append((xv, self.low, f"{name + ': ' if name else ''}{yv:.1f} %"))
            elif name:
                self.labels.append((xv, yv, name))

    def point(self, x: float, acc: float, xerr: Any, yerr: Any, fmt: str, *, label: str | None = None,
              **kw: Any) -> None:
        """One mean +- std marker, clipped to the window (its value labelled where it is clipped)."""
        below = acc < self.low
        self.ax.errorbar(x, self.y(acc), xerr=xerr, yerr=None if below else yerr, fmt="v" if below else fmt,
                         label=label, clip_on=False, **kw)
        if below:
            self.labels.append((x, self.low, f"{acc:.1f} %"))

    def place_labels(self, fontsize: int = 7) -> None:
        """Write the labels, each at the first of a few offsets whose box overlaps none placed before it."""
        offsets = [(4, 4), (4, -11), (-4, 4), (4, 13), (-4, -11), (4, -20), (4, 22), (-4, 13)]
        placed: list[tuple[float, float, float, float]] = []
        to_px = self.ax.transData.transform
        for x, y, text in sorted(self.labels):
            px, py = to_px((x, y))
            w, h = 0.6 * fontsize * len(text), 1.3 * fontsize
            for dx, dy in offsets:
                left = px + dx if dx >= 0 else px + dx - w
                box = (left, py + dy, left + w, py + dy + h)
                if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
                    break
            placed.append(box)
            self.ax.annotate(text, (x, y), fontsize=fontsize, textcoords="offset points", xytext=(dx, dy),
                             ha="left" if dx >= 0 else "right", annotation_clip=False)


def tradeoff_window(runs: pd.DataFrame, *, margin: float = 0.4, min_below: float = 1.5,
                    max_below: float = 4.0) -> tuple[float, float]:
    """The y window (test accuracy, %) that decides a trade-off panel: from the reference down to the
    operating points and the matched peers (at least ``min_below``, at most ``max_below`` points under the
    reference), up to the highest of them; ``margin`` either side."""
    acc = 100 * runs.groupby(["role", runs["lam"].fillna(-1)])["test_acc"].mean()
    ref = float(acc.xs("reference", level="role").mean()) if "reference" in acc.index.get_level_values(0) else \
        float(acc.max())
    deciding = [float(v) for (role, _), v in acc.items()
                if role in ("base", "reference", *PEER_MARKERS) or (role == "darc" and ref - max_below <= v)]
    low = max(min(min(deciding, default=ref), ref - min_below), ref - max_below) - margin
    return low, max(max(deciding, default=ref), ref) + margin


def _peer_series(panel: _Panel, runs: pd.DataFrame, col: str) -> None:
    """The peers on one trade-off panel: grid peers as a line over their first seed's lambdas, matched peers
    as mean +- std markers (one per DARC point they copy)."""
    for role in GRID_PEERS:
        grid = runs[runs.role == role]
        grid = grid[grid["seed"] == grid["seed"].min()].sort_values("lam")
        if len(grid):
            style, color = GRID_STYLES.get(role, ("^:", "C7"))
            panel.plot(grid[col], 100 * grid["test_acc"], style, ms=4, color=color,
                       label=f"{METHOD_NAMES[role]} grid (seed {int(grid['seed'].min())})",
                       clipped_names=[f"{role.upper() if role == 'sss' else role} λ={lam:g}" for lam in grid["lam"]])
    for i, (role, marker) in enumerate(PEER_MARKERS.items()):
        peers = runs[runs.role == role]
        for j, (_lam, frame) in enumerate(peers.groupby("lam")):
            panel.point(frame[col].mean(), 100 * frame["test_acc"].mean(),
                        xerr=frame[col].std() if len(frame) > 1 else None,
                        yerr=100 * frame["test_acc"].std() if len(frame) > 1 else None, fmt=marker, ms=6,
                        capsize=2, color=f"C{4 + i}",
                        label=f"{METHOD_NAMES[role]} ({len(frame)} seed{'s' if len(frame) > 1 else ''})"
                        if j == 0 else None)


def _ratio_axis(ax: Any, values: Any) -> None:
    """A log x axis for a ratio (base / compressed), ticked at round ratios."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

    finite = [float(v) for v in values if pd.notna(v) and v > 0]
    lo, hi = min(finite + [1.0]), max(finite + [1.0])
    ax.set_xscale("log")
    ax.set_xlim(lo / 1.08, hi * 1.15)
    ticks = [t for t in (0.9, 1, 1.25, 1.5, 2, 3, 4, 6, 8, 12, 16, 24, 32, 50) if lo / 1.08 <= t <= hi * 1.15]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.set_xticklabels([f"{t:g}x" for t in ticks])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())


def tradeoff_figure(table_csv: str | Path, png: str | Path, pdf: str | Path, batch: int = 1) -> None:
    """Test accuracy vs measured speed-up at ``batch`` (the protocol's batch size), and vs parameter
    reduction, both on log axes: the first seed's lambda grid, the operating points (mean +- std over seeds),
    the equal-budget reference and the raw base (mean, with a +-std band). Each panel shows the accuracy window
    that decides (:func:`tradeoff_window`); a point below it sits on the lower edge, labelled with its value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = pd.read_csv(table_csv)
    first = runs.iloc[0]
    darc = runs[runs.role == "darc"]
    grid = darc[darc["seed"] == darc["seed"].min()].sort_values("lam")
    speed = f"speedup_b{batch}" if f"speedup_b{batch}" in runs.columns else "speedup_b1"
    low, high = tradeoff_window(runs)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, col, label in ((axes[0], speed, f"measured speed-up, batch {speed.removeprefix('speedup_b')}"),
                           (axes[1], "param_reduction", "parameter-byte reduction")):
        panel = _Panel(ax, low, high)
        for role, color in (("base", "gray"), ("reference", "black")):
            acc = 100 * runs[runs.role == role]["test_acc"]
            ax.axhline(acc.mean(), color=color, ls="--", lw=0.8, label=f"{role} (mean of {len(acc)})")
            if len(acc) > 1:
                ax.axhspan(acc.mean() - acc.std(), acc.mean() + acc.std(), color=color, alpha=0.1)
        panel.plot(grid[col], 100 * grid["test_acc"], "o-", ms=4, label=f"DARC grid (seed {int(grid['seed'].min())})",
                   names=[f"λ={lam:g}" for lam in grid["lam"]])
        chosen = darc[darc["point"].fillna("") != ""].groupby("point")
        for name, frame in chosen:
            panel.point(frame[col].mean(), 100 * frame["test_acc"].mean(), xerr=frame[col].std(),
                        yerr=100 * frame["test_acc"].std(), fmt="s", ms=6, capsize=3,
                        label=f"{name} (λ={frame['lam'].iloc[0]:g}, {len(frame)} seeds)")
        _peer_series(panel, runs, col)
        _ratio_axis(ax, runs[col])
        ax.set_ylim(low, high)
        ax.set_xlabel(f"{label} (x, log scale)")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(True, which="major", lw=0.3, alpha=0.5)
        panel.place_labels()
    stand_in = " [stand-in data]" if bool(first.get("dataset_is_stand_in")) else ""
    fig.suptitle(f"{first['model']} on {first['dataset']}{stand_in}, scale {first['scale']}, "
                 f"{first['threads']} thread(s); points below {low:.1f} % sit on the lower edge", fontsize=9)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=3, frameon=False)
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    _save(fig, png, pdf, _meta(runs))
    plt.close(fig)


#: Colours of candidate kinds in the gate and architecture figures.
CANDIDATE_COLORS = {"original": "C0", "narrow(ratio=0.5)": "C1", "narrow(ratio=0.25)": "C8", "dwsep": "C2",
                    "identity": "C3", "mixed": "C4", "dropped": "white"}


def _candidate_color(label: str) -> str:
    return CANDIDATE_COLORS.get(label, CANDIDATE_COLORS.get(label.split("(")[0], "C5"))


def gates_figure(search_dirs: Sequence[str | Path], png: str | Path, pdf: str | Path) -> None:
    """Gate trajectories (|gate| against epochs since the search began, logged every few steps), one panel
    per lambda, one line per (slot, candidate); the warm-up, if any, is shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = []
    for d in search_dirs:
        d = Path(d)
        result = json.loads((d / "result.json").read_text())
        rows = read_gate_log(d)
        runs.append((result, pd.DataFrame(rows), settling(rows) if len(logged_times(rows)) > 1 else None))
    runs.sort(key=lambda r: r[0]["lam"])
    fig, axes = plt.subplots(1, len(runs), figsize=(3.2 * len(runs), 3.2), squeeze=False, sharey=True)
    for ax, (result, frame, settled) in zip(axes[0], runs):
        for (_slot, cand), g in frame.groupby(["slot", "candidate"]):
            ax.plot(g["t"], g["gate"].abs(), color=_candidate_color(cand), lw=0.8, alpha=0.8)
        warm = frame[frame["phase"] == "warmup"]["t"]
        if len(warm):
            ax.axvspan(0, warm.max(), color="gray", alpha=0.15, lw=0)
        ax.set_title(f"λ={result['lam']:g}, cost model {result['cost_model']}" + _settling_line(settled), fontsize=8)
        ax.set_xlabel("epochs since the search began")
    axes[0][0].set_ylabel("|gate|")
    shown = {c.split("(")[0] if c.startswith("narrow") and c not in CANDIDATE_COLORS else c
             for _, f, _ in runs for c in f["candidate"].unique()}
    handles = [plt.Line2D([], [], color=_candidate_color(k), label=k) for k in sorted(shown)]
    axes[0][-1].legend(handles=handles, fontsize=7)
    first = runs[0][0]
    fig.suptitle(f"{first['model']} on {first['dataset']}, scale {first['scale']}", fontsize=9, y=1.06)
    _save(fig, png, pdf, {k: str(first.get(k)) for k in PROVENANCE_COLUMNS})
    plt.close(fig)


def _settling_line(settled: Settling | None) -> str:
    """A gates panel's second title line: did the live candidates change in the search's last third?"""
    if settled is None:
        return ""
    if settled.settled:
        return f"\nlast third: settled, max move {settled.max_change:.2f}"
    return f"\nlast third: {len(settled.zeroed) + len(settled.revived)} gate(s) hit/left zero"


def _slot_choice(labels: list[str]) -> str:
    if not labels:
        return "dropped"
    return labels[0] if len(labels) == 1 else "mixed"


def architecture_figure(table_csv: str | Path, png: str | Path, pdf: str | Path) -> None:
    """Per-slot decisions of the first seed's lambda grid: slots (rows) x lambda (columns), coloured by
    what each slot ended with (the original, an alternative, several candidates, or nothing)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    runs = pd.read_csv(table_csv)
    darc = runs[runs.role == "darc"]
    grid = darc[darc["seed"] == darc["seed"].min()].sort_values("lam")
    kept = [json.loads(k) for k in grid["kept"]]
    slots = list(kept[0]) if kept else []
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(grid), 0.8 + 0.3 * len(slots)))
    used = set()
    for j, decisions in enumerate(kept):
        for i, slot in enumerate(slots):
            choice = _slot_choice(decisions.get(slot, []))
            used.add(choice)
            ax.add_patch(plt.Rectangle((j, i), 1, 1, facecolor=_candidate_color(choice), edgecolor="gray", lw=0.5))
    ax.set_xlim(0, len(grid))
    ax.set_ylim(len(slots), 0)
    ax.set_xticks([j + 0.5 for j in range(len(grid))], [f"λ={lam:g}" for lam in grid["lam"]], fontsize=7)
    ax.set_yticks([i + 0.5 for i in range(len(slots))], slots, fontsize=7)
    ax.legend(handles=[Patch(facecolor=_candidate_color(c), edgecolor="gray", label=c) for c in sorted(used)],
              fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left")
    first = runs.iloc[0]
    ax.set_title(f"{first['model']} on {first['dataset']}, scale {first['scale']}: what each slot became",
                 fontsize=8)
    _save(fig, png, pdf, _meta(runs))
    plt.close(fig)
