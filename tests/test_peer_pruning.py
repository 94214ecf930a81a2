"""The Torch-Pruning peer (darc.peers.pruning): stopping rule, pruned models, save/load, cost matches."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from darc.bench.macs import count_macs
from darc.bench.memory import param_bytes
from darc.models import create_model
from darc.peers.pruning import (
    RECORD_NAME,
    WEIGHTS_NAME,
    PruneResult,
    latency_measure,
    load_pruned,
    load_pruned_dir,
    macs_measure,
    param_bytes_measure,
    prune_to_target,
    save_pruned,
    shape_record,
)

KW = dict(in_chans=1, input_size=28, num_classes=10)
MODELS = ["wrn16_1", "resnet18d_small"]
SHAPE = (1, 28, 28)


def _build(name: str) -> nn.Module:
    torch.manual_seed(0)
    model = create_model(name, **KW)
    # Non-trivial BN statistics and gammas, so magnitudes differ and the saved buffers matter.
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            if m.affine:
                with torch.no_grad():
                    m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                    m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model.eval()


def _n_params(model: nn.Module) -> float:
    return float(sum(p.numel() for p in model.parameters()))


@pytest.fixture(scope="module")
def example() -> torch.Tensor:
    return torch.randn(2, *SHAPE, generator=torch.Generator().manual_seed(2))


def test_stopping_rule_first_step_at_or_below_target(example):
    base = _build("wrn16_1")
    full = prune_to_target(base, example, _n_params, target=-1.0, steps=8)
    values = [t["measured"] for t in full.trace]
    assert [t["step"] for t in full.trace] == list(range(9))
    assert all(b <= a for a, b in zip(values, values[1:])), values
    assert values[-1] < values[0]

    # A target strictly between two steps: the first step at or below it is where pruning stops.
    target = (values[3] + values[4]) / 2
    expected = next(i for i, v in enumerate(values) if v <= target)
    res = prune_to_target(base, example, _n_params, target=target, steps=8)
    assert isinstance(res, PruneResult)
    assert res.reached and res.steps_taken == expected == 4
    assert res.measured == values[expected] <= target
    assert _n_params(res.model) < target
    assert res.ratio == pytest.approx(0.9 * expected / 8)
    assert [t["measured"] for t in res.trace] == values[: expected + 1]
    assert res.target == target

    # A target equal to a step's value is reached at that step (<=).
    exact = prune_to_target(base, example, _n_params, target=values[2], steps=8)
    assert exact.reached and exact.steps_taken == 2

    # Already met by the unpruned copy: nothing is pruned.
    none = prune_to_target(base, example, _n_params, target=values[0], steps=8)
    assert none.reached and none.steps_taken == 0 and none.ratio == 0.0
    assert _n_params(none.model) == values[0]


def test_refinement_redoes_the_crossing_step_in_sub_steps_and_lands_closer(example):
    """With ``refine_steps`` the step that crossed the target is redone in sub-steps from the network before
    it: the result still meets the target, is less pruned than the whole step's network, and its trace shows
    the sub-steps (fractional steps) after the whole steps."""
    base = _build("wrn16_1")
    values = [t["measured"] for t in prune_to_target(base, example, _n_params, target=-1.0, steps=8).trace]
    target = values[3] - 0.25 * (values[3] - values[4])   # a quarter of the way into step 4
    coarse = prune_to_target(base, example, _n_params, target=target, steps=8)
    fine = prune_to_target(base, example, _n_params, target=target, steps=8, refine_steps=4)
    assert coarse.steps_taken == fine.steps_taken == 4 and coarse.sub_steps == 0
    assert 1 <= fine.sub_steps < 4
    assert fine.reached and coarse.measured < fine.measured <= target
    assert fine.measured == _n_params(fine.model)
    assert 0.9 * 3 / 8 < fine.ratio < 0.9 * 4 / 8
    steps = [t["step"] for t in fine.trace]
    assert steps[:5] == [0, 1, 2, 3, 4] and steps[5:] == [3 + j / 4 for j in range(1, fine.sub_steps + 1)]
    assert fine.summary()["sub_steps"] == fine.sub_steps
    assert torch.isfinite(fine.model(example)).all() and all(p.requires_grad for p in fine.model.parameters())
    with pytest.raises(ValueError, match="refine_steps"):
        prune_to_target(base, example, _n_params, target, refine_steps=-1)


def test_a_refining_sub_step_lies_between_the_networks_before_and_after_the_whole_step(example):
    """No layer narrower at a sub-step than after the whole step, none wider than before it: with 24 steps the
    narrow layers keep their width through some steps, and a sub-step must not take a channel from them."""
    base = _build("wrn16_1")
    values = [t["measured"] for t in prune_to_target(base, example, _n_params, target=-1.0, steps=24).trace]
    for k in (5, 6, 7):
        target = values[k - 1] - 0.1 * (values[k - 1] - values[k])
        before = prune_to_target(base, example, _n_params, target=values[k - 1], steps=24)
        whole = prune_to_target(base, example, _n_params, target=target, steps=24)
        fine = prune_to_target(base, example, _n_params, target=target, steps=24, refine_steps=8)
        assert fine.sub_steps >= 1 and whole.steps_taken == fine.steps_taken == k
        widths = [_widths(m.model) for m in (before, fine, whole)]
        assert all(widths[0][n] >= widths[1][n] >= widths[2][n] for n in widths[0]), k


def _widths(model: torch.nn.Module) -> dict[str, int]:
    return {name: m.out_channels for name, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)}


def test_unreachable_target_returns_most_pruned(example):
    base = _build("wrn16_1")
    before = {k: v.clone() for k, v in base.state_dict().items()}
    res = prune_to_target(base, example, _n_params, target=1.0, max_ratio=0.5, steps=5)
    assert not res.reached
    assert res.steps_taken == 5 and res.ratio == pytest.approx(0.5)
    values = [t["measured"] for t in res.trace]
    assert all(b <= a for a, b in zip(values, values[1:]))
    assert res.measured == values[-1] == _n_params(res.model) > 1.0
    # The caller's model is untouched (deep copy; tracing ran in eval mode, BN statistics unchanged).
    after = base.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("name", MODELS)
def test_pruned_models_run_and_stay_plain(name, example):
    base = _build(name)
    res = prune_to_target(base, example, _n_params, target=0.4 * _n_params(base), steps=10)
    assert res.reached and res.steps_taken > 0
    model = res.model
    assert not model.training
    with torch.no_grad():
        out = model(example)
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    assert model.fc.out_features == base.fc.out_features == 10
    assert model.fc.in_features < base.fc.in_features
    convs = {n: m for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    base_convs = {n: m for n, m in base.named_modules() if isinstance(m, nn.Conv2d)}
    assert convs.keys() == base_convs.keys()
    assert all(convs[n].out_channels <= base_convs[n].out_channels for n in convs)
    assert sum(m.out_channels for m in convs.values()) < sum(m.out_channels for m in base_convs.values())
    for m in model.modules():
        assert type(m).__module__.startswith(("torch.nn.", "darc.models.")), type(m)
        assert not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
    for p in model.parameters():
        assert type(p) is nn.Parameter
    # Residual additions stay consistent: a training-mode forward and backward also work.
    model.train()
    model(example).sum().backward()


def test_ignored_layers_keep_their_channels(example):
    base = _build("resnet18d_small")
    keep = "stages.3.1.branch.0"
    res = prune_to_target(base, example, _n_params, target=-1.0, max_ratio=0.5, steps=2, ignored=lambda n, m: n == keep)
    assert res.model.get_submodule(keep).out_channels == base.get_submodule(keep).out_channels
    other = "stages.3.0.branch.0"
    assert res.model.get_submodule(other).out_channels < base.get_submodule(other).out_channels


@pytest.mark.parametrize("name", MODELS)
def test_save_load_round_trip_weights_only(name, example, tmp_path):
    base = _build(name)
    res = prune_to_target(base, example, _n_params, target=0.5 * _n_params(base), steps=6, global_pruning=True)
    assert res.reached
    record_path, weights_path = save_pruned(res, tmp_path)
    assert record_path == tmp_path / RECORD_NAME and weights_path == tmp_path / WEIGHTS_NAME

    record = json.loads(record_path.read_text())
    assert record["model_name"] == name and record["prune"]["steps_taken"] == res.steps_taken
    assert record == json.loads(json.dumps(record))  # plain JSON
    state = torch.load(weights_path, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())

    def builder() -> nn.Module:
        return create_model(name, **KW)

    loaded = load_pruned_dir(builder, tmp_path)
    assert not loaded.training
    with torch.no_grad():
        assert torch.equal(loaded(example), res.model(example))
    assert shape_record(loaded)["layers"] == shape_record(res.model)["layers"]

    # The in-memory loader, and a bare model (no PruneResult) saved the same way.
    again = load_pruned(builder, record, state)
    save_pruned(again, tmp_path / "bare")
    bare = load_pruned_dir(builder, tmp_path / "bare")
    with torch.no_grad():
        assert torch.equal(bare(example), res.model(example))

    # Weights of another architecture are refused.
    with pytest.raises(ValueError):
        load_pruned(lambda: create_model("wrn16_2", **KW), record, state)


def test_param_bytes_and_macs_matches_reach_their_targets(example):
    base = _build("resnet18d_small")
    target_bytes = 0.5 * param_bytes(base)
    res = prune_to_target(base, example, param_bytes_measure(), target_bytes, steps=10)
    assert res.reached and param_bytes(res.model) == res.measured <= target_bytes

    target_macs = 0.3 * count_macs(base, SHAPE, 1)
    res = prune_to_target(base, example, macs_measure(SHAPE), target_macs, steps=10)
    assert res.reached and count_macs(res.model, SHAPE, 1) == res.measured <= target_macs
    assert res.trace[-2]["measured"] > target_macs  # stopped at the first step below


def test_latency_measure_returns_median_seconds():
    measure = latency_measure(SHAPE, 1, threads=1, min_run_time=0.01, warmup=1)
    value = measure(_build("wrn16_1"))
    assert isinstance(value, float) and value > 0


def test_bad_arguments(example):
    base = _build("wrn16_1")
    with pytest.raises(ValueError):
        prune_to_target(base, example, _n_params, 0.0, max_ratio=1.0)
    with pytest.raises(ValueError):
        prune_to_target(base, example, _n_params, 0.0, steps=0)
