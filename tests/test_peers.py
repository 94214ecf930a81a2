"""The peers DARC is compared with: SSS (uniform cost, originals only), random decisions with DARC's counts,
DARC's architecture from scratch; each is a plain module, read back like a DARC fine-tune, with the training
budget DARC got; and the tables put each beside the point it copies."""

import json

import pandas as pd
import pytest
import torch
from torch import nn

from darc import experiment as E
from darc.config import experiment_for_seed
from darc.gates import CandidateRef, GatedSlot
from darc.peers import stages
from darc.peers.decisions import (
    architecture_decisions,
    decision_counts,
    draw_random_decisions,
    keeps_base_architecture,
)
from darc.peers.loading import load_finetuned
from darc.reporting import (
    PEERS_SKIPPED,
    experiment_tables,
    points_to_reseed,
    points_with_peers,
    select_operating_points,
    summary_markdown,
)

EXP = {
    "dataset": "synthetic", "model": "wrn10_2", "threads": 1, "validation": 32, "seeds": [0, 1],
    "model_kwargs": {"input_size": 8},
    "train": {"epochs": 1, "batch_size": 32, "lr": 0.05, "schedule": "constant"},
    "search": {"lams": [3.0], "cost_model": "params", "calibration_samples": 16, "distill_steps": 5,
               "train": {"epochs": 1, "batch_size": 32, "lr": 0.05, "schedule": "constant"}},
    "finetune": {"epochs": 1, "batch_size": 32, "lr": 0.01, "schedule": "constant"},
}


@pytest.fixture(scope="module")
def darc_run(tmp_path_factory):
    """A trained base and a DARC search at a lambda that changes some slots."""
    out = tmp_path_factory.mktemp("darc")
    exp = experiment_for_seed(EXP, 0)
    E.train_base(exp, out / "base", progress=False)
    E.search(exp, 3.0, out / "base", out / "search", progress=False)
    return exp, out


def _is_plain(model: nn.Module) -> bool:
    return not any(isinstance(m, GatedSlot) for m in model.modules())


def test_uniform_cost_sss_searches_only_originals_at_equal_cost(darc_run, tmp_path):
    exp, out = darc_run
    cfg = E.search_config(exp, 3.0, method="sss")
    assert cfg.candidates == ["original"] and cfg.cost_model == "uniform"
    assert cfg.train == E.search_config(exp, 3.0).train  # the same recipe as DARC's search
    res = E.search(exp, 3.0, out / "base", tmp_path / "sss", progress=False, method="sss")
    assert res["role"] == "sss"
    costs = json.loads((tmp_path / "sss" / "costs.json").read_text())["slots"]
    assert {c["original"]["normalized"] for c in costs.values()} == {1.0 / len(costs)}
    assert all(set(labels) <= {"original"} for labels in res["kept"].values())


def test_random_deal_keeps_darc_counts_and_respects_what_applies():
    narrow = CandidateRef("narrow", {"ratio": 0.5})
    wanted = {"a": None, "b": narrow, "c": CandidateRef("original"), "d": narrow}
    allowed = {"a": {"original", narrow.label}, "b": {"original"}, "c": {"original", narrow.label},
               "d": {"original", narrow.label}}
    deals = [draw_random_decisions(wanted, allowed, seed=s) for s in range(20)]
    for deal in deals:
        assert decision_counts(deal) == decision_counts(wanted)
        assert deal["b"] is None or deal["b"].label == "original"  # b cannot take narrow
    assert len({json.dumps({k: None if v is None else v.label for k, v in d.items()}) for d in deals}) > 1
    assert deals[3] == draw_random_decisions(wanted, allowed, seed=3)  # seeded
    with pytest.raises(ValueError, match="no random deal"):
        draw_random_decisions({"a": narrow}, {"a": {"original"}}, seed=0, tries=5)


