"""The penalty, the proximal optimiser and the search loop, on synthetic data."""

import json
import math

import pytest
import torch
from tiny_nets import TinyResNet
from torch import nn

from darc.costs import CostContext, architecture_cost, assign_costs
from darc.data import get_dataset
from darc.gates import gate_model, gated_slots
from darc.penalty import soft_threshold_
from darc.search import SearchConfig, run_search
from darc.train import TrainConfig

SHAPE = (3, 16, 16)


def bundle():
    return get_dataset("synthetic", input_shape=SHAPE, num_classes=4, n_train=256, n_test=64, seed=0)


def cfg(lam: float, epochs: int = 20, **kw) -> SearchConfig:
    train = TrainConfig(epochs=epochs, batch_size=32, lr=0.05, momentum=0.9, weight_decay=5e-4,
                        schedule="constant", seed=0)
    return SearchConfig(lam=lam, slots=["blocks.*.body"], train=train, calibration_samples=32, **kw)


def search(lam: float, tmp_path, **kw):
    torch.manual_seed(0)
    return run_search(TinyResNet(), bundle(), cfg(lam, **kw), tmp_path / f"lam{lam}", progress=False)


def test_soft_threshold_gives_exact_zeros_and_spares_zero_cost():
    gated = gate_model(TinyResNet(), ["blocks.*.body"], example_input=SHAPE)
    assign_costs(gated, TinyResNet(), "params", CostContext(SHAPE))
    slot = gated_slots(gated)["blocks.0.body"]
    ident = slot.labels.index("identity")
    assert slot.cost[ident] == 0
    before = slot.gate.detach().clone()
    soft_threshold_(gated, step=1e6)
    after = slot.gate.detach()
    assert after[ident] == before[ident]  # zero cost: never penalised
    assert all(after[j] == 0 for j in range(len(after)) if j != ident)
    with torch.no_grad():
        slot.gate.copy_(torch.tensor([0.5, -0.5, 0.5, 0.5, 0.5]))
    soft_threshold_(gated, step=0.1 / float(slot.cost[1]))
    assert slot.gate[1].item() == pytest.approx(-0.4, abs=1e-6)


@pytest.mark.parametrize("cost_model", ["params", "macs", "latency"])
def test_cost_models_report_documented_keys(cost_model, tmp_path):
    gated = gate_model(TinyResNet(), ["blocks.*.body"], example_input=SHAPE)
    ctx = CostContext(SHAPE, table_path=tmp_path / "table.json", min_run_time=0.01)
    report = assign_costs(gated, TinyResNet(), cost_model, ctx)
    assert set(report) == {"cost_model", "unit", "base_total", "normalisation", "slots"}
    assert report["base_total"] > 0
    for name, slot in gated_slots(gated).items():
        assert set(report["slots"][name]) == set(slot.labels)
        for label, entry in report["slots"][name].items():
            assert set(entry) == {"raw", "normalized"}
            assert (entry["raw"] == 0) == (label == "identity")
    if cost_model == "latency":
        assert json.loads((tmp_path / "table.json").read_text())["entries"]


def _leaf_calls(module: nn.Module, shape: tuple[int, ...]) -> int:
    """How many leaf modules one forward pass runs: a deterministic stand-in for latency."""
    calls = []
    hooks = [m.register_forward_hook(lambda *_: calls.append(1)) for m in module.modules()
             if not list(m.children())]
    with torch.no_grad():
        module.eval()(torch.zeros(1, *shape))
    for h in hooks:
        h.remove()
    return len(calls)


