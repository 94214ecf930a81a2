"""Block adapters (darc.blocks): third-party residual blocks expose their branch, and slots="branch" gates it."""

from __future__ import annotations

import json
from functools import partial

import pytest
import timm
import torch
import torchvision
from timm.layers import BatchNormAct2d, DropBlock2d, DropPath
from timm.models import resnet as timm_resnet
from tiny_nets import TinyResNet, randomize_bn
from torch import nn
from torchvision.models import efficientnet as tv_efficientnet
from torchvision.models import mobilenetv2 as tv_mobilenet
from torchvision.models import resnet as tv_resnet

from darc.alternatives import get_alternative
from darc.blocks import (
    BLOCK_ADAPTERS,
    ResidualBranchBlock,
    adapt_block,
    class_path,
    expose_branches,
    list_block_adapters,
    register_block_adapter,
)
from darc.gates import DEFAULT_CANDIDATES, gate_model, gated_slots
from darc.materialize import ArchitectureError, build, load_materialized, materialize, save_materialized
from darc.slots import SlotSpec, output_depends_on_input

NARROW_QUARTER = {"alternative": "narrow", "ratio": 0.25}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def same_output(a: nn.Module, b: nn.Module, x: torch.Tensor) -> bool:
    with torch.no_grad():
        return torch.allclose(a.eval()(x), b.eval()(x), atol=1e-5)


NETWORKS = {  # name -> (factory, input size, number of branches)
    "tv_resnet18": (lambda: torchvision.models.resnet18(num_classes=10), 32, 8),
    "tv_resnet50": (lambda: torchvision.models.resnet50(num_classes=10), 64, 16),
    "tv_mobilenet_v2": (lambda: torchvision.models.mobilenet_v2(num_classes=10), 32, 10),
    "tv_efficientnet_b0": (lambda: torchvision.models.efficientnet_b0(num_classes=10), 32, 9),
    "timm_resnet26d": (lambda: timm.create_model("resnet26d", num_classes=10), 64, 8),
    "timm_resnet18": (lambda: timm.create_model("resnet18", num_classes=10), 32, 8),
}


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_exposed_network_computes_the_same_with_the_same_parameters(name):
    factory, size, n_branches = NETWORKS[name]
    model = randomize_bn(factory()).eval()  # timm zero-inits each branch's last BN: randomise, or branches are 0
    exposed, names = expose_branches(model)
    assert same_output(model, exposed, torch.randn(1, 3, size, size))
    assert n_params(exposed) == n_params(model)
    assert len(names) == n_branches and all(isinstance(exposed.get_submodule(n), nn.Sequential) for n in names)
    assert not any(isinstance(m, ResidualBranchBlock) for m in model.modules())  # the original is untouched


def test_shipped_adapters_name_the_installed_classes():
    shipped = [tv_resnet.BasicBlock, tv_resnet.Bottleneck, tv_mobilenet.InvertedResidual, tv_efficientnet.MBConv,
               timm_resnet.BasicBlock, timm_resnet.Bottleneck]
    assert sorted(class_path(c) for c in shipped) == list_block_adapters()


def test_exposure_reuses_the_blocks_layers_and_is_idempotent():
    model = torchvision.models.resnet18(num_classes=10)
    block = model.layer2[0]
    exposed, names = expose_branches(model, inplace=True)
    assert exposed is model
    assert isinstance(model.layer2[0], ResidualBranchBlock)
    assert model.layer2[0].branch[0] is block.conv1 and model.layer2[0].shortcut is block.downsample
    again, names_again = expose_branches(model)
    assert names_again == names and same_output(model, again, torch.randn(1, 3, 32, 32))


def test_mobilenet_inverted_residual_without_residual_connection_keeps_no_branch():
    model = torchvision.models.mobilenet_v2(num_classes=10)
    exposed, names = expose_branches(model)
    kept = [m for m in exposed.modules() if isinstance(m, tv_mobilenet.InvertedResidual)]
    assert kept and not any(m.use_res_connect for m in kept)
    assert len(names) == sum(isinstance(m, tv_mobilenet.InvertedResidual) and m.use_res_connect
                             for m in model.modules())


def test_timm_branch_keeps_drop_block_aa_se_and_drop_path_in_forward_order():
    block = timm_resnet.Bottleneck(32, 8, stride=2, attn_layer="se", aa_layer="avg", downsample=nn.Conv2d(32, 32, 1, 2),
                                   drop_block=partial(DropBlock2d, drop_prob=0.1), drop_path=DropPath(0.1))
    randomize_bn(block).eval()
    adapted = adapt_block(block)
    order = [block.conv1, block.bn1, block.act1, block.conv2, block.bn2, block.drop_block, block.act2, block.aa,
             block.conv3, block.bn3, block.se, block.drop_path]
    assert list(adapted.branch) == order and adapted.shortcut is block.downsample and adapted.act is block.act3
    assert same_output(block, adapted, torch.randn(2, 32, 8, 8))
    basic = timm_resnet.BasicBlock(16, 16, attn_layer="se")
    assert list(adapt_block(basic).branch) == [basic.conv1, basic.bn1, basic.drop_block, basic.act1, basic.aa,
                                               basic.conv2, basic.bn2, basic.se]