def test_random_decisions_peer_copies_counts_and_gets_darcs_budget(darc_run, tmp_path):
    exp, out = darc_run
    res = stages.random_decisions(exp, out / "base", out / "search", tmp_path / "random", progress=False)
    darc = json.loads((out / "search" / "result.json").read_text())
    arch = json.loads((out / "search" / "materialized" / "architecture.json").read_text())
    assert res["role"] == "random" and res["lam"] == darc["lam"] and res["matches"] == "lam3"
    assert res["darc_counts"] == decision_counts(architecture_decisions(arch))
    mine = json.loads(Path_(res["architecture"]).read_text())
    assert decision_counts(architecture_decisions(mine)) == res["darc_counts"]
    model = load_finetuned(tmp_path / "random")
    assert _is_plain(model)
    assert model(torch.zeros(2, 3, 8, 8)).shape[0] == 2
    log = [json.loads(line) for line in (tmp_path / "random" / "log.jsonl").read_text().splitlines()]
    assert max(r["epoch"] for r in log) == stages.peer_recipe(exp, 224).epochs == 2  # epochs count from 1


def test_random_peer_from_the_seeds_gated_start_deals_the_same_slots_without_distilling(darc_run, tmp_path,
                                                                                        monkeypatch):
    """With the seed's gated start (``darc gate``, as the workflow runs it) the random peer deals DARC's
    decisions to the same slots as without, from DARC's own distilled alternatives (no second distillation)."""
    import darc.gates

    exp, out = darc_run
    E.gate(exp, out / "base", tmp_path / "gated" / "start.pt")
    alone = stages.random_decisions(exp, out / "base", out / "search", tmp_path / "alone", progress=False)

    def no_distilling(*args, **kwargs):
        raise AssertionError("the random peer distilled again")

    monkeypatch.setattr(darc.gates, "distill", no_distilling)
    shared = stages.random_decisions(exp, out / "base", out / "search", tmp_path / "shared", progress=False,
                                     start=tmp_path / "gated" / "start.pt")
    decided = [architecture_decisions(json.loads(Path_(r["architecture"]).read_text())) for r in (alone, shared)]
    assert decided[0] == decided[1] and shared["darc_counts"] == alone["darc_counts"]


def test_scratch_peer_has_darcs_architecture_and_fresh_weights(darc_run, tmp_path):
    exp, out = darc_run
    res = stages.from_scratch(exp, out / "search", tmp_path / "scratch", progress=False)
    assert res["role"] == "scratch"
    darc_arch = json.loads((out / "search" / "materialized" / "architecture.json").read_text())
    assert architecture_decisions(json.loads(Path_(res["architecture"]).read_text())) == \
        architecture_decisions(darc_arch)
    assert stages.scratch_recipe(exp, 224).epochs == 1 + 2
    fresh = stages.reinitialised(darc_arch, seed=0)
    searched = load_finetuned(tmp_path / "scratch")  # trained from scratch, readable as a fine-tune
    assert _is_plain(searched)
    darc_weights = torch.load(out / "search" / "materialized" / "weights.pt", weights_only=True)
    assert any(not torch.equal(v, darc_weights[k]) for k, v in fresh.state_dict().items() if v.is_floating_point())


def test_peer_budgets_count_images_so_capped_epochs_count_for_what_they_saw():
    exp = {**EXP, "search": {**EXP["search"], "warmup_epochs": 1,
                             "train": {**EXP["search"]["train"], "max_steps_per_epoch": 2}},
           "finetune": {**EXP["finetune"], "epochs": 2, "max_steps_per_epoch": 3}}
    assert stages.darc_images_after_base(exp, 1000) == 2 * 2 * 32 + 2 * 3 * 32  # 320 images
    peer = stages.peer_recipe(exp, 1000)  # exactly DARC's 320 images: 10 steps of 32 in one epoch
    assert (peer.epochs, peer.max_steps_per_epoch) == (1, 10)
    assert peer.epochs * stages.images_per_epoch(peer, 1000) == stages.darc_images_after_base(exp, 1000)
    assert stages.scratch_recipe(exp, 1000).epochs == 1 + 1  # a base epoch sees 992 images


def test_darc_search_dir_is_required(darc_run, tmp_path):
    exp, out = darc_run
    E.search(exp, 0.0, out / "base", tmp_path / "ref", progress=False, method="reference")
    with pytest.raises(ValueError, match="not a DARC search"):
        stages.from_scratch(exp, tmp_path / "ref", tmp_path / "x", progress=False)


def _write(tmp_path, name, obj):
    path = tmp_path / name
    path.write_text(json.dumps(obj))
    return path


def _bases_and_references(tmp_path):
    """Two seeds' base and reference results (80 % and 85 %)."""
    bases = [_write(tmp_path, f"b{s}.json", {"seed": s, "val_acc": 0.8, "test_acc": 0.8}) for s in (0, 1)]
    refs = [_write(tmp_path, f"r{s}.json", {"seed": s, "lam": 0.0, "val_acc": 0.85, "test_acc": 0.85})
            for s in (0, 1)]
    return bases, refs