@pytest.mark.parametrize("context", ["parent", "network", "slot"])
def test_latency_cost_is_the_marginal_cost_in_the_parent_block(context, monkeypatch):
    from darc.bench import cost_check
    from darc.models import create_model

    def fake_table(modules, in_shapes, batch_size, *, device, threads, dtype, **_):
        return {cost_check.LatencyKey(n, tuple(in_shapes[n]), batch_size, threads, str(device), "float32"):
                float(_leaf_calls(m, in_shapes[n])) for n, m in modules.items()}

    monkeypatch.setattr(cost_check, "build_latency_table", fake_table)
    base = create_model("wrn16_1", in_chans=1, input_size=8, num_classes=4).eval()
    gated = gate_model(base, "branch", ["original", {"alternative": "narrow", "ratio": 0.5}])
    report = assign_costs(gated, base, "latency", CostContext((1, 8, 8), context=context))
    cost = report["slots"]["stages.0.1.branch"]["original"]["raw"]
    # the branch runs conv, BN, ReLU, conv; dropping it also skips the block's pre-activation BN and ReLU
    # (the block becomes its identity shortcut, one call either way)
    # (in the whole network the difference is the same: everything else runs either way)
    assert cost == (4 if context == "slot" else 6)
    assert report["slots"]["stages.0.1.branch"]["narrow(ratio=0.5)"]["raw"] == cost


def test_network_context_times_the_base_with_only_that_slot_changed(monkeypatch):
    from darc.bench import cost_check
    from darc.models import create_model

    timed = {}

    def fake_table(modules, in_shapes, batch_size, *, device, threads, **_):
        out = {}
        for n, m in modules.items():
            timed[n] = (m, tuple(in_shapes[n]))
            out[cost_check.LatencyKey(n, tuple(in_shapes[n]), batch_size, threads, str(device), "float32")] = 1.0
        return out

    monkeypatch.setattr(cost_check, "build_latency_table", fake_table)
    base = create_model("wrn16_1", in_chans=1, input_size=8, num_classes=4).eval()
    gated = gate_model(base, "branch", ["original", {"alternative": "narrow", "ratio": 0.5}])
    assign_costs(gated, base, "latency", CostContext((1, 8, 8), context="network"))
    variants = {n: v for n, v in timed.items() if "<-" in n}
    assert len(variants) == 6 * 3  # 6 branch slots x (original, narrow, dropped)
    base_params = dict(base.named_parameters())
    for name, (module, shape) in variants.items():
        slot, label = name.split("#")[0].split("<-")
        assert type(module) is type(base) and shape == (1, 8, 8)  # the whole network, at its input
        changed = {k.split(".branch")[0] + ".branch" for k, p in module.named_parameters()
                   if k not in base_params or base_params[k].shape != p.shape}
        changed |= {k.split(".branch")[0] + ".branch" for k in base_params if k not in dict(module.named_parameters())}
        assert changed == (set() if label == "original" else {slot}), name
    assert all(p.requires_grad for p in base.parameters())  # the base itself is untouched


def test_marginal_latency_lost_in_noise_falls_back_to_the_candidate_alone(monkeypatch):
    from darc.bench import cost_check
    from darc.models import create_model

    def fake_table(modules, in_shapes, batch_size, *, device, threads, **_):  # the parent costs nothing extra
        return {cost_check.LatencyKey(n, tuple(in_shapes[n]), batch_size, threads, str(device), "float32"):
                (1.0 if "<-" in n else 7.0) for n in modules}

    monkeypatch.setattr(cost_check, "build_latency_table", fake_table)
    base = create_model("wrn16_1", in_chans=1, input_size=8, num_classes=4).eval()
    gated = gate_model(base, "branch", ["original"])
    report = assign_costs(gated, base, "latency", CostContext((1, 8, 8), context="parent"))
    assert all(entry["original"]["raw"] == 7.0 for entry in report["slots"].values())


def test_unknown_latency_context_is_refused():
    gated = gate_model(TinyResNet(), ["blocks.*.body"], example_input=SHAPE)
    with pytest.raises(ValueError, match="latency context"):
        assign_costs(gated, TinyResNet(), "latency", CostContext(SHAPE, context="block"))


