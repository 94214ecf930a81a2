"""darc.bench: the timing protocol, memory, MACs, backends, reports and the latency table.

Behaviour only, never speed (the test machine is shared). Small models, short run times.
"""

from __future__ import annotations

import functools
import importlib.util
import json

import pytest
import torch
from torch import nn

from darc.bench.backends import BACKENDS, run_backend
from darc.bench.cost_check import (
    LatencyKey,
    build_latency_table,
    cost_model_error,
    load_latency_table,
    lookup,
    predict_model_latency,
)
from darc.bench.env import ENV_KEYS
from darc.bench.latency import compare_latency, measure_latency, measure_module_latency
from darc.bench.macs import count_macs, macs_by_module
from darc.bench.memory import (
    ModelSpec,
    param_bytes,
    peak_inference_memory,
    peak_inference_memory_many,
    peak_tensor_memory,
    state_dict_bytes,
    tensor_bytes,
)
from darc.bench.report import benchmark_model, format_table, read_records, write_records

FAST = dict(min_run_time=0.02, warmup=1, min_measurements=3)
SHAPE = (1, 28, 28)


class TinyNet(nn.Module):
    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, width, 3, padding=1)
        self.bn = nn.BatchNorm2d(width)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(torch.relu(self.bn(self.conv(x)))).flatten(1))


class WideNet(nn.Module):
    """About 28 MB of conv weights at 14x14: far above RSS noise."""

    def __init__(self, width: int = 512, depth: int = 3) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, width, 3, stride=2, padding=1)
        self.body = nn.Sequential(*[nn.Conv2d(width, width, 3, padding=1) for _ in range(depth)])
        self.fc = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(self.stem(x)).mean((2, 3)))


def _has_models() -> bool:
    return importlib.util.find_spec("darc.models") is not None


# ----------------------------------------------------------------------------------------- latency


@pytest.mark.parametrize("batch_size", [1, 8])
def test_measure_latency_reports_statistics_and_environment(batch_size):
    model = TinyNet().train()
    threads_before = torch.get_num_threads()
    res = measure_latency(model, SHAPE, batch_size, threads=1, **FAST)
    assert res.median_s > 0 and res.mean_s > 0
    assert res.q25_s <= res.median_s <= res.q75_s and res.iqr_s >= 0
    assert res.n_measurements >= 3 and res.number_per_run >= 1  # min_measurements blocks
    assert res.per_sample_s == pytest.approx(res.median_s / batch_size)
    assert res.throughput_per_s == pytest.approx(batch_size / res.median_s)
    assert torch.get_num_threads() == threads_before  # restored
    assert model.training  # the caller's flag is restored
    rec = res.to_record()
    assert set(ENV_KEYS) <= set(rec)
    assert rec["batch_size"] == batch_size and rec["threads"] == 1 and rec["dtype"] == "float32"
    assert rec["channels_last"] is False and rec["input_shape"] == "1x28x28"
    assert rec["torch"] == torch.__version__ and rec["git_commit"]


def test_measure_latency_conversions_copy_the_model():
    model = TinyNet()
    res = measure_latency(model, SHAPE, 2, threads=1, channels_last=True, dtype=torch.float64, **FAST)
    assert res.median_s > 0 and res.channels_last and res.dtype == "float64"
    assert model.conv.weight.dtype == torch.float32  # the caller's model was not cast
    assert model.conv.weight.is_contiguous()


def test_adaptive_autorange():
    res = measure_latency(TinyNet(), SHAPE, 1, threads=1, autorange="adaptive", min_run_time=0.02,
                          max_run_time=0.2, warmup=1, min_measurements=3)
    assert res.median_s > 0 and res.autorange == "adaptive"
    with pytest.raises(ValueError, match="autorange"):
        measure_latency(TinyNet(), SHAPE, 1, autorange="nope", **FAST)


