"""Built-in models: registry, parameter counts, shapes, slots, the block contract, timm weights."""

from __future__ import annotations

import json

import pytest
import timm
import torch
from torch import nn

from darc.models import (
    BRANCH_LAYER_TYPES,
    ResidualBlock,
    create_model,
    list_models,
    load_timm_resnet_d,
)
from darc.models.wrn import PreActBlock

# Registered factories that need arguments to build (kept small).
REQUIRED_KWARGS = {
    "wide_resnet": {"depth": 10, "widen_factor": 1},
    "resnet_d": {"depth": 10, "width_mult": 0.125, "small_input": True},
}
BIG = 3_000_000  # models above this many parameters run their forward at a tiny input
TINY_INPUT = 8


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: on a shared 2-core machine more threads only spin (and are 10x slower)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _meta_count(name: str, factory=create_model, **kw) -> int:
    """Parameter count without paying for initialisation."""
    with torch.device("meta"):
        return _params(factory(name, **kw))


def _blocks(model: nn.Module) -> list[ResidualBlock]:
    return [m for m in model.modules() if isinstance(m, ResidualBlock)]


def _randomize_bn(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial BN affines and statistics (undoes zero-init-last, so branches matter)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            if m.affine:
                m.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.data.copy_(torch.randn(c, generator=g) * 0.1)


class _ZeroLike(nn.Module):
    """A branch stand-in that outputs zeros of the branch's output shape."""

    def __init__(self, branch: nn.Module) -> None:
        super().__init__()
        self.inner = branch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(self.inner(x))


# --- registry -------------------------------------------------------------------------------------------


def test_required_names_registered():
    names = set(list_models())
    required = {"wrn28_10", "wrn16_8", "wrn16_4", "wrn16_2", "wrn16_1", "wrn10_2", "wrn40_4", "wide_resnet",
                "resnet18d", "resnet34d", "resnet50d", "resnet101d", "resnet10d_small"}
    assert required <= names
    assert list_models("wrn*") == sorted(n for n in names if n.startswith("wrn"))


def test_unknown_model_raises_keyerror_listing_names():
    with pytest.raises(KeyError, match="wrn28_10") as err:
        create_model("no_such_net")
    assert "resnet50d" in str(err.value)


def test_create_model_records_and_rebuilds_from_json():
    kw = {"in_chans": 1, "input_size": 28, "num_classes": 7}
    m = create_model("resnet10d_small", **kw).eval()
    assert m.model_name == "resnet10d_small" and m.model_kwargs == kw
    spec = json.loads(json.dumps({"name": m.model_name, "kwargs": m.model_kwargs}))
    r = create_model(spec["name"], **spec["kwargs"]).eval()
    assert str(r) == str(m)
    assert {k: v.shape for k, v in r.state_dict().items()} == {k: v.shape for k, v in m.state_dict().items()}
    r.load_state_dict(m.state_dict())
    x = torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(r(x), m(x))
    assert r(x).shape == (2, 7)


# --- parameter counts (no forward, meta device) ---------------------------------------------------------


def test_wrn28_10_param_count():
    n = _meta_count("wrn28_10")
    assert abs(n - 36.48e6) / 36.48e6 < 0.005, n


def test_resnet50d_param_count():
    n = _meta_count("resnet50d")
    assert abs(n - 25.6e6) / 25.6e6 < 0.01, n


@pytest.mark.parametrize("name", ["resnet18d", "resnet34d", "resnet50d", "resnet101d"])
def test_resnet_d_counts_match_timm(name):
    with torch.device("meta"):
        ref = _params(timm.create_model(name, pretrained=False))
    assert _meta_count(name) == ref


def test_slot_counts_of_paper_bases():
    with torch.device("meta"):
        wrn, rn = create_model("wrn28_10"), create_model("resnet50d")
    assert len(wrn.slot_names("branch")) == 12 and len(wrn.slot_names("conv")) == 24
    assert len(rn.slot_names("branch")) == 16 and len(rn.slot_names("conv")) == 48
    assert wrn.slot_names()[0] == "stages.0.0.branch"
    with pytest.raises(ValueError, match="branch"):
        wrn.slot_names("layer")


# --- every registered model -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", list_models())
def test_model_contract(name):
    """Forward shape, slot listing and shapes, branch composition, and ``branch = None``."""
    torch.manual_seed(0)
    kw = dict(REQUIRED_KWARGS.get(name, {}))
    with torch.device("meta"):
        big = _params(create_model(name, **kw)) > BIG
    if big:
        kw["input_size"] = TINY_INPUT
    model = create_model(name, **kw).eval()
    _randomize_bn(model)
    x = torch.randn(2, *model.input_shape)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, model.num_classes)

    blocks = _blocks(model)
    specs = model.slots("branch")
    assert [s.name for s in specs] == model.slot_names("branch")
    assert len(specs) == len(blocks) > 0
    assert [model.get_submodule(s.name) for s in specs] == [b.branch for b in blocks]
    for prev, nxt in zip(specs, specs[1:]):  # a branch's output shape is the next branch's input shape
        assert prev.out_shape == nxt.in_shape
    for b in blocks:
        assert isinstance(b.branch, nn.Sequential)
        assert all(isinstance(layer, BRANCH_LAYER_TYPES) for layer in b.branch)
    convs = model.slot_names("conv")
    assert convs and all(isinstance(model.get_submodule(c), nn.Conv2d) for c in convs)
    assert all(any(c.startswith(s.name + ".") for s in specs) for c in convs)

    # branch = None computes exactly the shortcut path (= the block with an all-zero branch)
    for block in (blocks[0], blocks[-1]):
        branch = block.branch
        block.branch = _ZeroLike(branch)
        with torch.no_grad():
            y_zero = model(x)
        block.branch = None
        with torch.no_grad():
            y_none = model(x)
        torch.testing.assert_close(y_none, y_zero)
        assert not torch.allclose(y_none, y, atol=1e-5)
        block.branch = branch
    blocks[0].branch = None
    assert len(model.slot_names()) == len(blocks) - 1