def test_removed_branch_leaves_the_shortcut_and_an_inplace_act_spares_the_input():
    block = ResidualBranchBlock(None, nn.Identity(), nn.ReLU(inplace=True))
    x = torch.randn(2, 4, 3, 3)
    before = x.clone()
    assert torch.equal(block(x), before.relu()) and torch.equal(x, before)


def test_gate_model_branch_slots_on_torchvision_resnet18_materialize_and_reload(tmp_path):
    base = torchvision.models.resnet18(num_classes=10)
    gated = gate_model(base, "branch", DEFAULT_CANDIDATES, example_input=(3, 32, 32), distill_steps=0)
    slots = gated_slots(gated)
    assert list(slots) == [f"layer{i}.{j}.branch" for i in range(1, 5) for j in range(2)]
    assert all(s.spec.kind == "branch" and s.removal == "shortcut" for s in slots.values())
    assert slots["layer1.0.branch"].labels == ["original", "narrow(ratio=0.5)", "narrow(ratio=0.25)", "dwsep"]
    assert not hasattr(base.layer1[0], "branch")  # gate_model worked on a copy
    gated.train()(torch.randn(4, 3, 32, 32)).sum().backward()  # trains (no in-place clash)
    assert all(s.gate.grad is not None for s in slots.values())
    with torch.no_grad():  # drop three branches, one of them beside a downsampling shortcut
        for name in ("layer1.0.branch", "layer2.0.branch", "layer4.1.branch"):
            slots[name].gate.zero_()
    x = torch.randn(2, 3, 32, 32)
    plain, arch = materialize(gated.eval())
    assert plain.layer1[0].branch is None and plain.layer2[0].branch is None and plain.layer4[1].branch is None
    assert output_depends_on_input(plain, (3, 32, 32))
    assert same_output(gated, plain, x)
    assert arch["base_model"]["exposed_branches"] is True
    save_materialized(plain, arch, tmp_path)
    again = load_materialized(tmp_path / "architecture.json", tmp_path / "weights.pt",
                              base_model=torchvision.models.resnet18(num_classes=10))
    assert same_output(plain, again, x)


def test_gate_model_branch_slots_on_torchvision_mobilenet_v2():
    base = torchvision.models.mobilenet_v2(num_classes=10)
    gated = gate_model(base, "branch", ["original", NARROW_QUARTER], example_input=(3, 32, 32), distill_steps=0)
    slots = gated_slots(gated)
    assert len(slots) == 10 and all(s.labels == ["original", "narrow(ratio=0.25)"] for s in slots.values())
    with torch.no_grad():
        slots["features.3.branch"].gate.zero_()
    plain, arch = materialize(gated.eval())
    assert plain.features[3].branch is None and output_depends_on_input(plain, (3, 32, 32))
    rebuilt = build(json.loads(json.dumps(arch)), plain.state_dict(),
                    base_model=torchvision.models.mobilenet_v2(num_classes=10))
    assert same_output(plain, rebuilt, torch.randn(2, 3, 32, 32))


def test_branch_slots_need_a_block_with_an_adapter():
    with pytest.raises(ValueError, match=r"no residual block with an adapter in TinyResNet .*resnet\.BasicBlock"
                                         r".*register_block_adapter"):
        gate_model(TinyResNet(), "branch", ["original"], example_input=(3, 8, 8))
    with pytest.raises(ValueError, match="slots='conv' needs a built-in darc model"):
        gate_model(torchvision.models.resnet18(), "conv", ["original"], example_input=(3, 32, 32))


def test_architecture_refuses_a_non_boolean_exposed_branches():
    plain, arch = materialize(gate_model(torchvision.models.resnet18(num_classes=10), "branch", ["original"],
                                         example_input=(3, 32, 32), distill_steps=0))
    arch["base_model"]["exposed_branches"] = "yes"
    with pytest.raises(ArchitectureError, match="exposed_branches must be true or false"):
        build(arch, None, base_model=torchvision.models.resnet18(num_classes=10))


BRANCHES = {  # name -> (block, its input shape)
    "tv_basic": (lambda: tv_resnet.BasicBlock(16, 16), (16, 8, 8)),
    "tv_bottleneck": (lambda: tv_resnet.Bottleneck(32, 8), (32, 8, 8)),
    "tv_inverted_residual": (lambda: tv_mobilenet.InvertedResidual(16, 16, 1, 6), (16, 8, 8)),
    "timm_basic": (lambda: timm_resnet.BasicBlock(16, 16), (16, 8, 8)),
    "timm_bottleneck": (lambda: timm_resnet.Bottleneck(32, 8, drop_path=DropPath(0.1),
                                                       drop_block=partial(DropBlock2d, drop_prob=0.1)), (32, 8, 8)),
}


