"""DARC replaces sub-components by cheaper alternatives when they can do the job, drops what contributes
nothing and keeps what nothing cheaper can imitate: the behaviour the paper claims, on toy networks with a
known answer (darc.toy), with the default search settings (darc.search.SearchConfig) at lambda = 1."""

import pytest
import torch

from darc.compressor import keep_strongest_candidate_, slot_decisions
from darc.gates import gate_model, gated_slots
from darc.search import SearchConfig
from darc.toy import TOY_SLOTS, toy_inputs, toy_net, toy_search
from darc.train import TrainConfig

LAM = 1.0
RECIPE = TrainConfig(epochs=4, batch_size=64, lr=0.05, momentum=0.9, weight_decay=5e-4, schedule="constant")


def _search(kinds, lam=LAM, weights="train"):
    """A toy search; frozen weights with the workflow's pairing (``handoff: rebuilt``: the frozen search's
    shrunken gates are not folded into the network)."""
    torch.set_num_threads(1)
    cfg = SearchConfig(lam=lam, train=RECIPE, weights=weights, handoff="rebuilt" if weights == "frozen" else "searched")
    return toy_search(toy_net(kinds, width=16), cfg, inputs=toy_inputs(size=8))


#: The search's two ways with the weights: the paper's joint training, and the gates alone (the workflow's default)
WEIGHTS = ["train", "frozen"]


@pytest.fixture(scope="module", params=WEIGHTS)
def mixed(request):
    """One useful-but-replaceable, one useless, one irreplaceable and one more replaceable slot."""
    return _search(["half", "zero", "full", "half"], weights=request.param)


@pytest.mark.parametrize("weights", WEIGHTS)
def test_exact_cheaper_copies_replace_the_originals(weights):
    res = _search(["half"] * 4, weights=weights)
    alone_and_cheaper = [labels for labels in res["kept"].values() if len(labels) == 1 and labels != ["original"]]
    assert len(alone_and_cheaper) >= 3, res["kept"]
    assert res["rel_mse"] <= 0.05 < res["rel_mse_drop_all"]  # and removing the slots would be costly
    assert res["decisions"]["replaced"] >= 3 and res["param_reduction"] > 1.5


@pytest.mark.parametrize("weights", WEIGHTS)
def test_a_small_lambda_keeps_the_base(weights):
    """Lambda is a dial: the original's head start (half the slot's output) keeps it when the penalty is
    small, even where an exact cheaper copy exists."""
    res = _search(["half"] * 4, lam=0.1, weights=weights)
    assert all(labels == ["original"] for labels in res["kept"].values()), res["kept"]
    assert res["rel_mse"] <= 0.05


def test_a_slot_that_contributes_nothing_is_dropped(mixed):
    assert mixed["kept"]["blocks.1.body"] == [], mixed["kept"]


def test_a_slot_no_alternative_can_imitate_keeps_its_original(mixed):
    assert mixed["kept"]["blocks.2.body"] == ["original"], mixed["kept"]
    assert mixed["rel_mse"] <= 0.05


def test_alternatives_are_distilled_and_share_the_slot_output_at_the_start():
    base = toy_net(["half"], width=16)
    x = toy_inputs(n=64, size=8)
    gated = gate_model(base, TOY_SLOTS, ["original", {"alternative": "narrow", "ratio": 0.5}, "dwsep"],
                       calibration=x, example_input=(3, 8, 8))
    slot = gated_slots(gated)["blocks.0.body"]
    assert slot.gate.tolist() == pytest.approx([0.5, 0.25, 0.25])  # the original half, the rest shared
    equal = gate_model(base, TOY_SLOTS, ["original", {"alternative": "narrow", "ratio": 0.5}, "dwsep"],
                       example_input=(3, 8, 8), distill_steps=0, original_share=None)
    assert gated_slots(equal)["blocks.0.body"].gate.tolist() == pytest.approx([1 / 3] * 3)
    errors = dict(zip(slot.labels, slot.distill_error))
    assert errors["original"] is None
    assert errors["narrow(ratio=0.5)"] < 1e-5  # an exact copy stays exact: the best state is kept
    assert errors["dwsep"] < 1.0
    undistilled = gate_model(base, TOY_SLOTS, ["original", "dwsep"], calibration=x, example_input=(3, 8, 8),
                             distill_steps=0, gate_init="fixed")
    assert gated_slots(undistilled)["blocks.0.body"].gate.tolist() == pytest.approx([1.0, 0.05])


def test_one_candidate_per_slot_keeps_the_largest_contribution():
    base = toy_net(["full", "full"], width=8)
    gated = gate_model(base, TOY_SLOTS, ["original", {"alternative": "narrow", "ratio": 0.5}],
                       example_input=(3, 8, 8), distill_steps=0)
    slots = gated_slots(gated)
    with torch.no_grad():
        slots["blocks.0.body"].gate.copy_(torch.tensor([0.9, 0.1]))
        slots["blocks.1.body"].gate.copy_(torch.tensor([0.0, 0.7]))
    kept = keep_strongest_candidate_(gated.eval(), toy_inputs(n=16, size=8))
    assert kept == {"blocks.0.body": "original"}  # the second slot had one candidate already
    assert slots["blocks.0.body"].gate.tolist() == pytest.approx([1.0, 0.0])  # the live gates' sum
    assert slots["blocks.1.body"].gate.tolist() == pytest.approx([0.0, 0.7])


def test_slot_decisions_count_kept_replaced_mixed_dropped():
    d = slot_decisions({"a": ["original"], "b": ["dwsep"], "c": [], "d": ["original", "dwsep"], "e": ["dwsep"]})
    assert (d["kept"], d["replaced"], d["mixed"], d["dropped"]) == (1, 2, 1, 1)
    assert d["replaced_by"] == {"dwsep": 2}


def test_rebuilt_handoff_hands_on_the_exact_copies_at_full_strength():
    """The frozen search replaces exact cheaper copies but shrinks the gates it keeps; folded, the network no
    longer computes the base's function. ``handoff: rebuilt`` makes the same decisions and hands on the copies
    at full strength, which compute it (the toy's target is the base's output)."""
    runs = {}
    for handoff in ("searched", "rebuilt"):
        torch.set_num_threads(1)
        cfg = SearchConfig(lam=LAM, train=RECIPE, weights="frozen", handoff=handoff)
        runs[handoff] = toy_search(toy_net(["half"] * 4, width=16), cfg, inputs=toy_inputs(size=8))
    searched, rebuilt = runs["searched"], runs["rebuilt"]
    assert rebuilt["kept"] == searched["kept"] and rebuilt["decisions"]["replaced"] >= 3
    assert rebuilt["rel_mse"] <= 0.01 < searched["rel_mse"], (rebuilt["rel_mse"], searched["rel_mse"])
    assert all(sum(abs(g) for g in gates.values()) == pytest.approx(1.0) for gates in rebuilt["gates"].values())
