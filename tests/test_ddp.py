"""DDP on CPU (gloo): ``torchrun --nproc_per_node=2 -m darc.train.smoke_ddp`` on synthetic data."""

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
def test_torchrun_two_ranks_cpu(tmp_path):
    out, weights = tmp_path / "out", tmp_path / "weights"
    path = f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path, "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "darc.train.smoke_ddp", "--out", str(out), "--weights-dir", str(weights), "--epochs", "2",
           "--checkpoint-every-steps", "3"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert proc.stdout.count("world_size=2") == 1  # only rank 0 reports

    # rank 0 alone wrote: one checkpoint, one log of each kind, no temporary leftovers
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "log.csv", "log.jsonl", "metrics.json",
                                                      "model.pt"]
    rows = [json.loads(line) for line in open(out / "log.jsonl")]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[-1]["steps"] == 4  # 128 samples / 2 ranks / batch 16
    assert json.load(open(out / "metrics.json"))["world_size"] == 2
    ck = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ck["epoch"] == 2 and len(ck["rng_ranks"]) == 2

    # every rank ends with the same weights (and buffers), equal to the saved ones
    r0, r1 = (torch.load(weights / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    saved = torch.load(out / "model.pt", weights_only=True)
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
        assert torch.equal(r0[k], saved[k]), k