def test_search_reaches_exact_zeros_and_larger_lambda_is_never_costlier(tmp_path):
    results = {lam: search(lam, tmp_path) for lam in (0.0, 0.3, 3.0, 30.0)}
    costs = [results[lam]["arch_cost"] for lam in sorted(results)]
    assert all(b <= a + 1e-12 for a, b in zip(costs, costs[1:])), costs
    zero = [g for g in results[3.0]["final_gates"] if g["gate"] == 0.0]
    assert zero, "lambda > 0 must give exact zeros within a few hundred steps"
    originals = [g for g in results[0.0]["final_gates"] if g["candidate"] == "original"]
    assert all(g["gate"] != 0 for g in originals)
    assert costs[-1] < costs[0]
    # the gate log has the initial state (t = 0), every epoch's end (t = 1..20) and nothing else here (8 steps
    # per epoch, fewer than log_gates_every)
    times = {json.loads(line)["t"] for line in (tmp_path / "lam3.0" / "gates.jsonl").read_text().splitlines()}
    assert times == set(range(0, 21))
    assert (tmp_path / "lam3.0" / "materialized" / "architecture.json").exists()


def test_search_rerun_with_other_inputs_starts_afresh(tmp_path):
    out = tmp_path / "run"
    torch.manual_seed(0)
    first = run_search(TinyResNet(), bundle(), cfg(1.0, epochs=2), out, progress=False)
    torch.manual_seed(0)
    again = run_search(TinyResNet(), bundle(), cfg(1.0, epochs=2), out, progress=False)
    assert again["metrics"] == first["metrics"]  # same inputs: the finished search is reused as it is
    with pytest.warns(UserWarning, match="other inputs"):
        run_search(TinyResNet(), bundle(), cfg(2.0, epochs=2), out, progress=False)
    log = [json.loads(line) for line in (out / "gates.jsonl").read_text().splitlines()]
    assert [r["t"] for r in log if r["slot"] == "blocks.0.body" and r["candidate"] == "original"] == [0, 1, 2]
    assert json.loads((out / "search.json").read_text())["lam"] == 2.0


def _candidate_l2(slot) -> float:
    return float(sum(p.pow(2).sum() for p in slot.candidates[0].parameters()))


def test_rescaling_loophole_is_closed_by_candidate_weight_decay():
    """alpha * B(x) is unchanged when alpha -> alpha/s and B's last BN grows by s.

    Without decay on the candidate the gate penalty can be driven to 0 for free; with decay on
    every candidate weight (BN included) the penalised objective has a floor above the task loss.
    """
    torch.manual_seed(0)
    gated = gate_model(TinyResNet(), ["blocks.*.body"], ["original"], example_input=SHAPE)
    assign_costs(gated, TinyResNet(), "params", CostContext(SHAPE))
    slot = gated_slots(gated)["blocks.0.body"]
    x = torch.randn(4, 8, 16, 16)
    lam, wd = 1.0, 5e-4
    gated.eval()
    ref = slot(x).detach()
    bn = slot.candidates[0][-1]

    def objective(s: float, decay: float) -> float:
        with torch.no_grad():
            slot.gate.mul_(1 / s)
            bn.weight.mul_(s)
            bn.bias.mul_(s)
            assert torch.allclose(slot(x), ref, rtol=1e-4, atol=1e-5)  # the function is unchanged
            value = lam * float((slot.cost * slot.gate.abs()).sum()) + decay / 2 * _candidate_l2(slot)
            slot.gate.mul_(s)
            bn.weight.mul_(1 / s)
            bn.bias.mul_(1 / s)
        return value

    scales = [10.0 ** k for k in range(0, 5)]
    no_decay = [objective(s, 0.0) for s in scales]
    assert no_decay[-1] < 1e-3 * no_decay[0]  # the loophole: penalty dodged by rescaling
    with_decay = [objective(s, wd) for s in scales]
    assert with_decay[-1] > with_decay[0]  # with decay, rescaling far costs more than it saves
    assert min(with_decay) > 1e-3 * with_decay[0]  # and the objective keeps a floor


