"""benchmarks/tools/gpu_check.py, the one-GPU paper-path rehearsal, dry-run on the CPU (``--device cpu --tiny``).

Every stage must pass on the CPU (the 2-process gloo search included), the record must be written, a
failed stage must not stop the later ones, and a spent budget must skip what is left.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import darc

REPO = Path(darc.__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "tools" / "gpu_check.py"


def _module():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = mod  # dataclasses resolve the module by name
    spec.loader.exec_module(mod)
    return mod


gc = _module()
NAMES = [s.name for s in gc.STAGES]


@pytest.mark.slow
def test_tiny_cpu_dry_run_every_stage_ok(tmp_path):
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    cmd = [sys.executable, str(SCRIPT), "--out", str(tmp_path), "--device", "cpu", "--tiny", "--budget-s", "600"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    rec = json.loads((tmp_path / "gpu_check.json").read_text())
    assert rec["finished"] and rec["failed"] == []
    assert rec["nccl_multi_gpu"] == "untested (one GPU)"
    assert rec["environment"]["device"] == "cpu" and "torch" in rec["environment"]
    assert list(rec["stages"]) == NAMES
    assert {n: r["status"] for n, r in rec["stages"].items()} == dict.fromkeys(NAMES, "ok")
    assert all(r["seconds"] >= 0 for r in rec["stages"].values())
    for key in ("wrn", "resnet"):
        train, search, bench = (rec["stages"][f"{key}_{s}"] for s in ("train", "search", "bench"))
        assert train["img_per_s"] > 0 and train["steps"] == 2
        assert search["base"] == "trained" and search["cost_unit"] == "seconds" and search["slots"] == 2
        # two search epochs: the second's throughput is the steady state, the first's includes warm-up
        assert len(search["epoch_img_per_s"]) == 2 and search["img_per_s"] == search["epoch_img_per_s"][1] > 0
        assert (tmp_path / key / "search" / "materialized" / "architecture.json").exists()
        assert (tmp_path / key / "latency_table.json").exists()
        for tag in ("b1", "b8", "b8_bf16_cl"):
            assert bench[tag]["speedup"] > 0 and bench[tag]["base_img_per_s"] > 0
        assert bench["peak_mem_b8"]["darc"]["peak_bytes"] > 0
    ddp = rec["stages"]["ddp_search"]
    assert ddp["finished"] and ddp["same_gates"] and ddp["returncode"] == 0 and ddp["search_world_size"] == 2
    assert [r["rank"] for r in ddp["ranks"]] == [0, 1] and {r["backend"] for r in ddp["ranks"]} == {"gloo"}


def test_zero_budget_skips_every_stage(tmp_path):
    rec = gc.main(["--out", str(tmp_path), "--device", "cpu", "--tiny", "--budget-s", "0"])
    saved = json.loads((tmp_path / "gpu_check.json").read_text())
    assert saved["finished"] and saved["stages"] == rec["stages"]
    assert {n: r["status"] for n, r in saved["stages"].items()} == dict.fromkeys(NAMES, "skipped (budget)")
    assert saved["environment"]["device"] == "cpu"


def test_stage_selection_by_name_and_group():
    assert gc.select("cuda,wrn") == {"cuda", "wrn_train", "wrn_search", "wrn_finetune", "wrn_bench"}
    assert gc.select("resnet_bench,ddp") == {"resnet_bench", "ddp_search"}
    assert gc.select(None) == set(NAMES)
    with pytest.raises(SystemExit, match="unknown stage"):
        gc.select("nope")


def test_failed_stage_is_recorded_and_later_stages_run(tmp_path):
    ctx = gc.Context(tmp_path, "cpu", True, 60.0, {p.key: p for p in gc.tiny_plans()}, {"stages": {}})

    def boom(ctx):
        raise ValueError("bad input\nsecond line")

    def missing(ctx):
        raise gc.Skip("needs something")

    for stage in (
        gc.Stage("boom", "x", boom),
        gc.Stage("missing", "x", missing),
        gc.Stage("fine", "x", lambda ctx: {"value": 1}),
    ):
        gc.run_stage(ctx, stage)
    saved = json.loads((tmp_path / "gpu_check.json").read_text())["stages"]
    assert saved["boom"]["status"] == "failed: ValueError: bad input"
    assert any("ValueError" in line for line in saved["boom"]["traceback_tail"])
    assert saved["missing"]["status"] == "skipped (needs something)"
    assert saved["fine"] == {**saved["fine"], "status": "ok", "value": 1}
    # a stage that needs the search's result is skipped, not failed, when the search never ran
    gc.run_stage(ctx, next(s for s in gc.STAGES if s.name == "wrn_finetune"))
    assert ctx.record["stages"]["wrn_finetune"]["status"].startswith("skipped (no materialised")


@pytest.mark.parametrize("plan_set", ["extended", "tiny"])
def test_plan_sets_build_their_networks(plan_set):
    import torch

    from darc.models import create_model

    plans = gc.PLAN_SETS[plan_set]()
    assert [p.key for p in plans] == ["wrn", "resnet"]
    for plan in plans:
        model = create_model(plan.model, **plan.model_kwargs).eval()
        with torch.no_grad():
            out = model(torch.zeros(2, *plan.input_shape))
        assert out.shape == (2, plan.num_classes)
        assert plan.n_train == plan.batch * max(plan.train_steps, plan.search_steps, plan.finetune_steps)
    if plan_set == "extended":  # the extended scale's search: frozen weights, steady state after an epoch
        assert all(p.search_weights == "frozen" and p.search_epochs == 2 for p in plans)


def test_plans_option_is_recorded_and_checked(tmp_path):
    args = gc.parse_args(["--out", str(tmp_path), "--plans", "extended"])
    assert args.plans == "extended"
    with pytest.raises(SystemExit):
        gc.parse_args(["--out", str(tmp_path), "--plans", "nope"])
