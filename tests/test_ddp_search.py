"""A DARC experiment (train, search, fine-tune) under ``torchrun --nproc_per_node=2`` on CPU (gloo).

The search's gates reach zero (so DDP sees parameters without gradients), costs are measured once on
rank 0 and shared, every rank ends with the same gates, and only rank 0 writes the search's files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import darc

REPO = Path(darc.__file__).resolve().parent.parent


@pytest.mark.slow
def test_ddp_search_and_finetune_two_ranks_cpu(tmp_path):
    path = f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path, "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(REPO / "tests" / "ddp_search_job.py"), str(tmp_path)]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]

    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    # costs: measured by rank 0 alone (each rank's cost model returns different numbers), shared by all
    assert (r0["cost_calls"], r1["cost_calls"]) == (1, 0)
    assert r0["costs"] == r1["costs"]
    # gates: some reached exactly zero, and every rank ends with the same gates, bit for bit
    assert r0["gates"] == r1["gates"]
    zero = [(slot, label) for slot, label, g in r0["gates"] if g == 0.0]
    assert zero and len(zero) < len(r0["gates"])
    search = tmp_path / "search"
    saved = json.loads((search / "search.json").read_text())
    assert [(r["slot"], r["candidate"], r["gate"]) for r in saved["final_gates"]] == r0["gates"]
    # rank 0 alone wrote: no temporary files left by a second writer, one log row per gate and epoch
    files = sorted(str(p.relative_to(search)) for p in search.rglob("*"))
    assert not [f for f in files if f.endswith(".tmp")], files
    rows = [json.loads(line) for line in (search / "gates.jsonl").read_text().splitlines()]
    assert len(rows) == 3 * len(r0["gates"])  # before training and after each of the 2 epochs
    assert json.loads((search / "train" / "metrics.json").read_text())["world_size"] == 2
    # the fine-tune ran under DDP too, on the materialised network (candidates with a zero gate dropped)
    finetuned = json.loads((tmp_path / "finetune" / "metrics.json").read_text())
    assert finetuned["world_size"] == 2 and finetuned["metrics"]["epoch"] == 1
    arch = json.loads((search / "materialized" / "architecture.json").read_text())
    kept = {(s["name"], k["alternative"]) for s in arch["slots"] for k in s["kept"]}
    assert not {(slot, label.split("(")[0]) for slot, label in zero} & kept
