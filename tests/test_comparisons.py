"""Comparisons a reader can trust: bitwise-repeatable stages, a validation split that training never sees,
operating points chosen on validation only, equal-budget reference rows and seed statistics."""

import json
import math

import pandas as pd
import pytest
import torch

from darc import experiment as E
from darc.config import SEED_KEYS, experiment_for_seed, load_experiment
from darc.data import dataset_targets, get_dataset, stratified_split
from darc.reporting import experiment_tables, select_operating_points
from darc.selection import compare_means, select_points

EXP = {
    "dataset": "synthetic", "model": "wrn10_2", "threads": 1, "validation": 32, "seeds": [0, 1],
    "model_kwargs": {"input_size": 8},
    "train": {"epochs": 1, "batch_size": 32, "lr": 0.05, "schedule": "constant"},
    "search": {"lams": [1.0], "cost_model": "params", "calibration_samples": 16,
               "train": {"epochs": 1, "batch_size": 32, "lr": 0.05, "schedule": "constant"}},
    "finetune": {"epochs": 1, "batch_size": 32, "lr": 0.01, "schedule": "constant"},
}
TIMING = {"seconds", "img_per_s", "epoch_seconds", "seconds_this_call", "train_seconds"}


def _weights(path):
    return torch.load(path, weights_only=True)


def _same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _metrics(run_dir):
    rows = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def _pipeline(out, exp):
    E.train_base(exp, out / "base", scale="smoke", progress=False)
    E.search(exp, 1.0, out / "base", out / "search", scale="smoke", progress=False)
    E.finetune_search(exp, out / "search", out / "ft", scale="smoke", progress=False)


def test_train_search_finetune_rerun_bitwise_identical(tmp_path):
    exp = experiment_for_seed(EXP, 0)
    _pipeline(tmp_path / "a", exp)
    _pipeline(tmp_path / "b", exp)
    a, b = tmp_path / "a", tmp_path / "b"
    assert _same_weights(_weights(a / "base" / "model.pt"), _weights(b / "base" / "model.pt"))
    assert _metrics(a / "base") == _metrics(b / "base")
    sa, sb = (json.loads((d / "search" / "search.json").read_text()) for d in (a, b))
    assert sa["final_gates"] == sb["final_gates"] and sa["kept"] == sb["kept"]
    assert _metrics(a / "search" / "train") == _metrics(b / "search" / "train")
    assert _same_weights(_weights(a / "search" / "materialized" / "weights.pt"),
                         _weights(b / "search" / "materialized" / "weights.pt"))
    assert _same_weights(_weights(a / "ft" / "model.pt"), _weights(b / "ft" / "model.pt"))
    assert _metrics(a / "ft") == _metrics(b / "ft")
    # validation accuracy is measured on every evaluated epoch, beside test accuracy
    assert _metrics(a / "ft")[-1]["val_acc"] is not None
    # another seed is another run
    _pipeline(tmp_path / "c", experiment_for_seed(EXP, 1))
    assert not _same_weights(_weights(a / "base" / "model.pt"), _weights(tmp_path / "c" / "base" / "model.pt"))


def test_reference_is_the_same_pipeline_with_only_originals_and_no_penalty(tmp_path):
    exp = experiment_for_seed(EXP, 0)
    E.train_base(exp, tmp_path / "base", progress=False)
    ref = E.search(exp, 5.0, tmp_path / "base", tmp_path / "ref", progress=False, method="reference")
    assert ref["role"] == "reference" and ref["lam"] == 0.0
    assert all(kept == ["original"] for kept in ref["kept"].values())
    darc_cfg, ref_cfg = E.search_config(exp, 5.0), E.search_config(exp, 5.0, method="reference")
    assert ref_cfg.train == darc_cfg.train  # same epochs, schedule, seed


def test_seed_derives_every_seed_key():
    exp = experiment_for_seed(EXP, 7)
    for path in SEED_KEYS:
        node = exp
        for part in path:
            node = node[part]
        assert node == 7
    assert "seed" not in EXP  # the input is not modified