@pytest.mark.parametrize("name", ["wrn16_1", "wrn10_2", "resnet10d_small"])
def test_fashion_mnist_shape(name):
    m = create_model(name, in_chans=1, input_size=28).eval()
    assert m.input_shape == (1, 28, 28)
    assert m(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    specs = m.slots()
    assert specs[0].in_shape[1:] == (28, 28)
    assert [s.stride for s in specs if s.stride != 1] == [2] * (len(m.stages) - 1)


# --- WRN: GluonCV layout --------------------------------------------------------------------------------


def test_wrn28_10_layout_matches_gluoncv():
    with torch.device("meta"):
        m = create_model("wrn28_10")
    stem_bn = m.stem[0]
    assert isinstance(stem_bn, nn.BatchNorm2d) and not stem_bn.affine  # GluonCV's scale=False, center=False
    for i, stage in enumerate(m.stages):
        assert len(stage) == 4
        first = stage[0]
        assert isinstance(first.shortcut, nn.Conv2d) and first.shortcut.kernel_size == (1, 1)
        assert first.shortcut.bias is None and first.shortcut.stride == ((1, 1) if i == 0 else (2, 2))
        assert first.branch[0].stride == first.shortcut.stride
        assert first.shortcut.out_channels == 160 * 2**i
        assert all(isinstance(b.shortcut, nn.Identity) for b in stage[1:])
    assert isinstance(create_model("wrn16_1").stages[0][0].shortcut, nn.Identity)  # 16 -> 16


@pytest.mark.parametrize("cin,cout,stride", [(16, 32, 1), (32, 64, 2), (32, 32, 1)])
def test_wrn_block_matches_gluoncv_forward(cin, cout, stride):
    """CIFARBasicBlockV2.hybrid_forward, transcribed: the projection takes the pre-activation."""
    torch.manual_seed(0)
    b = PreActBlock(cin, cout, stride, drop_rate=0.3).eval()
    _randomize_bn(b)
    x = torch.randn(2, cin, 8, 8)
    bn1, conv1, bn2, conv2 = b.preact[0], b.branch[0], b.branch[1], b.branch[4]
    residual = x
    h = torch.relu(bn1(x))
    if cin != cout:
        residual = b.shortcut(h)
    h = conv2(torch.relu(bn2(conv1(h))))
    torch.testing.assert_close(b(x), h + residual)


def test_wrn_dropout_in_branch():
    m = create_model("wrn10_2", drop_rate=0.3)
    assert all(isinstance(b.branch[3], nn.Dropout) for b in _blocks(m))
    plain = _blocks(create_model("wrn10_2"))
    assert not any(isinstance(layer, nn.Dropout) for b in plain for layer in b.branch)


# --- ResNet-v1d: timm equivalence -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["resnet18d", "resnet50d"])
def test_timm_weights_give_equal_outputs(name):
    torch.manual_seed(0)
    ref = timm.create_model(name, pretrained=False).eval()
    _randomize_bn(ref)
    ours = load_timm_resnet_d(create_model(name, zero_init_last=False), ref.state_dict()).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)


def test_timm_mapping_rejects_mismatch():
    ref = timm.create_model("resnet18d", pretrained=False)
    with pytest.raises(KeyError, match="does not match"):
        load_timm_resnet_d(create_model("resnet34d"), ref.state_dict())


def test_zero_init_last_matches_timm():
    m = create_model("resnet10d_small")
    assert all(float(b.branch[-1].weight.detach().abs().sum()) == 0.0 for b in _blocks(m))
    m = create_model("resnet10d_small", zero_init_last=False)
    assert all(float(b.branch[-1].weight.detach().abs().sum()) > 0.0 for b in _blocks(m))


def test_resnet_d_shortcut_is_avgpool_then_conv():
    m = create_model("resnet18d_small")
    s = m.stages[1][0].shortcut
    pool, conv, bn = s
    assert isinstance(pool, nn.AvgPool2d) and pool.ceil_mode and not pool.count_include_pad
    assert conv.kernel_size == (1, 1) and conv.stride == (1, 1) and isinstance(bn, nn.BatchNorm2d)
    assert m.stages[1][0].branch[0].stride == (2, 2)
    assert isinstance(m.stages[0][0].shortcut, nn.Identity)
