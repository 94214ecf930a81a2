"""Per-slot cost normalisation: every slot's original costs the same, candidates keep their relative costs."""

import pytest
import torch

from darc.costs import CostContext, assign_costs
from darc.gates import gate_model, gated_slots
from darc.toy import TOY_CANDIDATES


def _body(k):
    return torch.nn.Sequential(torch.nn.Conv2d(4, 4, k, padding=k // 2), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                               torch.nn.Conv2d(4, 4, k, padding=k // 2), torch.nn.BatchNorm2d(4))


class _Net(torch.nn.Module):
    """Three residual bodies of unequal cost (kernels 1, 3 and 5)."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = _body(1), _body(3), _body(5)

    def forward(self, x):
        for body in (self.a, self.b, self.c):
            x = x + body(x)
        return x.mean(dim=(2, 3))


def _setup():
    net = _Net().eval()
    return net, gate_model(net, ["a", "b", "c"], TOY_CANDIDATES, example_input=(4, 8, 8), distill_steps=0)


def test_slot_normalisation_equalises_the_originals_and_keeps_ratios_within_a_slot():
    net, gated = _setup()
    network = assign_costs(gated, net, "params", CostContext((4, 8, 8)))
    per_net = {n: s.cost.clone() for n, s in gated_slots(gated).items()}
    assert per_net["c"].max() > 5 * per_net["a"].max()  # unequal slots under the network's normalisation
    slot = assign_costs(gated, net, "params", CostContext((4, 8, 8)), normalisation="slot")
    originals = [float(s.cost[s.labels.index("original")]) for s in gated_slots(gated).values()]
    assert max(originals) == pytest.approx(min(originals))
    mean_share = sum(float(c[gated_slots(gated)[n].labels.index("original")]) for n, c in per_net.items()) / 3
    assert originals[0] == pytest.approx(mean_share)
    for n, s in gated_slots(gated).items():
        assert torch.allclose(s.cost / s.cost.max(), per_net[n] / per_net[n].max())
    assert network["normalisation"] == "network" and slot["normalisation"] == "slot"


def test_an_unknown_normalisation_is_refused():
    net, gated = _setup()
    with pytest.raises(ValueError, match="normalisation must be one of"):
        assign_costs(gated, net, "params", CostContext((4, 8, 8)), normalisation="layer")