def test_penalised_training_shrinks_the_effective_branch_output(tmp_path):
    """Under the penalty ||alpha * B(x)|| falls, not only |alpha|."""
    torch.manual_seed(0)
    data = bundle()
    base = TinyResNet()
    gated0 = gate_model(base, ["blocks.*.body"], ["original"], example_input=SHAPE)
    x = torch.stack([data.train[i][0] for i in range(32)])

    def effective(model: nn.Module) -> float:
        model.eval()
        out = {}
        slot = gated_slots(model)["blocks.2.body"]
        h = slot.register_forward_hook(lambda m, i, o: out.setdefault("y", o))
        with torch.no_grad():
            model(x)
        h.remove()
        return float(out["y"].norm())

    before = effective(gated0)
    c = cfg(30.0, epochs=10, candidates=["original"])
    run_search(base, data, c, tmp_path / "s", progress=False)
    from darc.materialize import load_materialized

    after_model = load_materialized(tmp_path / "s" / "materialized" / "architecture.json",
                                    tmp_path / "s" / "materialized" / "weights.pt", base_model=TinyResNet())
    slot_module = after_model.get_submodule("blocks.2.body")
    after_model.eval()
    out = {}
    h = slot_module.register_forward_hook(lambda m, i, o: out.setdefault("y", o))
    with torch.no_grad():
        after_model(x)
    h.remove()
    assert float(out["y"].norm()) < 0.5 * before
    assert not math.isnan(before)
    assert architecture_cost  # imported API stays available


def _plain(out_dir, base_model):
    from darc.materialize import load_materialized

    mat = out_dir / "materialized"
    return load_materialized(mat / "architecture.json", mat / "weights.pt", base_model=base_model)


@pytest.mark.parametrize("weights", ["frozen", "train"])
def test_frozen_weights_search_learns_only_the_gates(weights, tmp_path):
    """``weights: frozen``: the search moves the gates and nothing else (the stem and the head keep the
    base's values exactly); ``train`` moves them. Afterwards every parameter requires grad again."""
    torch.manual_seed(0)
    base = TinyResNet()
    before = {k: v.clone() for k, v in base.state_dict().items()}
    summary = run_search(base, bundle(), cfg(1.0, epochs=3, weights=weights), tmp_path / weights, progress=False)
    assert all(p.requires_grad for p in base.parameters())
    after = _plain(tmp_path / weights, TinyResNet()).state_dict()
    fixed = [k for k in before if k.startswith(("stem.0.weight", "stem.1.weight", "stem.1.bias", "head."))]
    assert fixed
    same = [torch.equal(before[k], after[k]) for k in fixed]
    assert all(same) if weights == "frozen" else not any(same)
    log = [json.loads(line) for line in (tmp_path / weights / "gates.jsonl").read_text().splitlines()]
    start = {(r["slot"], r["candidate"]): r["gate"] for r in log if r["t"] == 0}
    final = {(g["slot"], g["candidate"]): g["gate"] for g in summary["final_gates"]}
    assert any(final[k] != start[k] for k in start), "the gates must have learned"


def test_frozen_weights_search_survives_every_gate_reaching_zero(tmp_path):
    """With the weights frozen, once every gate is zero nothing on the loss's path learns: the search goes
    on (no backward) and materialises a network of shortcuts."""
    torch.manual_seed(0)
    c = cfg(1000.0, epochs=2, weights="frozen", candidates=["original"])
    summary = run_search(TinyResNet(), bundle(), c, tmp_path / "s", progress=False)
    assert all(g["gate"] == 0.0 for g in summary["final_gates"])


def test_unknown_search_weights_mode_is_refused():
    with pytest.raises(ValueError, match="weights must be one of"):
        SearchConfig(weights="half")


LAM_SOME_DROPPED = 3.0  # on this net: one slot dropped, two kept with shrunk gates (0.63, 0.08)


