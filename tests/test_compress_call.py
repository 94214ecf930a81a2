"""darc.compress (one call to a measured target) and the lambda search under it (darc.target)."""

import json

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import darc
from darc import target as T
from darc.models import create_model


def _data(n=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 8, 8, generator=g)
    y = (x.mean(dim=(1, 2, 3)) > 0).long() + 2 * (x[:, :, :4].mean(dim=(1, 2, 3)) > 0).long()
    return TensorDataset(x, y)


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    model = create_model("wrn16_1", in_chans=1, num_classes=4, input_size=8)
    loader = DataLoader(_data(), batch_size=32, shuffle=False)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    for _ in range(3):
        for x, y in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    return model.eval(), loader, DataLoader(_data(64, seed=1), batch_size=32)


def test_one_call_reaches_a_byte_target_and_reports_how(trained, tmp_path):
    model, train, val = trained
    torch.set_num_threads(1)
    result = darc.compress(model, train, target="bytes:1.5", val_loader=val, search_steps=4, finetune_steps=2,
                           lam_range=(0.1, 1000.0), max_tries=4, distill_steps=2, out_dir=tmp_path)
    rep = result.report
    assert rep["measured"]["ratio"] >= 1.5 and rep["target"] == "param_bytes:1.5"
    assert abs(rep["measured"]["cost_model_error"]) < 0.05  # the costs count parameters; the bytes buffers too
    assert not darc.gated_slots(result.model)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(model) / count(result.model) >= 1.4  # parameter bytes of float32 weights and the counts agree
    assert {"base_val_acc", "searched_val_acc", "val_acc", "recipe", "lam_path"} <= set(rep)
    assert rep["recipe"]["distill_alpha"] == 0.9 and rep["lam_path"]["tries"]
    assert (tmp_path / "result" / "architecture.json").exists() and (tmp_path / "result" / "report.json").exists()
    x = next(iter(val))[0]
    with torch.no_grad():
        out = result.model.eval()(x)
    assert not torch.allclose(out[0], out[1]), "the compressed network must still depend on its input"
    assert all(p.requires_grad for p in model.parameters()), "the caller's network is not modified"


def test_an_unreachable_target_is_an_error_that_says_what_to_do(trained):
    model, train, _ = trained
    with pytest.raises(ValueError, match="no lambda .* met param_bytes:1000.*raise lam_range"):
        darc.compress(model, train, target="bytes:1000", search_steps=2, finetune_steps=0, lam_range=(0.1, 1.0),
                      max_tries=2, distill_steps=0)


@pytest.mark.parametrize("text,expected", [
    ("latency:1.5", T.Target("latency", 1.5, 1)), ("latency@64:1.3", T.Target("latency", 1.3, 64)),
    ("bytes:3", T.Target("param_bytes", 3.0)), ("macs:2x", T.Target("macs", 2.0)), ("lam:0", T.Target("lam", 0.0)),
])
def test_targets_parse(text, expected):
    assert T.Target.parse(text) == expected


@pytest.mark.parametrize("text,match", [
    ("fast", "write metric:value"), ("latency:0.8", "ratio > 1"), ("bytes@64:2", "only latency"),
    ("speed:2", "must be one of"),
])
def test_bad_targets_are_refused(text, match):
    with pytest.raises(ValueError, match=match):
        T.Target.parse(text)


def _net(width):
    return nn.Sequential(nn.Linear(4, width), nn.Linear(width, 2))


def test_each_architecture_is_measured_once_and_a_stale_path_stops(monkeypatch):
    """Lambda below 5 keeps width 64, above it width 8: after the jump every try finds a network already
    measured; the search stops after `patience` of those instead of timing the same network again."""
    calls = []

    def fake_measure(metric, base, compressed, shape, **kw):
        calls.append(compressed[0].out_features)
        r = 64 / compressed[0].out_features
        return T.Measurement(r, r * 0.9, r * 1.1)

    monkeypatch.setattr(T, "measure", fake_measure)
    path = T.search_lambda(lambda lam: (_net(64 if lam < 5 else 8), {}), _net(64), T.Target("latency", 100.0),
                           (4,), lam_low=0.01, lam_high=100.0, max_tries=8, patience=2, log=None)
    assert calls == [64, 8] and len(path.tries) < 8
    assert path.stopped.startswith("the architecture stopped changing") and path.best is None
    assert [t.reused for t in path.tries].count(False) == 2


def test_the_smallest_lambda_that_meets_the_target_is_kept(monkeypatch):
    monkeypatch.setattr(T, "measure", lambda metric, base, c, shape, **kw: T.Measurement(
        64 / c[0].out_features, 0, 0))
    widths = {0.1: 64, 1.0: 32, 10.0: 16}

    def at(lam):
        w = next(w for cut, w in sorted(widths.items(), reverse=True) if lam >= cut) if lam >= 0.1 else 64
        return _net(w), {}

    path = T.search_lambda(at, _net(64), T.Target("param_bytes", 2.0), (4,), lam_low=0.01, lam_high=100.0,
                           max_tries=6, tolerance=0.01, log=None)
    best = path.best_try
    assert best is not None and best.ratio == 2.0 and best.lam >= 1.0
    assert all(t.lam >= best.lam for t in path.tries if t.meets_target)
    assert path.best_model()[0].out_features == 32


def _cli(*extra):
    return ["compress", "--data", "synthetic", "--val-size", "64", "--search-steps", "2", "--finetune-steps", "1",
            "--lam-range", "0.1", "1000", "--no-progress", *extra]


