"""Safe removal (issue #32): a slot that loses every candidate never leaves a network whose output ignores its
input. A whole block becomes the identity where its shapes allow, a residual or parallel branch outputs zeros
(the skip path remains), and a block the network hangs on that cannot be the identity is refused."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from torch import nn
from torchvision.models.mobilenetv2 import InvertedResidual

from darc.gates import gate_model, gated_slots
from darc.materialize import UnsafeRemovalError, build, materialize
from darc.nn import ZeroOutput

SHAPE = (3, 16, 16)
CANDIDATES = ["original", "dwsep"]


def mobile_net() -> nn.Module:
    """Stem, a stride-1 same-channel block ("2", with its own skip), a stride-2 channel-changing block ("3")."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), InvertedResidual(8, 8, 1, 2), InvertedResidual(8, 16, 2, 2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 5),
    ).eval()


def gated(slots: list[str], drop: tuple[str, ...] = ()) -> nn.Module:
    """``mobile_net`` gated at ``slots``, every gate of the slots in ``drop`` forced to zero."""
    net = gate_model(mobile_net(), slots, CANDIDATES, example_input=SHAPE, distill_steps=0).eval()
    with torch.no_grad():
        for name in drop:
            gated_slots(net)[name].gate.zero_()
    return net


def inputs() -> torch.Tensor:
    return torch.randn(3, *SHAPE, generator=torch.Generator().manual_seed(1))


def depends_on_input(model: nn.Module) -> bool:
    with torch.no_grad():
        y = model.eval()(inputs())
    return not torch.equal(y[0], y[1]) and not torch.equal(y[1], y[2])


def test_nothing_dropped_gated_and_plain_agree():
    net = gated(["2", "3"])
    plain, arch = materialize(net)
    x = inputs()
    with torch.no_grad():
        torch.testing.assert_close(plain.eval()(x), net(x), rtol=1e-5, atol=1e-6)
    assert all("removed_as" not in slot for slot in arch["slots"])


def test_a_dropped_stride2_channel_changing_block_is_refused_with_a_message():
    net = gated(["2", "3"], drop=("3",))
    assert gated_slots(net)["3"].removal == "refuse"
    with pytest.warns(UserWarning, match="slot '3' lost every candidate"):
        net(inputs())  # the gated network says so when it happens, not only at the end
    with pytest.raises(UnsafeRemovalError, match=r"slot '3' lost every candidate .* cannot be removed") as err:
        materialize(net)
    msg = str(err.value)
    assert "\n" not in msg and "(8, 16, 16) to (16, 8, 8)" in msg and "Lower lam" in msg


def test_a_dropped_same_shape_block_becomes_the_identity_and_the_output_still_depends_on_the_input():
    net = gated(["2", "3"], drop=("2",))
    assert gated_slots(net)["2"].removal == "identity"
    plain, arch = materialize(net)
    assert isinstance(plain[2], nn.Identity)
    assert arch["slots"][0]["removed_as"] == "identity"
    assert depends_on_input(plain)
    x = inputs()
    with torch.no_grad():
        torch.testing.assert_close(plain.eval()(x), net(x), rtol=1e-5, atol=1e-6)  # the search saw the same
        rebuilt = build(json.loads(json.dumps(arch)), plain.state_dict(), base_model=mobile_net()).eval()
        torch.testing.assert_close(rebuilt(x), plain(x))
    legacy = json.loads(json.dumps(arch))
    del legacy["slots"][0]["removed_as"]  # a file written before removals were probed: rebuilt as it was
    assert isinstance(build(legacy, None, base_model=mobile_net())[2], ZeroOutput)


def test_a_dropped_residual_branch_leaves_the_skip_path():
    net = gated(["2.conv", "3"], drop=("2.conv",))
    assert gated_slots(net)["2.conv"].removal == "zero"  # x + 0: the block's own skip carries the input
    plain, arch = materialize(net)
    assert isinstance(plain[2].conv, ZeroOutput) and arch["slots"][0]["removed_as"] == "zero"
    assert depends_on_input(plain)


class TwoBranches(nn.Module):
    """Two parallel branches concatenated: either alone may go, not both."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 4, 1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.a(x), self.b(x)], 1))


def test_dropping_every_parallel_branch_is_refused():
    torch.manual_seed(0)
    net = gate_model(TwoBranches(), ["a", "b"], ["original"], example_input=SHAPE).eval()
    assert [s.removal for s in gated_slots(net).values()] == ["zero", "zero"]
    with torch.no_grad():
        gated_slots(net)["a"].gate.zero_()
    assert depends_on_input(materialize(net)[0])
    with torch.no_grad():
        gated_slots(net)["b"].gate.zero_()
    with pytest.raises(UnsafeRemovalError, match="slots 'a', 'b' .* no longer depends on its input"):
        materialize(net)


@pytest.mark.parametrize("level, removal", [("branch", "shortcut"), ("conv", "zero")])
def test_builtin_slots_are_removed_as_before(level, removal):
    from darc.models import create_model

    base = create_model("wrn16_1", in_chans=1, input_size=8)
    net = gate_model(base, level, ["original"], distill_steps=0).eval()
    slots = gated_slots(net)
    assert {s.removal for s in slots.values()} == {removal}
    first = next(iter(slots.values()))
    with torch.no_grad():
        first.gate.zero_()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no probe, no warning: the built-in networks are untouched
        plain, arch = materialize(net)
    assert all("removed_as" not in slot for slot in arch["slots"])
    if level == "branch":
        assert plain.get_submodule(first.spec.name.rpartition(".")[0]).branch is None
    else:
        assert isinstance(plain.get_submodule(first.spec.name), ZeroOutput)


def test_a_network_that_ignores_its_input_from_the_start_is_not_probed():
    """A zero-initialised head makes every output equal: no slot can be judged, so none becomes the identity."""
    base = mobile_net()
    with torch.no_grad():
        base[-1].weight.zero_()
    with pytest.warns(UserWarning, match="cannot check which slots of Sequential can be removed"):
        net = gate_model(base, ["2.conv"], CANDIDATES, example_input=SHAPE, distill_steps=0)
    slot = gated_slots(net)["2.conv"]
    assert slot.removal == "zero" and slot.probe_shape is None