def test_compare_latency_equal_models_ratio_near_one():
    a, b = TinyNet(), TinyNet()
    b.load_state_dict(a.state_dict())
    ab = compare_latency(a, b, SHAPE, 1, pairs=8, threads=1, min_block_time=0.005, warmup=1)
    assert len(ab.ratios) == 8 and all(r > 0 for r in ab.ratios)
    assert ab.ratio_q25 <= ab.ratio_median <= ab.ratio_q75
    assert 0.5 < ab.ratio_median < 2.0
    assert ab.median_a_s > 0 and ab.median_b_s > 0
    rec = ab.to_record()
    assert set(ENV_KEYS) <= set(rec) and rec["pairs"] == 8 and "ratio_iqr" in rec


def test_measure_module_latency_on_a_submodule():
    res = measure_module_latency(nn.Conv2d(4, 4, 3, padding=1), (4, 8, 8), 1, threads=1, **FAST)
    assert res.median_s > 0 and res.input_shape == (4, 8, 8)


# ------------------------------------------------------------------------------------------ memory


def test_param_bytes_is_the_exact_sum_and_counts_shared_tensors_once():
    model = TinyNet()
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    parts = tensor_bytes(model)
    assert parts["parameter_bytes"] == params and parts["buffer_bytes"] == buffers
    assert param_bytes(model) == params + buffers
    assert parts["num_parameters"] == sum(p.numel() for p in model.parameters())
    assert param_bytes(model.half()) == (params + buffers - 8) // 2 + 8  # num_batches_tracked is int64

    shared = nn.Sequential(nn.Linear(8, 8, bias=False), nn.Linear(8, 8, bias=False))
    shared[1].weight = shared[0].weight
    assert param_bytes(shared) == 8 * 8 * 4


def test_state_dict_bytes_exceeds_the_raw_tensor_bytes():
    model = WideNet(width=32, depth=1)
    assert state_dict_bytes(model) >= param_bytes(model)


def test_model_spec_from_module_rebuilds_an_equal_model(tmp_path):
    model = TinyNet().eval()
    spec = ModelSpec.from_module(model, tmp_path)
    assert all(p.is_meta for p in spec.builder().parameters())  # the skeleton carries no data
    rebuilt = spec.build().eval()
    x = torch.randn(2, *SHAPE)
    torch.testing.assert_close(rebuilt(x), model(x))


def _wide_seq(width: int = 512, depth: int = 3) -> nn.Sequential:
    """About 28 MB of conv weights; torch classes only, so the probe's children import no test code."""
    convs = [nn.Conv2d(width, width, 3, padding=1) for _ in range(depth)]
    return nn.Sequential(nn.Conv2d(1, width, 3, stride=2, padding=1), *convs, nn.AdaptiveAvgPool2d(1))


def test_peak_memory_subprocess_is_larger_for_a_larger_model():
    """WRN-16-8 vs WRN-16-1 from the model zoo where it exists, else a wide vs a tiny conv net.

    One probe (a baseline child and one child per model) keeps this to three child processes. The
    small model goes in as an ``nn.Module`` (meta skeleton + state-dict file), the large one as a
    registry spec or a module.
    """
    if _has_models():
        from darc.models import create_model

        kw = dict(in_chans=1, num_classes=10, input_size=28)
        small, large = create_model("wrn16_1", **kw), create_model("wrn16_8", **kw)
        models = {"small": small, "large": ("wrn16_8", kw)}
    else:
        small, large = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()), _wide_seq()
        models = {"small": small, "large": large}
    import glob
    import tempfile

    def spec_files():
        return set(glob.glob(tempfile.gettempdir() + "/darc-mem-specs-*.pkl"))

    before = spec_files()
    res = peak_inference_memory_many(models, SHAPE, 1, "cpu", timeout=300)
    assert spec_files() == before  # the specs' file the children read is removed afterwards
    assert list(res) == ["small", "large"]
    for r in res.values():
        assert r.peak_bytes > 0 and r.baseline_bytes > 0 and r.net_bytes == r.peak_bytes - r.baseline_bytes
        assert "child" in r.method and r.threads == 1
        assert set(ENV_KEYS) <= set(r.to_record())
    extra_weights = param_bytes(large) - param_bytes(small)
    assert extra_weights > 20 * 2**20  # far above RSS noise
    assert res["large"].net_bytes > res["small"].net_bytes + extra_weights // 2