#: Provenance columns of a bench row.
BENCH_COMMON = {"experiment": "x", "kept": "{}", "scale": "smoke", "dataset": "synthetic", "dataset_is_stand_in": True,
                "model": "m", "threads": 1, "cpu_model": "cpu", "torch": "2", "git_commit": "abc"}


def test_points_table_puts_each_peer_beside_its_point(tmp_path):
    bases, refs = _bases_and_references(tmp_path)
    common = {**BENCH_COMMON, "param_reduction": 2.0}
    rows = [(role, s, lam, acc, sp) for role, s, lam, acc, sp in [
        ("darc", 0, 1.0, 0.84, 2.0), ("darc", 1, 1.0, 0.845, 2.1), ("darc", 0, 2.0, 0.80, 3.0),
        ("random", 0, 1.0, 0.80, 2.0), ("random", 1, 1.0, 0.81, 2.0), ("scratch", 0, 1.0, 0.83, 2.0),
        ("tp_latency", 0, 1.0, 0.82, 1.9), ("sss", 0, 1.0, 0.845, 1.2), ("sss", 0, 2.0, 0.83, 2.2)]]
    bench = pd.DataFrame([{**common, "role": r, "seed": s, "lam": lam, "val_acc": acc, "test_acc": acc,
                           "speedup_b1": sp} for r, s, lam, acc, sp in rows])
    bench.to_csv(tmp_path / "bench.csv", index=False)
    points = _write(tmp_path, "points.json", {"points": {"loss_1pct": 1.0}})
    runs, table = experiment_tables(tmp_path / "bench.csv", bases, refs, points, None, tmp_path / "runs.csv",
                                    tmp_path / "points.csv", batch=1)
    assert "method" in runs.columns and set(runs.loc[runs.role == "sss", "point"]) == {""}
    at = table[table.point == "loss_1pct"].set_index("role")
    assert set(at.index) == {"darc", "random", "scratch", "tp_latency", "sss"}
    assert at.loc["random", "n_seeds"] == 2 and at.loc["random", "verdict_vs_darc"] in ("loss", "no change")
    assert at.loc["sss", "lam"] == 2.0  # the SSS grid run nearest DARC's measured speed-up (2.05x)
    assert at.loc["random", "change_vs_darc"] == pytest.approx(0.805 - 0.8425)


def test_matched_peers_skip_points_that_keep_the_base_architecture(darc_run, tmp_path):
    exp, out = darc_run
    E.search(exp, 0.0, out / "base", tmp_path / "ref", progress=False, method="reference")
    darc_arch = out / "search" / "materialized" / "architecture.json"
    same_arch = tmp_path / "ref" / "materialized" / "architecture.json"
    assert not keeps_base_architecture(json.loads(darc_arch.read_text()))  # lambda 3 changes some slots
    assert keeps_base_architecture(json.loads(same_arch.read_text()))  # only originals
    runs = []
    for lam, acc, cost, arch in [(0.1, 0.85, 1.0, same_arch), (3.0, 0.845, 0.5, darc_arch)]:
        runs.append(tmp_path / f"ft{lam}.json")
        runs[-1].write_text(json.dumps({"lam": lam, "val_acc": acc, "arch_cost": cost, "architecture": str(arch)}))
    ref = tmp_path / "reference.json"
    ref.write_text(json.dumps({"lam": 0.0, "val_acc": 0.85, "seed": 0}))
    points = tmp_path / "points.json"
    record = select_operating_points(runs, ref, {**exp, "selection": {"points": {"no_loss": 0.0, "loss_1pct": 0.01}}},
                                     points)
    assert record["points"] == {"no_loss": 0.1, "loss_1pct": 3.0}
    assert record["changes_base"] == {"no_loss": False, "loss_1pct": True}
    assert points_with_peers(points, exp) == [3.0]
    assert points_with_peers(points, {**exp, "peers": {"at_unchanged_points": True}}) == [0.1, 3.0]
    # the other seeds re-run every chosen point, or only those that change the base
    assert points_to_reseed(points, exp) == [0.1, 3.0]
    assert points_to_reseed(points, {**exp, "selection": {"reseed_unchanged_points": False}}) == [3.0]