def test_rebuilt_handoff_keeps_the_decisions_and_hands_over_the_starting_network(tmp_path):
    """``handoff: rebuilt``: the same search decides the same slots as ``searched``, but the network handed on
    is the one the search started from (weights and batch-norm statistics of the base, which here trained
    during the search) with each kept candidate at full strength (gate 1), not shrunk."""
    runs = {}
    for handoff in ("searched", "rebuilt"):
        torch.manual_seed(0)
        base = TinyResNet()
        before = {k: v.clone() for k, v in base.state_dict().items()}
        c = cfg(LAM_SOME_DROPPED, epochs=3, weights="train", candidates=["original"], handoff=handoff)
        runs[handoff] = (run_search(base, bundle(), c, tmp_path / handoff, progress=False), before)
    (searched, _), (rebuilt, before) = runs["searched"], runs["rebuilt"]
    assert rebuilt["kept"] == searched["kept"]
    kept = list(rebuilt["kept"].values())
    assert [] in kept and ["original"] in kept, "the test needs a lambda that drops some slots and keeps others"
    assert rebuilt["final_gates"] == searched["final_gates"]  # the search's own gates are what is recorded
    assert any(0 < g["gate"] < 0.9 for g in rebuilt["final_gates"]), "the penalty shrank the kept gates"
    arch = json.loads((tmp_path / "rebuilt" / "materialized" / "architecture.json").read_text())
    assert {k["gate"] for s in arch["slots"] for k in s["kept"]} == {1.0}
    assert arch["search"]["handoff"] == "rebuilt"
    state = _plain(tmp_path / "rebuilt", TinyResNet()).state_dict()
    assert state and all(torch.equal(v, before[k]) for k, v in state.items())  # running statistics too
    trained = _plain(tmp_path / "searched", TinyResNet()).state_dict()
    assert not torch.equal(trained["stem.1.running_mean"], before["stem.1.running_mean"])


def test_unknown_handoff_is_refused_and_the_reference_and_sss_hand_on_what_they_trained():
    from darc.experiment import SEARCH_METHODS

    with pytest.raises(ValueError, match="handoff must be one of"):
        SearchConfig(handoff="base")
    for method in ("reference", "sss"):
        c = SearchConfig(weights="frozen", handoff="rebuilt")
        SEARCH_METHODS.create(method, c)
        assert (c.weights, c.handoff) == ("train", "searched")


def _materialized_state(run_dir):
    return torch.load(run_dir / "materialized" / "weights.pt", weights_only=True)


def test_a_search_from_the_shared_gated_start_is_the_search_that_distills_itself(tmp_path, monkeypatch):
    """``darc gate`` once per seed, then every lambda's search from it: the same gates, decisions and
    materialised weights (distillation included) as a search that gates and distills itself; a start made
    from another seed or other gating settings is refused by name."""
    from darc.search import load_gated_start, prepare_gated_start

    torch.manual_seed(0)
    base = TinyResNet()
    c = cfg(LAM_SOME_DROPPED, epochs=2, distill_steps=5)
    start = tmp_path / "gated" / "start.pt"
    record = prepare_gated_start(base, bundle(), c, start)
    assert start.exists() and any(e is not None for errs in record["distill_error"].values() for e in errs)
    alone = run_search(base, bundle(), c, tmp_path / "alone", progress=False)
    shared = run_search(base, bundle(), c, tmp_path / "shared", progress=False, start=start)
    assert shared["kept"] == alone["kept"] and shared["final_gates"] == alone["final_gates"]
    assert shared["distill_error"] == alone["distill_error"]
    a, s = _materialized_state(tmp_path / "alone"), _materialized_state(tmp_path / "shared")
    assert a.keys() == s.keys() and all(torch.equal(a[k], s[k]) for k in a)
    import darc.gates

    def no_distilling(*args, **kwargs):
        raise AssertionError("a search from a gated start distilled again")

    monkeypatch.setattr(darc.gates, "distill", no_distilling)
    other_lam = run_search(base, bundle(), cfg(0.5, epochs=1, distill_steps=5), tmp_path / "lam0.5", progress=False,
                           start=start)  # another lambda shares it (lambda is not a gating setting), undistilled
    assert other_lam["lam"] == 0.5
    with pytest.raises(ValueError, match="distill_steps"):
        load_gated_start(base, bundle(), cfg(1.0, distill_steps=7), start)
    reseeded = cfg(1.0, distill_steps=5)
    reseeded.train.seed = 1
    with pytest.raises(ValueError, match="seed"):
        load_gated_start(base, bundle(), reseeded, start)