def test_peak_tensor_memory_counts_weights_and_live_activations_exactly():
    """Linear(10, 20) + ReLU at batch 4: 880 weight bytes; the linear's output (320 bytes) is alive while the
    ReLU writes its own (320): 640 at the peak. Exact, and the same on a second call."""
    net = nn.Sequential(nn.Linear(10, 20), nn.ReLU()).train()
    threads = torch.get_num_threads()
    first = peak_tensor_memory(net, (10,), 4, threads=1)
    assert first.baseline_bytes == param_bytes(net) == 880
    assert first.extra["activation_peak_bytes"] == 640 and first.net_bytes == first.peak_bytes == 880 + 640
    assert peak_tensor_memory(net, (10,), 4, threads=1).net_bytes == first.net_bytes
    assert net.training and torch.get_num_threads() == threads  # the model's mode and the threads are restored
    assert "profiler" in first.method and set(ENV_KEYS) <= set(first.to_record())


def test_peak_tensor_memory_grows_with_batch_and_width_and_repeats():
    narrow, wide = TinyNet(width=4), TinyNet(width=16)
    at = {(name, b): peak_tensor_memory(m, SHAPE, b).net_bytes
          for name, m in (("narrow", narrow), ("wide", wide)) for b in (1, 8)}
    out = 4 * 28 * 28 * 4  # bytes of the narrow conv's output at batch 1: a lower bound of what it adds
    assert at["narrow", 1] >= param_bytes(narrow) + out
    assert at["narrow", 8] > at["narrow", 1] and at["wide", 1] > at["narrow", 1] and at["wide", 8] > at["wide", 1]
    assert peak_tensor_memory(wide, SHAPE, 8).net_bytes == at["wide", 8]


@pytest.mark.skipif(not _has_models(), reason="darc.models is not written yet")
def test_benchmark_a_registry_model_with_dropped_branch():
    from darc.models import create_model

    model = create_model("wrn16_1", in_chans=1, num_classes=10, input_size=28)
    full = count_macs(model, SHAPE)
    assert model.slot_names("branch")
    block = next(m for m in model.modules() if isinstance(getattr(m, "branch", None), nn.Module))
    block.branch = None
    assert count_macs(model, SHAPE) < full
    assert measure_latency(model, SHAPE, 1, threads=1, **FAST).median_s > 0


# -------------------------------------------------------------------------------------------- MACs


@pytest.mark.parametrize("groups", [1, 2])
def test_conv_macs_formula(groups):
    c_in, c_out, k, h, w = 4, 8, 3, 9, 11
    conv = nn.Conv2d(c_in, c_out, k, stride=2, padding=1, groups=groups)
    h_out, w_out = (h + 2 - k) // 2 + 1, (w + 2 - k) // 2 + 1
    expected = c_out * h_out * w_out * c_in * k * k // groups
    assert count_macs(conv, (c_in, h, w)) == expected
    assert count_macs(conv, (c_in, h, w), batch_size=3) == 3 * expected


def test_macs_ignore_bn_relu_and_break_down_by_module():
    model = TinyNet(width=4)
    total = count_macs(model, SHAPE)
    conv = 4 * 28 * 28 * 1 * 9
    fc = 4 * 10
    assert total == conv + fc  # BN, ReLU, pooling are not counted
    per = macs_by_module(model, SHAPE)
    assert per[""] == total and per["conv"] == conv and per["fc"] == fc


# ---------------------------------------------------------------------------------------- backends


def test_onnxruntime_backend_runs_or_is_skipped_with_a_reason():
    rec = run_backend("onnxruntime", TinyNet(), SHAPE, 1, threads=1, **FAST)
    assert rec["backend"] == "onnxruntime" and set(ENV_KEYS) <= set(rec)
    if rec["status"] == "ok":
        assert rec["median_s"] > 0 and rec["max_abs_diff_vs_eager"] < 1e-4
        assert rec["onnx_exporter"] in ("torchscript", "dynamo")
    else:
        assert rec["status"] == "skipped" and rec["reason"]


