"""The lambda path (darc.lampath): on a toy with equal-cost, equally important, WRN-like slots and frozen
weights, a coarse grid jumps from every slot replaced to every slot dropped; the refined path finds a lambda
that drops some slots and replaces others."""

import pytest
import torch

from darc.lampath import PathPoint, decision_distance, refine_path
from darc.search import SearchConfig
from darc.toy import toy_inputs, toy_net, toy_search
from darc.train import TrainConfig

#: The WRN's situation in small: four residual bodies that narrow x1/2 copies exactly, equal in cost and in
#: how much they matter, only the gates learning (frozen weights), a short search from the level start.
CANDIDATES = ("original", {"alternative": "narrow", "ratio": 0.5})
GRID = [1.0, 6.0, 35.0]


@pytest.fixture(scope="module")
def toy_searcher():
    torch.set_num_threads(1)
    base, x = toy_net(["half"] * 4, width=16), toy_inputs(size=8)
    calls = []

    def search(lam):
        cfg = SearchConfig(lam=lam, cost_model="params", original_share=None, distill_steps=50, lr_gate=0.05,
                           weights="frozen", handoff="rebuilt",
                           train=TrainConfig(epochs=1, lr=0.01, momentum=0.9, weight_decay=0.0))
        calls.append(lam)
        return toy_search(base, cfg, inputs=x, candidates=CANDIDATES, steps_per_epoch=30)["kept"]

    return search, calls


def test_the_coarse_grid_jumps_and_the_refined_path_mixes(toy_searcher):
    search, calls = toy_searcher
    today = [PathPoint(lam, search(lam)) for lam in GRID]
    assert [p.replaced for p in today] == [4, 4, 0] and today[-1].dropped == 4  # all replaced, then all dropped
    assert not any(p.mixes_drops_and_replacements for p in today)
    calls.clear()
    path = refine_path(search, GRID, max_searches=6)
    assert len(calls) <= len(GRID) + 6 and any(p.refined for p in path)
    mixed = [p for p in path if p.mixes_drops_and_replacements]
    assert mixed, [(p.lam, p.replaced, p.dropped) for p in path]
    assert all(6.0 < p.lam < 35.0 for p in mixed)


def test_refinement_stops_where_every_step_changes_at_most_one_slot():
    # slot i is dropped from lambda 10 * (i + 1) on: the path ends with one change per step
    def search(lam):
        return {f"s{i}": [] if lam >= 10 * (i + 1) else ["narrow"] for i in range(3)}

    path = refine_path(search, [1.0, 100.0], max_searches=20, min_ratio=1.001)
    steps = list(zip(path, path[1:]))
    assert all(decision_distance(a.kept, b.kept) <= 1 for a, b in steps)
    assert sorted({p.dropped for p in path}) == [0, 1, 2, 3]
    assert len(refine_path(search, [1.0, 100.0], max_searches=0)) == 2
    with pytest.raises(ValueError, match="different slots"):
        decision_distance({"a": []}, {"b": []})