def test_cli_seed_override_reseeds_the_whole_run(tmp_path):
    import yaml

    cfg = tmp_path / "exp.yaml"
    cfg.write_text(yaml.safe_dump(EXP))
    exp = load_experiment(cfg, ["seed=3"])
    assert exp["train"]["seed"] == exp["search"]["train"]["seed"] == exp["finetune"]["seed"] == 3
    assert load_experiment(cfg)["finetune"]["seed"] == 0  # the first of `seeds`


def test_validation_split_is_stratified_disjoint_and_unaugmented():
    full = get_dataset("fashion-mnist", train_transform=False)
    bundle = get_dataset("fashion-mnist", subset=(2000, 100), seed=0, val_size=5000)
    assert len(bundle.val) == 5000 and bundle.meta.n_val == 5000 and len(bundle.train) == 2000
    counts = torch.bincount(dataset_targets(bundle.val), minlength=10)
    assert counts.tolist() == [500] * 10  # Fashion-MNIST is balanced: exactly proportional
    val_idx = set(bundle.val.indices)
    train_idx = {bundle.train.dataset.indices[i] for i in bundle.train.indices}
    assert not val_idx & train_idx
    i = bundle.val.indices[0]
    assert torch.equal(bundle.val[0][0], full.train[i][0])  # the test transform: no crop, no flip
    again = get_dataset("fashion-mnist", subset=(2000, 100), seed=0, val_size=5000)
    assert again.val.indices == bundle.val.indices
    other = get_dataset("fashion-mnist", subset=(2000, 100), seed=1, val_size=5000)
    assert other.val.indices != bundle.val.indices


def test_stratified_split_allocates_by_largest_remainder():
    targets = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    held, rest = stratified_split(targets, 9, seed=0)
    assert torch.bincount(targets[held]).tolist() == [4, 3, 2]  # 4.5, 2.7, 1.8: floors 4, 2, 1; +1 to .8, .7
    assert len(rest) == 91 and not set(held.tolist()) & set(rest.tolist())
    with pytest.raises(ValueError, match="validation split"):
        stratified_split(targets, 100, seed=0)


RUNS = [
    {"lam": 0.5, "val_acc": 0.90, "test_acc": 0.80, "arch_cost": 0.9},
    {"lam": 1.0, "val_acc": 0.89, "test_acc": 0.95, "arch_cost": 0.6},
    {"lam": 2.0, "val_acc": 0.85, "test_acc": 0.70, "arch_cost": 0.3},
]


def test_operating_points_read_validation_accuracy_only():
    chosen = select_points(RUNS, reference_val_acc=0.895, points={"no_loss": 0.0, "loss_1pct": 0.01})
    assert chosen == {"no_loss": 0.5, "loss_1pct": 1.0}
    swapped = [dict(r, test_acc=t) for r, t in zip(RUNS, [0.1, 0.2, 0.99])]
    assert select_points(swapped, 0.895, {"no_loss": 0.0, "loss_1pct": 0.01}) == chosen
    # the check can fail: the same swap applied to validation accuracy changes the choice
    moved = [dict(r, val_acc=t) for r, t in zip(RUNS, [0.1, 0.2, 0.99])]
    assert select_points(moved, 0.895, {"no_loss": 0.0, "loss_1pct": 0.01}) == {"no_loss": 2.0, "loss_1pct": 2.0}
    assert select_points(RUNS, 0.99, {"no_loss": 0.0}) == {"no_loss": None}


def test_selection_refuses_runs_without_validation(tmp_path):
    paths = []
    for i, r in enumerate([*RUNS, {"lam": 0.0, "val_acc": None}]):
        paths.append(tmp_path / f"{i}.json")
        paths[-1].write_text(json.dumps(r))
    with pytest.raises(ValueError, match="validation"):
        select_operating_points(paths[:3], paths[3], {}, tmp_path / "points.json")