def test_backend_skips_unsupported_dtype_and_rejects_unknowns():
    rec = run_backend("onnxruntime", TinyNet(), SHAPE, 1, dtype=torch.float64, threads=1, **FAST)
    assert rec["status"] == "skipped" and "float32" in rec["reason"]
    with pytest.raises(KeyError, match="registered"):
        run_backend("tensorrt-typo", TinyNet(), SHAPE, 1)
    with pytest.raises(TypeError):
        run_backend("onnxruntime", TinyNet(), SHAPE, 1, not_an_option=1)
    assert {"eager", "compile", "onnxruntime"} <= set(BACKENDS.list())


def test_compile_backend_runs_or_is_skipped_with_a_reason():
    # the "eager" dynamo backend exercises torch.compile without a slow inductor build
    rec = run_backend("compile", TinyNet(), SHAPE, 1, threads=1, compile_backend="eager", **FAST)
    assert rec["backend"] == "compile"
    if rec["status"] == "ok":
        assert rec["median_s"] > 0 and rec["compile_s"] > 0 and rec["compile_backend"] == "eager"
    else:
        assert rec["reason"]


# ----------------------------------------------------------------------------------------- reports


def test_benchmark_model_records_files_and_table(tmp_path):
    records = benchmark_model(TinyNet(), SHAPE, batch_sizes=(1, 8), threads=1, model_name="tiny",
                              backends=("onnxruntime",), **FAST)
    for r in records:
        assert set(ENV_KEYS) <= set(r), r
        assert r["model"] == "tiny" and r["threads"] == 1
    metrics = {(r["metric"], r["backend"], r["batch_size"]) for r in records}
    for bs in (1, 8):
        assert ("latency", "eager", bs) in metrics and ("macs", None, bs) in metrics
        assert ("latency", "onnxruntime", bs) in metrics and ("peak_tensor_memory", None, bs) in metrics
    assert ("param_bytes", None, None) in metrics and ("state_dict_bytes", None, None) in metrics
    lat = [r for r in records if r["metric"] == "latency" and r["backend"] == "eager"]
    assert all(r["value"] == r["median_s"] > 0 and r["unit"] == "s" for r in lat)

    csv_path, json_path = write_records(records, tmp_path / "bench" / "tiny.csv")
    assert csv_path.name == "tiny.csv" and json_path.name == "tiny.json"
    assert csv_path.read_text().splitlines()[0].startswith("model,metric,backend,batch_size")
    assert len(read_records(json_path)) == len(records)
    assert json.loads(json_path.read_text())[0]["metric"] == "num_parameters"
    assert not list(tmp_path.rglob("*.tmp"))

    table = format_table(records)
    assert "latency" in table and "param_bytes" in table and table.count("\n") == len(records) + 1


# ----------------------------------------------------------------------------------- latency table


def test_latency_table_round_trip_prediction_and_error(tmp_path):
    modules = {"conv": nn.Conv2d(4, 4, 3, padding=1), "relu": nn.ReLU()}
    shapes = {"conv": (4, 8, 8), "relu": (4, 8, 8)}
    path = tmp_path / "table.json"
    table = build_latency_table(modules, shapes, 1, threads=1, path=path, **FAST)
    assert set(k.module for k in table) == {"conv", "relu"} and all(v > 0 for v in table.values())
    key = next(iter(table))
    assert isinstance(key, LatencyKey) and key == ("conv", (4, 8, 8), 1, 1, "cpu", "float32")
    assert load_latency_table(path) == table
    saved = json.loads(path.read_text())
    assert saved["environment"]["threads"] == 1 and saved["entries"][0]["description"].startswith("Conv2d")

    predicted = predict_model_latency(table, ["conv", "relu"])
    assert predicted == pytest.approx(sum(table.values()))
    assert predict_model_latency(table, ["conv"], batch_size=1, dtype=torch.float32) == table[key]
    assert cost_model_error(1.2, 1.0) == pytest.approx(0.2)
    assert cost_model_error(0.5, 1.0) == pytest.approx(-0.5)

    table[key._replace(batch_size=8)] = 1.0
    with pytest.raises(KeyError, match="2 entries"):
        lookup(table, "conv")
    assert lookup(table, "conv", batch_size=8) == 1.0
    with pytest.raises(KeyError, match="no entry"):
        lookup(table, "missing")


