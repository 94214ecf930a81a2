"""``darc.train.fit`` turns on DDP's ``find_unused_parameters`` itself for a gated model (issue #32): a candidate
whose gate is zero is skipped, its weights get no gradient, and DDP would otherwise fail at the first zero gate
("Expected to have finished reduction in the prior iteration")."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

import darc
from darc.data import get_dataset
from darc.gates import gate_model
from darc.train import TrainConfig, fit
from darc.train import distributed as D
from darc.train.trainer import find_unused_parameters

REPO = Path(darc.__file__).resolve().parent.parent
SHAPE = (3, 8, 8)


def plain_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 4))


def gated_net(revive: bool = False) -> nn.Module:
    return gate_model(plain_net(), ["2"], ["original", "dwsep"], example_input=SHAPE, distill_steps=0,
                      revive=revive)


@pytest.mark.parametrize("model, asked, want", [
    ("gated", False, True), ("revived", False, False), ("plain", False, False), ("plain", True, True),
])
def test_find_unused_parameters_follows_the_gates_or_the_config(model, asked, want):
    net = {"gated": gated_net, "revived": lambda: gated_net(revive=True), "plain": plain_net}[model]()
    assert find_unused_parameters(net, TrainConfig(ddp_find_unused_parameters=asked)) is want


@pytest.mark.parametrize("gated", [True, False])
def test_fit_asks_the_ddp_wrapper_for_find_unused_parameters_on_a_gated_model(gated, tmp_path, monkeypatch):
    asked: list[bool] = []

    def wrap(model: nn.Module, device: torch.device, find_unused_parameters: bool = False) -> nn.Module:
        asked.append(find_unused_parameters)
        return model

    monkeypatch.setattr(D, "wrap_ddp", wrap)
    data = get_dataset("synthetic", input_shape=SHAPE, num_classes=4, n_train=32, n_test=16)
    cfg = TrainConfig(epochs=1, batch_size=16, max_steps_per_epoch=1, seed=0)
    fit(gated_net() if gated else plain_net(), data, cfg, tmp_path, progress=False, device="cpu")
    assert asked == [gated]


JOB = """
    import sys
    import torch
    from torch import nn
    from darc.data import get_dataset
    from darc.gates import gate_model, gated_slots
    from darc.train import TrainConfig, fit
    from darc.train import distributed as D

    torch.manual_seed(0)
    base = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 4))
    gated = gate_model(base, ["2"], ["original", "dwsep"], example_input=(3, 8, 8), distill_steps=0)
    with torch.no_grad():
        gated_slots(gated)["2"].gate[1] = 0.0  # dwsep skipped: its weights get no gradient
    data = get_dataset("synthetic", input_shape=(3, 8, 8), num_classes=4, n_train=64, n_test=16)
    fit(gated, data, TrainConfig(epochs=1, batch_size=8, seed=0), sys.argv[1], progress=False)
    D.cleanup()
    print("fit done")
"""


@pytest.mark.slow
def test_torchrun_fit_on_a_gated_model_with_a_zero_gate(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(JOB))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
           str(tmp_path / "out")]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert proc.stdout.count("fit done") == 2
