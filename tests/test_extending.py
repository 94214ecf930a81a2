"""docs/extending.md, followed: a new model (the block contract), a new alternative (the page's own example) and
an experiment using them; the experiment dry-runs in the workflow."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

import darc
from darc.models import MODELS, ResidualBlock, SlotsMixin, create_model, register_model

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "extending.md"


class _Block(ResidualBlock):
    """The contract: a ``branch`` Sequential of Conv2d / BatchNorm2d / ReLU, an identity ``shortcut``, and
    ``branch = None`` computing the shortcut alone."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.branch = nn.Sequential(nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                                    nn.ReLU(), nn.Conv2d(width, width, 3, padding=1, bias=False),
                                    nn.BatchNorm2d(width))
        self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.shortcut(x)
        return torch.relu(out if self.branch is None else out + self.branch(x))


class _TinyNet(SlotsMixin, nn.Module):
    def __init__(self, in_chans: int = 3, input_size: int = 8, num_classes: int = 4, width: int = 8) -> None:
        super().__init__()
        self.input_shape = (in_chans, input_size, input_size)
        self.stem = nn.Conv2d(in_chans, width, 3, padding=1)
        self.blocks = nn.Sequential(_Block(width), _Block(width))
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))


@pytest.fixture
def extension():
    """The page's model and alternative, registered for one test and removed after it."""
    from darc.alternatives import ALTERNATIVES

    before_models, before_alts = set(MODELS.list()), set(ALTERNATIVES.list())

    @register_model
    def ext_tiny_net(in_chans=3, input_size=8, num_classes=4, **kw):
        return _TinyNet(in_chans, input_size, num_classes, **kw)

    code = re.search(r"```python\n(.*?)```", PAGE.read_text().split("## An alternative", 1)[1], re.S)[1]
    exec(compile(re.sub(r"(?m)^  ", "", code), "docs/extending.md", "exec"), {"torch": torch})
    yield
    for registry, before in ((MODELS, before_models), (ALTERNATIVES, before_alts)):
        for name in set(registry.list()) - before:
            registry._table.pop(name)  # the registries have no public removal: tests only


def test_a_new_model_and_alternative_compress_and_rebuild(extension, tmp_path):
    model = create_model("ext_tiny_net", in_chans=3, input_size=8, num_classes=4).eval()
    assert model.slot_names("branch") == ["blocks.0.branch", "blocks.1.branch"]
    comp = darc.Compressor(model, lam=1.0, calibration=torch.randn(16, 3, 8, 8), distill_steps=2,
                           candidates=["original", "my_cheap_block", {"alternative": "narrow", "ratio": 0.5}])
    assert all("my_cheap_block" in s.labels for s in darc.gated_slots(comp.model).values())
    opt = torch.optim.SGD(comp.param_groups(lr=0.05), lr=0.05)
    for _ in range(5):
        opt.zero_grad()
        nn.functional.cross_entropy(comp.model(torch.randn(8, 3, 8, 8)), torch.randint(0, 4, (8,))).backward()
        opt.step()
        comp.step(opt)
    result = comp.compress()
    result.save(tmp_path / "out")
    again = darc.CompressionResult.load(tmp_path / "out")  # rebuilt by the registered name, no instance needed
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(result.model.eval()(x), again.model.eval()(x), atol=1e-5)


def test_a_new_experiment_dry_runs_in_the_workflow(tmp_path):
    """An experiment under ``experiments:`` (here a copy of the CIFAR protocol on a darc model), passed with
    ``--configfile``, gets its own jobs at smoke scale."""
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    ext = {**config["experiments"]["cifar_wrn"], "model": "wrn16_1"}
    (tmp_path / "ext.yaml").write_text(yaml.safe_dump({"experiments": {"ext_wrn": ext}}))
    res = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--nolock", "--cores", "2", "--forceall",
                          "--configfile", str(tmp_path / "ext.yaml"), "--config", "scale=smoke"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "runs/smoke/ext_wrn/seed0/base" in res.stdout and "runs/smoke/cifar_wrn/seed0/base" in res.stdout