def test_latency_table_against_a_reference_stores_ratios(tmp_path):
    torch.manual_seed(0)
    small, big = nn.Conv2d(4, 4, 1), nn.Sequential(*[nn.Conv2d(4, 4, 3, padding=1) for _ in range(4)])
    path = tmp_path / "table.json"
    table = build_latency_table({"small": small}, {"small": (4, 8, 8)}, 1, threads=1, path=path,
                                reference=("big", big, (4, 8, 8)), pairs=4)
    assert {k.module for k in table} == {"small", "big"}
    t_small, t_big = lookup(table, "small"), lookup(table, "big")
    assert 0 < t_small < t_big
    entries = {e["module"]: e for e in json.loads(path.read_text())["entries"]}
    assert entries["big"]["ratio_to_reference"] == 1.0
    assert entries["small"]["reference"] == "big"
    assert entries["small"]["median_s"] == pytest.approx(entries["small"]["ratio_to_reference"] * t_big)
    assert load_latency_table(path) == table
    # a second measurement into the same file keeps the entries it does not replace
    more = build_latency_table({"other": nn.Conv2d(4, 4, 3, padding=1)}, {"other": (4, 8, 8)}, 1, threads=1,
                               path=path, reference=("big", big, (4, 8, 8)), pairs=2)
    entries = {e["module"]: e for e in json.loads(path.read_text())["entries"]}
    assert set(entries) == {"small", "big", "other"} and "ratio_to_reference" in entries["small"]
    assert load_latency_table(path) == {**table, **more}


def test_latency_table_needs_every_shape():
    with pytest.raises(KeyError, match="no input shape"):
        build_latency_table({"conv": nn.Conv2d(1, 1, 1)}, {}, 1)


# -------------------------------------------------------------------------------------------- CUDA


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_latency_and_peak_memory():
    res = measure_latency(TinyNet(), SHAPE, 8, device="cuda", **FAST)
    assert res.median_s > 0 and res.device.startswith("cuda")
    wide = peak_inference_memory(WideNet(), SHAPE, 1, "cuda")
    tiny = peak_inference_memory(functools.partial(TinyNet), SHAPE, 1, "cuda")
    assert wide.net_bytes >= param_bytes(WideNet()) > tiny.net_bytes > 0
    exact = peak_tensor_memory(WideNet(), SHAPE, 1, "cuda")
    assert exact.net_bytes >= param_bytes(WideNet()) and "cuda" in exact.method
    assert "cuda" in wide.to_record()["device"]


def test_package_exports_resolve():
    import darc.bench

    for name in darc.bench.__all__:
        assert getattr(darc.bench, name) is not None
    with pytest.raises(AttributeError):
        darc.bench.not_a_name  # noqa: B018


def test_architecture_signature_ignores_weights_and_sees_every_shape_and_setting():
    from darc.bench import architecture_signature

    def net(stride=1, width=4):
        return nn.Sequential(nn.Conv2d(3, width, 3, stride=stride, padding=1), nn.BatchNorm2d(width), nn.ReLU())

    torch.manual_seed(0)
    a, b = net(), net()
    assert not torch.equal(a[0].weight, b[0].weight)
    assert architecture_signature(a) == architecture_signature(b)
    assert architecture_signature(net(stride=2)) != architecture_signature(a)
    assert architecture_signature(net(width=5)) != architecture_signature(a)
    assert architecture_signature(nn.Sequential(nn.Conv2d(3, 4, 3, stride=1, padding=1), nn.BatchNorm2d(4),
                                                nn.GELU())) != architecture_signature(a)