def test_every_gated_start_method_gates_darcs_candidates_and_the_others_do_not():
    """The workflow shares one start among :data:`GATED_START_METHODS`: their gating settings must equal
    DARC's (else ``load_gated_start`` would refuse in the middle of a run); the reference and SSS differ."""
    from darc.config import GATED_START_METHODS
    from darc.experiment import SEARCH_METHODS
    from darc.search import gating_key

    base = TinyResNet()

    def key(method):
        c = cfg(1.0)
        SEARCH_METHODS.create(method, c)
        return gating_key(base, c)

    assert all(key(m) == key("darc") for m in GATED_START_METHODS)
    others = set(SEARCH_METHODS.list()) - set(GATED_START_METHODS)
    assert others >= {"reference", "sss"} and all(key(m) != key("darc") for m in others)


def test_a_search_without_evaluation_trains_the_same_and_reports_no_accuracy(tmp_path):
    """``train.evaluate: false`` (the default scale's search, whose network the fine-tune does not start
    from) skips the validation and test passes only: the same materialised network, no accuracy."""
    runs = {}
    for evaluate in (True, False):
        torch.manual_seed(0)
        c = cfg(LAM_SOME_DROPPED, epochs=2, distill_steps=5)
        c.train.evaluate = evaluate
        runs[evaluate] = run_search(TinyResNet(), bundle(), c, tmp_path / str(evaluate), progress=False)
    assert runs[True]["metrics"]["test_acc"] is not None
    assert runs[False]["metrics"].get("test_acc") is None and runs[False]["metrics"].get("val_acc") is None
    assert runs[False]["kept"] == runs[True]["kept"]
    a, b = _materialized_state(tmp_path / "True"), _materialized_state(tmp_path / "False")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_continuation_starts_the_next_lambda_where_the_last_search_settled(tmp_path):
    """``continuation_start``: the next lambda's search begins with the gates the previous search ended with
    (its first logged gates are those final gates, not the level start's); a gate that reached zero with
    frozen weights stays zero; an unfinished search or another gated network is refused."""
    from darc.search import continuation_start, prepare_gated_start

    torch.manual_seed(0)
    base = TinyResNet()
    c = cfg(1.0, epochs=2, distill_steps=5, weights="frozen", handoff="rebuilt")
    start = tmp_path / "start.pt"
    prepare_gated_start(base, bundle(), c, start)
    low = run_search(base, bundle(), c, tmp_path / "low", progress=False, start=start)
    warm = continuation_start(start, tmp_path / "low", tmp_path / "warm.pt")
    high_cfg = cfg(LAM_SOME_DROPPED, epochs=1, distill_steps=5, weights="frozen", handoff="rebuilt")
    high = run_search(base, bundle(), high_cfg, tmp_path / "high", progress=False, start=warm)
    def gates(run: str, when) -> dict:
        rows = [json.loads(line) for line in (tmp_path / run / "gates.jsonl").read_text().splitlines()]
        t = when(r["t"] for r in rows)
        return {(r["slot"], r["candidate"]): r["gate"] for r in rows if r["t"] == t}

    level = gates("low", min)
    assert gates("high", min) == pytest.approx(gates("low", max)) != pytest.approx(level)
    for slot, labels in low["kept"].items():
        assert labels or not high["kept"][slot]  # dropped at the lower lambda: dropped at the higher one
    with pytest.raises(FileNotFoundError, match="has not finished"):
        continuation_start(start, tmp_path / "nowhere", tmp_path / "x.pt")