def _branch_and_spec(name: str) -> tuple[nn.Sequential, SlotSpec]:
    factory, shape = BRANCHES[name]
    branch = adapt_block(randomize_bn(factory())).branch.eval()
    return branch, SlotSpec(name, "branch", shape, shape)


@pytest.mark.parametrize("name", sorted(BRANCHES))
def test_narrow_on_exposed_branches(name):
    branch, spec = _branch_and_spec(name)
    narrow = get_alternative("narrow")
    assert narrow.applicable(spec, branch) is None
    x = torch.randn(2, *spec.in_shape)
    assert same_output(branch, narrow.build(spec, branch, True, ratio=1.0), x)
    quarter = narrow.build(spec, branch, True, ratio=0.25).eval()
    with torch.no_grad():
        assert quarter(x).shape == branch(x).shape
    assert n_params(quarter) < n_params(branch)


def test_narrow_slices_depthwise_convs_to_the_kept_channels():
    branch, spec = _branch_and_spec("tv_inverted_residual")  # 16 -> 96 (pw) -> 96 (dw) -> 16 (pw-linear)
    quarter = get_alternative("narrow").build(spec, branch, True, ratio=0.25)
    convs = [m for m in quarter.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.groups) for c in convs] == [(16, 24, 1), (24, 24, 24), (24, 16, 1)]


def test_narrow_refuses_what_it_would_silently_change():
    narrow = get_alternative("narrow")
    spec = SlotSpec("b", "branch", (16, 8, 8), (16, 8, 8))
    bn_act = adapt_block(timm_resnet.BasicBlock(16, 16, norm_layer=BatchNormAct2d)).branch
    assert "BatchNormAct2d, a BatchNorm2d subclass" in narrow.applicable(spec, bn_act)
    se = adapt_block(timm_resnet.BasicBlock(16, 16, attn_layer="se")).branch
    assert "SEModule, which narrow cannot cut channels through" in narrow.applicable(spec, se)
    grouped = nn.Sequential(nn.Conv2d(16, 16, 1), nn.Conv2d(16, 16, 3, padding=1, groups=4), nn.Conv2d(16, 16, 1))
    assert "only ungrouped and depthwise convs" in narrow.applicable(spec, grouped)
    dw_last = nn.Sequential(nn.Conv2d(16, 16, 1), nn.Conv2d(16, 16, 1), nn.Conv2d(16, 16, 3, padding=1, groups=16))
    assert "non-depthwise last conv" in narrow.applicable(spec, dw_last)
    whole = tv_resnet.BasicBlock(16, 16)
    assert "slots='branch'" in narrow.applicable(SlotSpec("b", "module", (16, 8, 8), (16, 8, 8)), whole)


class UserBlock(nn.Module):
    """A user's residual block: ``relu(body(x) + x)``."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(),
                                  nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + x)


def user_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), UserBlock(8), UserBlock(8), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 4))


@pytest.fixture
def user_adapter():
    @register_block_adapter(UserBlock)
    def _user_block(block: UserBlock) -> ResidualBranchBlock:
        return ResidualBranchBlock(block.body, nn.Identity(), nn.ReLU())

    yield
    BLOCK_ADAPTERS._table.pop(class_path(UserBlock))


def test_user_registered_adapter(user_adapter, tmp_path):
    assert class_path(UserBlock) in list_block_adapters()
    base = randomize_bn(user_net())
    exposed, names = expose_branches(base)
    assert names == ["1.branch", "2.branch"] and same_output(base, exposed, torch.randn(2, 3, 8, 8))
    gated = gate_model(base, "branch", ["original", NARROW_QUARTER], example_input=(3, 8, 8), distill_steps=0)
    with torch.no_grad():
        gated_slots(gated)["1.branch"].gate.zero_()
    plain, arch = materialize(gated.eval())
    assert plain[1].branch is None and output_depends_on_input(plain, (3, 8, 8))
    save_materialized(plain, arch, tmp_path)
    again = load_materialized(tmp_path / "architecture.json", tmp_path / "weights.pt", base_model=user_net())
    assert same_output(plain, again, torch.randn(2, 3, 8, 8))
    with pytest.raises(KeyError, match="already registered"):
        register_block_adapter(UserBlock)(lambda block: None)


def test_efficientnet_branches_keep_se_so_narrow_is_refused_with_a_reason_and_dwsep_applies():
    exposed, names = expose_branches(torchvision.models.efficientnet_b0(num_classes=10))
    branch = exposed.get_submodule(names[0])
    spec = SlotSpec(names[0], "branch", (24, 8, 8), (24, 8, 8))
    assert "SqueezeExcitation" in get_alternative("narrow").applicable(spec, branch)
    assert get_alternative("dwsep").applicable(spec, branch) is None