def test_no_change_within_seed_noise():
    assert compare_means([0.90, 0.91, 0.92], [0.905, 0.915, 0.90])["verdict"] == "no change"
    assert compare_means([0.95, 0.951, 0.949], [0.90, 0.901, 0.899])["verdict"] == "gain"
    assert compare_means([0.80, 0.801, 0.799], [0.90, 0.901, 0.899])["verdict"] == "loss"
    assert compare_means([0.9], [0.8])["verdict"] == "one seed"
    c = compare_means([1.0, 3.0], [0.0, 0.0])
    assert c["threshold"] == pytest.approx(2 * math.sqrt(2.0 / 2))


def test_tables_have_equal_budget_rows_and_mean_std(tmp_path):
    def write(name, obj):
        path = tmp_path / name
        path.write_text(json.dumps(obj))
        return path

    bases = [write(f"b{s}.json", {"seed": s, "val_acc": 0.80 + s / 100, "test_acc": 0.79 + s / 100}) for s in (0, 1, 2)]
    refs = [write(f"r{s}.json", {"seed": s, "lam": 0.0, "val_acc": 0.85, "test_acc": 0.84 + s / 1000})
            for s in (0, 1, 2)]
    bench = pd.DataFrame([
        {"experiment": "x", "role": "darc", "seed": s, "lam": lam, "val_acc": 0.85, "test_acc": acc,
         "speedup_b1": sp, "speedup_b1_iqr": 0.01, "param_reduction": 2.0, "kept_slots": 3, "kept": "{}",
         "scale": "smoke", "dataset": "synthetic", "dataset_is_stand_in": True, "model": "m", "threads": 1,
         "cpu_model": "cpu", "torch": "2", "git_commit": "abc"}
        for s, lam, acc, sp in [(0, 1.0, 0.84, 1.5), (0, 2.0, 0.80, 2.0), (1, 1.0, 0.842, 1.6), (2, 1.0, 0.838, 1.4)]
    ])
    bench.to_csv(tmp_path / "bench.csv", index=False)
    points = write("points.json", {"points": {"no_loss": 1.0, "loss_1pct": None}})
    runs, table = experiment_tables(tmp_path / "bench.csv", bases, refs, points, "cifar10-wrn",
                                    tmp_path / "runs.csv", tmp_path / "points.csv")
    assert set(runs["role"]) == {"base", "reference", "darc"}
    assert runs.loc[(runs.role == "darc") & (runs["seed"] == 1), "acc_change_vs_reference"].iloc[0] == \
        pytest.approx(0.842 - 0.841)
    ref = table[table.role == "reference"].iloc[0]
    assert ref["n_seeds"] == 3 and ref["test_acc_mean"] == pytest.approx(0.841)
    point = table[table.point == "no_loss"].iloc[0]
    assert point["n_seeds"] == 3 and point["speedup_b1_mean"] == pytest.approx(1.5)
    assert point["test_acc_std"] > 0 and point["verdict_vs_reference"] == "no change"
    assert point["verdict_vs_base"] == "gain"
    assert table[table.point == "loss_1pct"].iloc[0]["n_seeds"] == 0
    assert "paper_speedup" in table.columns and "git_commit" in table.columns


def test_match_holds_within_five_percent_and_curves_interpolate_only_between_bracketing_points():
    from darc.selection import interpolate_at, match_holds

    assert match_holds(1.73, 1.65) and not match_holds(1.04, 1.17) and not match_holds(float("nan"), 1.2)
    curve = [(1.2, 0.93), (1.5, 0.92), (2.0, 0.90)]
    assert interpolate_at(curve, 1.5) == pytest.approx(0.92)
    mid = interpolate_at(curve, 1.7)
    t = (math.log(1.7) - math.log(1.5)) / (math.log(2.0) - math.log(1.5))
    assert mid == pytest.approx(0.92 + t * (0.90 - 0.92))
    assert interpolate_at(curve, 2.5) is None and interpolate_at(curve, 1.1) is None  # never extrapolated
    assert interpolate_at(curve[:2], 1.3) is None  # fewer than three points
    assert interpolate_at([(1.2, 0.9), (1.2, 0.8), (1.5, 0.7)], 1.2) == pytest.approx(0.85)  # ties averaged


