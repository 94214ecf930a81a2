import copy
import json

import pytest
import torch
from tiny_nets import TinyResNet, randomize_bn
from torch import nn

from darc.gates import GatedSlot, IncompatibleAlternativeError, gate_model, gated_slots, scaled_call
from darc.materialize import ArchitectureError, build, materialize


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).detach().norm() / b.detach().norm())


def random_gates_(model: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    slots = list(gated_slots(model).values())
    with torch.no_grad():
        for i, slot in enumerate(slots):
            vals = torch.randn(len(slot.gate), generator=g)
            vals[torch.rand(len(slot.gate), generator=g) < 0.4] = 0.0
            if i == 0:
                vals[:] = 0.0  # one slot fully dropped
            slot.gate.copy_(vals)


def tiny_gated(**kw):
    base = randomize_bn(TinyResNet())
    x = torch.randn(16, 3, 16, 16)
    gated = gate_model(base, ["blocks.*.body"], example_input=x, calibration=x, **kw)
    return base, gated, x


def test_gated_slots_hold_original_and_alternatives():
    _, gated, _ = tiny_gated()
    slots = gated_slots(gated)
    assert list(slots) == ["blocks.0.body", "blocks.1.body", "blocks.2.body"]
    labels = slots["blocks.0.body"].labels
    assert labels == ["original", "narrow(ratio=0.5)", "narrow(ratio=0.25)", "dwsep", "identity"]
    # identity does not fit the stride-2 slot and is skipped there
    assert "identity" not in slots["blocks.1.body"].labels
    # by default the four candidates with weights share the slot's output (the original half of it, the
    # three alternatives the other half); identity starts small
    assert slots["blocks.0.body"].gate.tolist() == pytest.approx([0.5, 1 / 6, 1 / 6, 1 / 6, 0.05])
    fixed = gated_slots(tiny_gated(gate_init="fixed", distill_steps=0)[1])["blocks.0.body"]
    assert fixed.gate.tolist()[0] == 1.0
    assert all(g == pytest.approx(0.05) for g in fixed.gate.tolist()[1:])


def test_materialized_equals_gated_and_is_plain():
    base, gated, x = tiny_gated()
    random_gates_(gated)
    gated.eval()
    plain, arch = materialize(gated)
    plain.eval()
    assert not any(isinstance(m, GatedSlot) for m in plain.modules())
    assert rel_err(plain(x), gated(x)) <= 1e-5
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(plain) < n(gated)
    assert arch["slots"][0]["kept"] == []


def test_strict_refuses_inapplicable_candidate():
    with pytest.raises(IncompatibleAlternativeError, match="blocks.1.body"):
        gate_model(TinyResNet(), ["blocks.*.body"], ["original", "identity"],
                   example_input=(3, 16, 16), strict=True)


def test_shape_incompatible_custom_alternative_is_refused_at_build():
    from darc.alternatives import ALTERNATIVES

    class Halver:
        def applicable(self, spec, original):
            return None

        def build(self, spec, original, init, **cfg):
            return nn.Conv2d(spec.in_channels, spec.out_channels // 2, 1)

    if "test_halver" not in ALTERNATIVES:
        ALTERNATIVES.register("test_halver")(Halver)
    with pytest.raises(IncompatibleAlternativeError, match="must output"):
        gate_model(TinyResNet(), ["blocks.0.body"], ["original", "test_halver"], example_input=(3, 16, 16))


def test_build_from_architecture_with_user_base_model(tmp_path):
    base, gated, x = tiny_gated()
    random_gates_(gated, seed=3)
    gated.eval()
    plain, arch = materialize(gated)
    text = json.dumps(arch)
    rebuilt = build(json.loads(text), plain.state_dict(), base_model=TinyResNet())
    rebuilt.eval()
    assert torch.allclose(rebuilt(x), plain.eval()(x), atol=1e-6)
    with pytest.raises(ArchitectureError, match="pass base_model"):
        build(json.loads(text), plain.state_dict())


def test_architecture_refuses_other_base_model():
    class Other(TinyResNet):
        pass

    _, gated, _ = tiny_gated()
    _, arch = materialize(gated)
    with pytest.raises(ArchitectureError, match="for base model"):
        build(arch, None, base_model=Other())


def test_all_zero_module_slot_outputs_zeros():
    _, gated, x = tiny_gated()
    slot = gated_slots(gated)["blocks.2.body"]
    with torch.no_grad():
        slot.gate.zero_()
    gated.eval()
    y = slot(torch.randn(2, 16, 8, 8))
    assert y.shape == (2, 16, 8, 8) and y.abs().sum() == 0
    plain, _ = materialize(gated)
    assert torch.allclose(plain.eval()(x), gated(x), atol=1e-6)


def test_dwsep_distillation_mimics_original():
    """Distillation targets the slot as the search sees it (training mode, batch statistics)."""
    from darc.gates import CandidateRef, build_candidate

    base, gated, x = tiny_gated()
    slot = gated_slots(gated)["blocks.0.body"]
    orig = slot.candidates[0]
    inp = gated.stem.eval()(x)
    distilled = slot.candidates[slot.labels.index("dwsep")]
    untrained = build_candidate(CandidateRef("dwsep"), slot.spec, orig, True)
    with torch.no_grad():
        target = copy.deepcopy(orig).train()(inp)
        err = {name: rel_err(copy.deepcopy(m).train()(inp), target) for name, m in
               (("distilled", distilled), ("untrained", untrained))}
    assert err["distilled"] < 0.7 * err["untrained"], err
    assert slot.distill_error[slot.labels.index("dwsep")] == pytest.approx(err["distilled"], rel=1e-3)


def _check_materialization(base: nn.Module, slots, x: torch.Tensor, candidates=None) -> None:
    from darc.gates import DEFAULT_CANDIDATES

    base = randomize_bn(base)
    gated = gate_model(base, slots, candidates or DEFAULT_CANDIDATES, example_input=x, calibration=x)
    random_gates_(gated, seed=1)
    gated.eval()
    plain, arch = materialize(gated)
    plain.eval()
    with torch.no_grad():
        assert rel_err(plain(x), gated(x)) <= 1e-5
    assert not any(isinstance(m, GatedSlot) for m in plain.modules())
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(plain) < n(gated)
    return plain, arch


@pytest.mark.parametrize("name", ["wrn16_2", "resnet10d_small"])
def test_builtin_models_materialize_and_rebuild(name):
    from darc.models import create_model

    base = create_model(name, in_chans=1, input_size=28, num_classes=10)
    x = torch.randn(8, 1, 28, 28)
    plain, arch = _check_materialization(base, "branch", x)
    # a dropped branch is removed from its block (the block is its shortcut)
    dropped = arch["slots"][0]["name"]
    assert plain.get_submodule(dropped.rsplit(".", 1)[0]).branch is None
    rebuilt = build(json.loads(json.dumps(arch)), plain.state_dict()).eval()
    with torch.no_grad():
        assert torch.allclose(rebuilt(x), plain(x), atol=1e-5)


def test_torchvision_resnet18_whole_block_slots():
    import torchvision

    base = torchvision.models.resnet18(num_classes=10)
    x = torch.randn(2, 3, 64, 64)
    _check_materialization(base, ["layer1.0", "layer1.1", "layer2.0", "layer3.1"], x,
                           ["original", "dwsep", "identity"])


def test_architecture_for_other_registered_model_is_refused():
    from darc.models import create_model

    gated = gate_model(create_model("wrn16_1", in_chans=1, input_size=28), "branch")
    _, arch = materialize(gated)
    with pytest.raises(ArchitectureError, match="wrn16_1"):
        build(arch, None, base_model=create_model("wrn16_2", in_chans=1, input_size=28))


@pytest.mark.parametrize("module", [
    nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 1)),
    nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.Dropout(0.0)),
    nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()),  # nothing to absorb a signed scale
    nn.Conv2d(3, 4, 1),
], ids=["conv-last", "bn-last", "relu-last", "bare-conv"])
def test_scaled_call_equals_scaling_the_output_with_the_same_gradients(module):
    torch.manual_seed(0)
    x = torch.randn(4, 3, 6, 6)
    grads = []
    for fn in (lambda m, g: scaled_call(m, g, x), lambda m, g: g * m(x)):
        m = copy.deepcopy(module).train()
        g = torch.tensor(-0.7, requires_grad=True)
        out = fn(m, g)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        grads.append((out.detach(), g.grad, [p.grad for p in m.parameters()],
                      [b.clone() for b in m.buffers()]))
    (oa, ga, pa, ba), (ob, gb, pb, bb) = grads
    torch.testing.assert_close(oa, ob)
    torch.testing.assert_close(ga, gb)
    for a, b in zip(pa + ba, pb + bb):
        torch.testing.assert_close(a, b)