def test_cli_compress_a_darc_model_from_its_weights(tmp_path, capsys):
    from darc.cli import main

    model = create_model("wrn16_1", in_chans=3, num_classes=4, input_size=8)
    torch.save(model.state_dict(), tmp_path / "w.pt")
    assert main(_cli("--model", "wrn16_1", "--weights", str(tmp_path / "w.pt"), "--target", "bytes:1.3",
                     "--out", str(tmp_path / "out"))) == 0
    assert "param_bytes ratio" in capsys.readouterr().out
    report = json.loads((tmp_path / "out" / "result" / "report.json").read_text())
    assert report["measured"]["ratio"] >= 1.3 and report["target"] == "param_bytes:1.3"


@pytest.mark.parametrize("extra,match", [
    (["--model", "wrn16_1", "--target", "bytes:2"], "pass --weights PATH"),
    (["--model", "wrn16_1", "--untrained", "--target", "fast"], "write metric:value"),
    (["--model", "tv:resnet18", "--untrained", "--target", "bytes:2"], "write torchvision:NAME"),
    (["--model", "timm:no_such_net", "--untrained", "--target", "bytes:2"], "timm has no model"),
])
def test_cli_compress_refuses_bad_input_in_one_line(extra, match, tmp_path, capsys):
    from tests.test_safety_messages import cli_error

    assert match in cli_error(_cli(*extra, "--out", str(tmp_path / "o")), capsys)


def test_cli_compress_refuses_weights_of_another_network(tmp_path, capsys):
    from tests.test_safety_messages import cli_error

    torch.save(create_model("wrn16_1", in_chans=3, num_classes=10, input_size=8).state_dict(), tmp_path / "w.pt")
    line = cli_error(_cli("--model", "wrn16_1", "--weights", str(tmp_path / "w.pt"), "--target", "bytes:2",
                          "--out", str(tmp_path / "o")), capsys)
    assert "another shape" in line and "another network" in line


def test_one_call_on_a_torchvision_resnet_narrows_or_drops_its_branches(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=4).eval()
    g = torch.Generator().manual_seed(0)
    ds = TensorDataset(torch.randn(64, 3, 16, 16, generator=g), torch.randint(0, 4, (64,), generator=g))
    result = darc.compress(model, DataLoader(ds, batch_size=16), target="bytes:1.3", search_steps=3,
                           finetune_steps=1, lam_range=(1.0, 1000.0), max_tries=4, distill_steps=0)
    d = result.report["decisions"]
    assert d["replaced"] + d["dropped"] >= 1 and result.report["measured"]["ratio"] >= 1.3
    assert all(n.endswith(".branch") for n in result.report["kept"])
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        out = result.model.eval()(x)
    assert out.shape == (2, 4) and not torch.allclose(out[0], out[1])


def test_a_lambda_whose_network_is_refused_counts_as_too_far(monkeypatch):
    from darc.materialize import UnsafeRemovalError

    monkeypatch.setattr(T, "measure", lambda metric, base, c, shape, **kw: T.Measurement(
        64 / c[0].out_features, 0, 0))

    def at(lam):
        if lam > 5:
            raise FloatingPointError("non-finite loss")
        if lam > 0.2:
            raise UnsafeRemovalError("slot 'x' lost every candidate")
        return _net(32 if lam > 0.05 else 64), {}

    path = T.search_lambda(at, _net(64), T.Target("param_bytes", 2.0), (4,), lam_low=0.01, lam_high=10000.0,
                           max_tries=6, tolerance=0.01, log=None)
    assert "non-finite" in path.tries[0].info["refused"]  # lambda 10: a diverged search, also too far
    first = path.tries[1]
    assert first.signature == "refused" and "lost every candidate" in first.info["refused"]
    assert path.tries[2].lam < first.lam  # the bisection went down
    assert path.best_try is not None and path.best_try.ratio == 2.0


def test_cli_compress_takes_named_slots(tmp_path, capsys):
    from darc.cli import main

    with pytest.warns(UserWarning, match="untrained"):
        rc = main(_cli("--model", "wrn16_1", "--untrained", "--target", "lam:0.01", "--slots",
                       "stages.0.0.branch, stages.2.*.branch", "--out", str(tmp_path / "out")))
    assert rc == 0
    report = json.loads((tmp_path / "out" / "result" / "report.json").read_text())
    assert sorted(report["kept"]) == ["stages.0.0.branch", "stages.2.0.branch", "stages.2.1.branch"]


def _ab(median, q25, q75, pairs):
    from types import SimpleNamespace

    return SimpleNamespace(ratio_median=median, ratio_q25=q25, ratio_q75=q75, median_a_s=0.002, median_b_s=0.001,
                           pairs=pairs, threads=1)


@pytest.mark.parametrize("readings,attempts,noisy", [
    ([(1.6, 0.5, 2.6), (1.2, 1.15, 1.25)], 2, False),  # a busy reading is measured again, and the calm one kept
    ([(1.6, 0.5, 2.6)] * 3, 3, True),  # busy every time: reported as noisy, with a warning
])
def test_a_noisy_latency_ratio_is_measured_again(monkeypatch, readings, attempts, noisy):
    import darc.bench.latency as L

    calls = []

    def fake(a, b, shape, batch, *, pairs, **kw):
        calls.append(pairs)
        return _ab(*readings[len(calls) - 1], pairs)

    monkeypatch.setattr(L, "compare_latency", fake)
    if noisy:
        with pytest.warns(UserWarning, match="the machine is busy"):
            m = T.measure("latency", _net(4), _net(4), (4,), pairs=10)
    else:
        m = T.measure("latency", _net(4), _net(4), (4,), pairs=10)
    assert m.detail["attempts"] == attempts and m.detail["noisy"] == noisy
    assert calls == [10, 20, 40][:attempts]
    assert (m.ratio, m.q25) == ((1.6, 0.5) if noisy else (1.2, 1.15))