def test_points_table_says_where_matched_peers_were_skipped(tmp_path):
    bases, refs = _bases_and_references(tmp_path)
    common = {**BENCH_COMMON, "param_reduction": 1.0, "speedup_b1": 1.0}
    bench = pd.DataFrame([{**common, "role": "darc", "seed": s, "lam": 0.1, "val_acc": 0.85, "test_acc": 0.85}
                          for s in (0, 1)])
    bench.to_csv(tmp_path / "bench.csv", index=False)
    points = _write(tmp_path, "points.json", {"points": {"no_loss": 0.1}, "changes_base": {"no_loss": False}})
    runs, table = experiment_tables(tmp_path / "bench.csv", bases, refs, points, None, tmp_path / "x.csv",
                                    tmp_path / "x_points.csv", batch=1)
    assert table.set_index("role").loc["darc", "peers"] == PEERS_SKIPPED
    text = summary_markdown([tmp_path / "x.csv"], [tmp_path / "x_points.csv"], tmp_path / "summary.md")
    assert PEERS_SKIPPED in text and "lambda 0.1 (no_loss)" in text


def Path_(p):  # noqa: N802 - a tiny alias keeps the asserts on one line
    from pathlib import Path

    return Path(p)


@pytest.mark.parametrize("match", ["params", "macs"])
def test_torch_pruning_peer_matches_darc_and_reads_back_plain(darc_run, tmp_path, match):
    exp, out = darc_run
    exp = {**exp, "peers": {"prune": {"steps": 10, "max_ratio": 0.8}}}
    E.finetune_search(exp, out / "search", tmp_path / "darc_ft", progress=False)
    darc_model = load_finetuned(tmp_path / "darc_ft")
    # a target the base cannot meet unpruned: half the DARC network's size
    from darc.peers.pruning import macs_measure, param_bytes_measure

    rec = stages.prune_to_match(exp, out / "base", tmp_path / "darc_ft", match, tmp_path / "tp")
    measure = param_bytes_measure() if match == "params" else macs_measure((3, 8, 8))
    assert rec["match"] == match and rec["target"] == measure(darc_model)
    assert rec["reached"] and rec["measured"] <= rec["target"]
    coarse = [t for t in rec["trace"] if float(t["step"]).is_integer()]  # refinement's sub-steps: 5.125, ...
    assert all(a["measured"] >= b["measured"] for a, b in zip(coarse, coarse[1:]))
    res = stages.prune_finetune(exp, tmp_path / "tp", tmp_path / "tp_ft", progress=False)
    assert res["role"] == f"tp_{match}" and res["match_reached"]
    model = load_finetuned(tmp_path / "tp_ft")
    assert _is_plain(model) and model(torch.zeros(2, 3, 8, 8)).shape[0] == 2
    assert measure(model) == rec["measured"]


def test_latency_match_stops_at_the_darc_network_with_an_injected_timer(darc_run, tmp_path, monkeypatch):
    """The latency match's stopping rule with a deterministic stand-in for the A/B timer: t = MACs."""
    exp, out = darc_run
    exp = {**exp, "peers": {"prune": {"steps": 10, "max_ratio": 0.8}}}
    E.finetune_search(exp, out / "search", tmp_path / "darc_ft", progress=False)
    from darc.peers.pruning import macs_measure

    def fake_latency(exp_, shape, darc_model):
        t = macs_measure(shape)
        return (lambda m: t(m) / t(darc_model)), 1.0

    monkeypatch.setitem(stages.PRUNE_MATCHES._table, "latency", fake_latency)
    rec = stages.prune_to_match(exp, out / "base", tmp_path / "darc_ft", "latency", tmp_path / "tp")
    before = [t["measured"] for t in rec["trace"] if t["ratio"] < rec["ratio"]]
    assert rec["reached"] and rec["measured"] <= 1.0 and before and all(r > 1.0 for r in before)


