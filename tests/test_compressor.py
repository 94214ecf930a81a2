"""darc.Compressor: one object carries gate -> price -> search steps -> compress, and refuses misuse."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import darc
from darc.compressor import CompressorStateError
from darc.toy import TOY_CANDIDATES, TOY_SLOTS, toy_inputs, toy_net


def _compressor(lam=1.0, **kw):
    torch.manual_seed(0)
    net = toy_net(["half", "zero", "full"], width=8)
    x = toy_inputs(n=64, size=8)
    opts = {"slots": TOY_SLOTS, "candidates": TOY_CANDIDATES, "distill_steps": 5, **kw}
    return net, x, darc.Compressor(net, lam=lam, calibration=x, **opts)


def _search(comp, x, target_net, steps=20, lr=0.05):
    opt = torch.optim.SGD(comp.param_groups(lr=lr), lr=lr, momentum=0.9)
    with torch.no_grad():
        target = target_net(x)
    for i in range(steps):
        idx = torch.arange(i * 16, i * 16 + 16) % len(x)
        loss = F.mse_loss(comp.model(x[idx]), target[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        comp.step(opt)
    return opt


def test_a_search_through_the_object_gives_a_plain_network_that_saves_and_loads(tmp_path):
    net, x, comp = _compressor(lam=5.0)
    _search(comp, x, net)
    result = comp.compress()
    assert not darc.gated_slots(result.model), "the result must be a plain network"
    assert result.report["steps"] == 20 and set(result.report["kept"]) == {f"blocks.{i}.body" for i in range(3)}
    assert result.architecture["search"]["lam"] == 5.0
    assert result.report["output_max_abs_difference"] < 1e-4  # the plain network computes what the gated one did
    result.model.eval()
    with torch.no_grad():
        expected = result.model(x[:8])
    assert all(p.requires_grad for p in result.model.parameters()), "the frozen search must not freeze the result"
    result.save(tmp_path / "out")
    again = darc.CompressionResult.load(tmp_path / "out", base_model=toy_net(["full"] * 3, width=8))
    with torch.no_grad():
        assert torch.allclose(again.model.eval()(x[:8]), expected, atol=1e-5)
    assert again.report["kept"] == result.report["kept"]


def test_frozen_weights_move_only_the_gates():
    net, x, comp = _compressor(lam=1.0)
    before = {n: p.detach().clone() for n, p in comp.model.named_parameters() if not n.endswith(".gate")}
    gates = {n: s.gate.detach().clone() for n, s in darc.gated_slots(comp.model).items()}
    _search(comp, x, net, steps=5)
    for n, p in comp.model.named_parameters():
        if not n.endswith(".gate"):
            assert torch.equal(p, before[n]), n
    assert any(not torch.equal(s.gate, gates[n]) for n, s in darc.gated_slots(comp.model).items())


def test_compress_before_any_step_is_refused():
    _, _, comp = _compressor()
    with pytest.raises(CompressorStateError, match="step"):
        comp.compress()


def test_the_procedure_runs_once():
    net, x, comp = _compressor()
    opt = _search(comp, x, net, steps=2)
    comp.compress()
    with pytest.raises(CompressorStateError, match="already"):
        comp.compress()
    with pytest.raises(CompressorStateError, match="new one"):
        comp.step(opt)


@pytest.mark.parametrize("make", [
    lambda comp: torch.optim.Adam(comp.param_groups(lr=0.01), lr=0.01),
    lambda comp: torch.optim.SGD([{**g, "momentum": 0.9} for g in comp.param_groups(lr=0.01)], lr=0.01),
    lambda comp: torch.optim.SGD([{"params": [p for g in comp.param_groups(lr=0.01) for p in g["params"]]}],
                                 lr=0.01),
    lambda comp: torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.01),
], ids=["adam", "gate-momentum", "no-gate-group", "no-gates"])
def test_an_optimizer_that_breaks_the_soft_threshold_is_refused(make):
    _, _, comp = _compressor()
    with pytest.raises(ValueError, match="param_groups"):
        comp.step(make(comp))


def test_no_calibration_data_is_refused():
    with pytest.raises(ValueError, match="calibration"):
        darc.Compressor(toy_net(["half"], width=8), lam=1.0, calibration=None, slots=TOY_SLOTS)


def test_a_misspelt_alternative_option_is_refused():
    with pytest.raises(ValueError, match="ratoi"):
        darc.Compressor(toy_net(["half"], width=8), lam=1.0, calibration=toy_inputs(n=8, size=8), slots=TOY_SLOTS,
                        candidates=["original", {"alternative": "narrow", "ratoi": 0.25}])


class _LinearNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Linear(6, 6)
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        return self.head(torch.relu(x + self.body(x)))


def test_a_candidate_that_does_not_apply_is_skipped_with_a_warning_that_says_why():
    with pytest.warns(UserWarning, match=r"narrow\(ratio=0.5\) on body \(narrow needs"):
        comp = darc.Compressor(_LinearNet(), lam=1.0, calibration=torch.randn(16, 6), slots="body",
                               candidates=["original", {"alternative": "narrow", "ratio": 0.5}, "identity"])
    assert list(comp.report["skipped_candidates"]["body"]) == ["narrow(ratio=0.5)"]
    with pytest.raises(darc.IncompatibleAlternativeError):
        darc.Compressor(_LinearNet(), lam=1.0, calibration=torch.randn(16, 6), slots="body", strict=True,
                        candidates=["original", {"alternative": "narrow", "ratio": 0.5}])


def test_calibration_comes_from_a_dataset_or_a_loader():
    x = torch.randn(40, 6)
    ds = torch.utils.data.TensorDataset(x, torch.zeros(40, dtype=torch.long))
    assert torch.equal(darc.compressor.calibration_batch(ds, 10), x[:10])
    loader = torch.utils.data.DataLoader(ds, batch_size=16)
    assert torch.equal(darc.compressor.calibration_batch(loader, 20), x[:20])


def test_the_penalty_ramps_up_over_lam_warmup_steps():
    """With no gradient on the gates, step k of a ramp over R steps shrinks each gate by lr * lam * cost * k / R."""
    _, x, comp = _compressor(lam=0.5, lam_warmup_steps=4)
    opt = torch.optim.SGD(comp.param_groups(lr=0.01), lr=0.01)
    slots = darc.gated_slots(comp.model)
    start = {n: s.gate.detach().clone() for n, s in slots.items()}
    for k in range(1, 7):
        (0.0 * comp.model(x[:4]).sum()).backward()
        opt.step()
        comp.step(opt)
        shrink = 0.01 * 0.5 * sum(min(1.0, i / 4) for i in range(1, k + 1))
        for n, s in slots.items():
            expected = (start[n].abs() - shrink * s.cost).clamp_min(0) * start[n].sign()
            assert torch.allclose(s.gate.detach(), expected, atol=1e-6), (k, n)
    with pytest.raises(ValueError, match="lam_warmup_steps"):
        _compressor(lam_warmup_steps=-1)


def test_a_resumed_search_counts_the_steps_its_checkpoint_had_taken(tmp_path):
    from darc.search import _resumed_steps

    assert _resumed_steps(tmp_path, 10) == 0
    torch.save({"epoch": 1, "step_in_epoch": 5}, tmp_path / "checkpoint.pt")
    assert _resumed_steps(tmp_path, 10) == 15