def test_a_latency_match_outside_five_percent_in_the_bench_is_not_matched_and_read_on_its_curve(tmp_path):
    from darc.reporting import operating_point_table

    def row(role, seed, lam, acc, sp):
        return {"role": role, "seed": seed, "lam": lam, "val_acc": acc, "test_acc": acc, "speedup_b1": sp}

    runs = pd.DataFrame([
        row("reference", s, 0.0, 0.94, 1.0) for s in (0, 1)] + [
        row("darc", s, 8.0, 0.926 + s / 1000, 1.65) for s in (0, 1)] + [
        row("tp_latency", 0, 8.0, 0.93, 1.40), row("tp_latency", 1, 8.0, 0.931, 1.42),  # timed 14 % slower
        row("tp_params", 0, 8.0, 0.920, 2.06), row("tp_macs", 0, 8.0, 0.925, 1.90),
        row("tpbn_latency", 0, 8.0, 0.90, 1.66), row("tpbn_latency", 1, 8.0, 0.91, 1.64)])
    table = operating_point_table(runs, {"loss_1pct": 8.0}, batch=1)
    tp = table[table.role == "tp_latency"].iloc[0]
    assert not tp["match_holds"] and tp["verdict_vs_darc"] == "not matched"
    assert tp["match_ratio"] == pytest.approx(1.41 / 1.65)
    from darc.selection import interpolate_at

    want = interpolate_at([(1.40, 0.93), (1.42, 0.931), (2.06, 0.92), (1.90, 0.925)], 1.65)
    assert tp["curve_test_acc_at_darc"] == pytest.approx(want)
    assert tp["curve_change_vs_darc"] == pytest.approx(want - 0.9265)
    bn = table[table.role == "tpbn_latency"].iloc[0]
    assert bn["match_holds"] and bn["verdict_vs_darc"] in ("loss", "no change")


def test_a_latency_match_timed_against_darc_in_the_bench_is_judged_on_that_timing(tmp_path):
    """The bench's direct A/B against DARC's network (``match_speedup_b<batch>``) decides the match; the two
    speed-ups over the base, timed in separate sessions, are only reported beside it."""
    from darc.reporting import operating_point_table

    def row(role, seed, lam, acc, sp, direct=None):
        return {"role": role, "seed": seed, "lam": lam, "val_acc": acc, "test_acc": acc, "speedup_b64": sp,
                "match_speedup_b64": direct}

    runs = pd.DataFrame([
        row("reference", s, 0.0, 0.94, 1.0) for s in (0, 1)] + [
        row("darc", s, 1.0, 0.93 + s / 1000, 1.41) for s in (0, 1)] + [
        row("tp_latency", 0, 1.0, 0.935, 1.62, 1.01), row("tp_latency", 1, 1.0, 0.936, 1.60, 1.03)])
    table = operating_point_table(runs, {"loss_1pct": 1.0}, batch=64)
    tp = table[table.role == "tp_latency"].iloc[0]
    assert tp["match_timed_against_darc"] and tp["match_holds"]
    assert tp["match_ratio"] == pytest.approx(1.02)
    assert tp["match_ratio_via_base"] == pytest.approx(1.61 / 1.41)  # 14 % apart: would not have held
    assert tp["verdict_vs_darc"] != "not matched"
    runs.loc[runs.role == "tp_latency", "match_speedup_b64"] = [1.10, 1.12]
    tp = operating_point_table(runs, {"loss_1pct": 1.0}, batch=64).query("role == 'tp_latency'").iloc[0]
    assert not tp["match_holds"] and tp["verdict_vs_darc"] == "not matched"