def test_bn_scale_peer_sparsifies_prunes_to_match_and_splits_darcs_budget(darc_run, tmp_path):
    """Network slimming: a sparsity phase with the L1 term on BN scales for DARC's search images, BN-scale
    pruning of its output to DARC's parameter bytes, then a fine-tune for DARC's fine-tune images."""
    exp, out = darc_run
    exp = {**exp, "peers": {"prune": {"steps": 10, "max_ratio": 0.8, "bn_reg": 1e-2}}}
    E.finetune_search(exp, out / "search", tmp_path / "darc_ft", progress=False)
    with pytest.raises(ValueError, match="bn-sparsity"):
        stages.prune_to_match(exp, out / "base", tmp_path / "darc_ft", "params", tmp_path / "x", pruner="bn_scale")
    sparse = stages.bn_sparsity(exp, out / "base", tmp_path / "sparse", progress=False)
    unregularised = {**exp, "peers": {"prune": {"bn_reg": 0.0}}}
    stages.bn_sparsity(unregularised, out / "base", tmp_path / "plain", progress=False)

    def scale_sum(run):
        return sum(float(m.weight.detach().abs().sum()) for m in E.load_base(exp, run).modules()
                   if isinstance(m, nn.BatchNorm2d) and m.affine)

    assert scale_sum(tmp_path / "sparse") < scale_sum(tmp_path / "plain")  # the L1 term shrank the scales
    assert sparse["stage"] == "bn_sparsity" and sparse["base_seed"] == 0
    with pytest.raises(ValueError, match="group_l1 the trained base"):
        stages.prune_to_match(exp, tmp_path / "sparse", tmp_path / "darc_ft", "params", tmp_path / "x")
    rec = stages.prune_to_match(exp, tmp_path / "sparse", tmp_path / "darc_ft", "params", tmp_path / "tpbn",
                                pruner="bn_scale")
    assert rec["pruner"].endswith("BNScalePruner") and rec["reached"]
    res = stages.prune_finetune(exp, tmp_path / "tpbn", tmp_path / "tpbn_ft", progress=False)
    assert res["role"] == "tpbn_params" and _is_plain(load_finetuned(tmp_path / "tpbn_ft"))
    n = len(E.load_data(exp).train)
    phase = stages.sparsity_recipe(exp, n)
    tune = stages.pruned_finetune_recipe(exp, n, "bn_scale")
    seen = (phase.epochs * stages.images_per_epoch(phase, n) + tune.epochs * stages.images_per_epoch(tune, n))
    assert seen >= stages.darc_images_after_base(exp, n)
    assert phase.epochs * stages.images_per_epoch(phase, n) >= stages.darc_search_images(exp, n)


@pytest.mark.parametrize(("method", "cost_model"), [("darc_uniform", "uniform"), ("darc_params", "params"),
                                                     ("darc_macs", "macs")])
def test_cost_model_ablations_keep_darcs_candidates(method, cost_model):
    exp = {**EXP, "search": {**EXP["search"], "cost_model": "latency", "latency_table": "t.json",
                             "candidates": ["original", "narrow"]}}
    cfg = E.search_config(exp, 1.0, method=method)
    assert cfg.cost_model == cost_model and cfg.latency_table is None
    assert cfg.candidates == E.search_config(exp, 1.0).candidates == ["original", "narrow"]


def test_a_match_timed_in_fresh_processes_loads_both_networks_there_and_reads_the_median(darc_run, tmp_path):
    """``bench.match_sessions`` > 1: each session is a ``python -m darc.match_timing`` child that loads both
    fine-tuned networks from their folders; the result is the median over sessions, with their range."""
    from darc.match_timing import match_against_darc

    exp, out = darc_run
    E.finetune_search(exp, out / "search", tmp_path / "darc_ft", progress=False)
    net = load_finetuned(tmp_path / "darc_ft").eval()
    row = match_against_darc(net, net, (3, 8, 8), 2, threads=1, pairs=2, min_block_time=0.001, sessions=2,
                             darc_dir=tmp_path / "darc_ft", peer_dir=tmp_path / "darc_ft")
    assert row["match_sessions"] == 2 and 0.5 < row["match_speedup_b2"] < 2.0
    assert row["match_speedup_b2_range"] >= 0.0 and row["match_speedup_b2_iqr"] >= 0.0
    with pytest.raises(ValueError, match="darc_dir and peer_dir"):
        match_against_darc(net, net, (3, 8, 8), 2, threads=1, pairs=2, min_block_time=0.001, sessions=2)
    with pytest.raises(RuntimeError, match="timing session"):  # a child that fails says so, with its stderr
        match_against_darc(net, net, (3, 8, 8), 2, threads=1, pairs=2, min_block_time=0.001, sessions=2,
                           darc_dir=tmp_path / "missing", peer_dir=tmp_path / "darc_ft")
