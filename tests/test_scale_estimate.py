"""benchmarks/studies/scale_estimate.py: a scale's training images counted from the config (the estimate's input)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

import darc
from darc.config import experiment_at_scale

REPO = Path(darc.__file__).resolve().parent.parent


def _module():
    path = REPO / "benchmarks" / "studies" / "scale_estimate.py"
    spec = importlib.util.spec_from_file_location("scale_estimate", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


est = _module()


def _extended(name: str) -> dict:
    raw = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["experiments"][name]
    return experiment_at_scale(raw, "extended", name=name)


def test_extended_wrn_images_follow_the_config():
    exp = _extended("cifar_wrn")
    counts = est.image_counts(exp, 55_000)
    # 3 bases (no shared base) x 10 epochs x 429 batches of 128
    assert counts["bases"] == {"plain": 3 * 10 * 429 * 128, "gated": 0}
    # 4 grid lambdas at seed 0, 2 points at 2 more seeds, the reference at 3: each 2 epochs of 859 x 64 gated
    searches = 4 + len(exp["selection"]["points"]) * 2 + 3
    assert counts["darc (grid, points, reference)"]["gated"] == searches * 2 * 859 * 64
    assert set(counts) >= {"random", "scratch", "torch_pruning", "torch_pruning_bn"}
    assert all(c["gated"] == 0 for k, c in counts.items() if not k.startswith(("darc", "grid")))


def test_a_record_without_the_network_or_gated_rows_is_refused():
    exp = _extended("cifar_wrn")
    with pytest.raises(SystemExit, match="no row"):
        est.throughput_for(exp, {"rows": [{"model": "wrn16_2", "model_kwargs": {}}]})
    row = {"model": exp["model"], "model_kwargs": exp["model_kwargs"], "img_per_s_bfloat16_channels_last": 1.0}
    with pytest.raises(SystemExit, match="--gated"):
        est.throughput_for(exp, {"rows": [row]})


def test_torch_pruning_counts_each_match_at_its_own_seeds():
    """Per-match `prune_seeds`: the latency match on all 3 seeds and the bytes / MACs matches on 1 cost 5
    fine-tunes per point, not 9."""
    raw = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["experiments"]["cifar_wrn"]
    exp = experiment_at_scale(raw, "default", name="cifar_wrn")
    prune = {**exp["peers"]["prune"], "match": ["latency", "params", "macs"]}
    exp = {**exp, "peers": {**exp["peers"], "prune": prune}}
    every_seed = {**exp, "peers": {**exp["peers"], "prune_seeds": None}}
    per_match = {**exp, "peers": {**exp["peers"], "prune_seeds": {"latency": None, "params": 1, "macs": 1}}}
    per_match = est.image_counts(per_match, 55_000)["torch_pruning"]["plain"]
    assert per_match * 9 == est.image_counts(every_seed, 55_000)["torch_pruning"]["plain"] * 5


def _gpu_record(search_img_per_s):
    """A gpu_check --plans extended record, as the script writes it, for the WRN stand-in."""
    plan = {"model": "wide_resnet", "model_kwargs": {"depth": 28, "widen_factor": 2, "in_chans": 1, "input_size": 28}}
    return {"script": "benchmarks/tools/gpu_check.py", "plans": {"wrn": plan},
            "stages": {"wrn_train": {"img_per_s": 7000.0}, "wrn_search": {"img_per_s": search_img_per_s}}}


def test_a_gpu_check_record_gives_the_steady_state_search_and_the_shared_gain():
    exp = _extended("cifar_wrn")
    assert est.throughput_for(exp, _gpu_record(4000.0)) == {"plain": 7000.0, "gated": 4000.0}
    # one epoch only (no steady state): refused, not divided by the warm-up rate
    with pytest.raises(SystemExit, match="steady-state"):
        est.throughput_for(exp, _gpu_record(None))
    with pytest.raises(SystemExit, match="no row"):
        est.throughput_for(_extended("imagenet_resnet"), _gpu_record(4000.0))
    copies = [_gpu_record(3000.0), _gpu_record(3400.0)]
    assert est.shared_gpu_gain(_gpu_record(4000.0), copies) == {"wrn": pytest.approx(1.6)}


def test_extended_grid_peers_run_the_whole_grid():
    """The protocols' one-lambda peers.lams is the default's; extended compares on DARC's whole grid."""
    exp = _extended("cifar_wrn")
    assert exp["peers"]["lams"] is None
    counts = est.image_counts(exp, 55_000)
    grid_peers = next(v for k, v in counts.items() if k.startswith("grid peers"))
    assert grid_peers["gated"] == 4 * len(exp["search"]["lams"]) * 2 * 859 * 64
