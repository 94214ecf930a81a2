"""darc.train: exact resume after a kill, checkpoints, logs, NaN handling, optimiser groups, schedules."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch
from torch import nn

from darc.data import CropFlip, DatasetBundle, TensorImageDataset, get_dataset
from darc.io import CheckpointError, fingerprint
from darc.train import (
    CHECKPOINT,
    SCHEDULERS,
    NonFiniteLossError,
    TrainConfig,
    build_optimizer,
    evaluate,
    fit,
    load_checkpoint,
    lr_lambda,
    rng_state,
    seed_everything,
    set_rng_state,
    train_one_epoch,
)
from darc.train.smoke_ddp import tiny_net


class Killed(Exception):
    """Stands in for SIGKILL: raised from a callback mid-epoch."""


def augmented_bundle(n_train: int = 96, n_test: int = 32) -> DatasetBundle:
    """Synthetic uint8 images with the real crop/flip augmentation path (class = brightness band)."""
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (n_train + n_test,), generator=g)
    x = (torch.rand((n_train + n_test, 1, 8, 8), generator=g) * 60 + y.view(-1, 1, 1, 1) * 90).to(torch.uint8)
    mean, std = (0.5,), (0.3,)
    train = TensorImageDataset(x[:n_train], y[:n_train], mean, std, CropFlip(8, 2), seed=0)
    test = TensorImageDataset(x[n_train:], y[n_train:], mean, std, None)
    meta = get_dataset("synthetic", input_shape=(1, 8, 8), num_classes=3, n_train=1, n_test=1).meta
    return DatasetBundle(train, test, meta)


def recipe(**kw) -> TrainConfig:
    base = dict(epochs=3, batch_size=16, lr=0.1, weight_decay=5e-4, no_wd_on_bn_bias=True, schedule="cosine",
                warmup_epochs=0.5, mixup_alpha=0.2, label_smoothing=0.1, checkpoint_every_steps=2, seed=0)
    base.update(kw)
    return TrainConfig(**base)


def new_model() -> nn.Module:
    seed_everything(0)
    return tiny_net(in_ch=1, num_classes=3)


def run(out, cfg, kill_at=None, device="cpu", **kw):
    def on_step(epoch, step, stats):
        if kill_at is not None and (epoch, step) == kill_at:
            raise Killed

    model = new_model()
    res = fit(model, augmented_bundle(), cfg, out, on_step=on_step, progress=False, device=device, **kw)
    return model, res


def rows(path):
    drop = {"seconds", "img_per_s", "epoch_seconds"}  # timings differ between runs
    return [{k: v for k, v in json.loads(line).items() if k not in drop} for line in open(path)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref")
    model, res = run(out, recipe())
    return out, model.state_dict(), res


@pytest.mark.parametrize("kill_at", [(1, 3), (2, 4), (0, 1)], ids=["between-ckpts", "on-ckpt", "before-any"])
def test_killed_and_resumed_equals_uninterrupted(reference, tmp_path, kill_at):
    ref_dir, ref_state, ref_res = reference
    with pytest.raises(Killed):
        run(tmp_path, recipe(), kill_at=kill_at)
    model, res = run(tmp_path, recipe())  # a fresh process would build a fresh model, then resume
    epoch, step = kill_at
    expected = None if (epoch, step) == (0, 1) else {"epoch": epoch, "step_in_epoch": step - step % 2}
    assert res["resumed_from"] == expected
    state = model.state_dict()
    assert all(torch.equal(state[k], ref_state[k]) for k in ref_state)
    assert rows(tmp_path / "log.jsonl") == rows(ref_dir / "log.jsonl")


def test_cpu_bfloat16_channels_last_resume(reference, tmp_path):
    """CPU autocast to bfloat16 in NHWC: a killed run resumes to the uninterrupted one exactly, and the
    training really ran in bfloat16 (its weights differ from the float32 run's)."""
    cfg = recipe(amp=True, amp_dtype="bfloat16", channels_last=True)
    ref, _ = run(tmp_path / "ref", cfg)
    with pytest.raises(Killed):
        run(tmp_path / "cut", cfg, kill_at=(1, 3))
    model, res = run(tmp_path / "cut", cfg)
    assert res["resumed_from"] == {"epoch": 1, "step_in_epoch": 2}
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    state, ref_state = model.state_dict(), ref.state_dict()
    assert all(torch.equal(state[k], ref_state[k]) for k in ref_state)
    fp32_state = reference[1]
    assert not all(torch.equal(state[k], fp32_state[k]) for k in fp32_state)
    assert math.isfinite(res["metrics"]["test_loss"])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("amp_dtype", ["bfloat16", "float16"])
def test_cuda_amp_channels_last_resume(tmp_path, amp_dtype):
    cfg = recipe(amp=True, amp_dtype=amp_dtype, channels_last=True, deterministic=True)
    try:
        ref, _ = run(tmp_path / "ref", cfg, device="cuda")
        with pytest.raises(Killed):
            run(tmp_path / "cut", cfg, kill_at=(1, 3), device="cuda")
        model, res = run(tmp_path / "cut", cfg, device="cuda")
    finally:
        torch.use_deterministic_algorithms(False)
    assert res["resumed_from"] == {"epoch": 1, "step_in_epoch": 2}
    assert next(model.parameters()).is_cuda
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    state, ref_state = model.state_dict(), ref.state_dict()
    assert all(torch.equal(state[k], ref_state[k]) for k in ref_state)
    ck = load_checkpoint(tmp_path / "cut" / CHECKPOINT)
    assert (ck["scaler"] is not None) == (amp_dtype == "float16") and len(ck["rng"]["cuda"]) >= 1
    assert math.isfinite(res["metrics"]["test_loss"])


def test_outputs_checkpoint_and_logs(reference):
    out, state, res = reference
    ck = torch.load(out / CHECKPOINT, weights_only=True)
    assert ck["epoch"] == 3 and ck["step_in_epoch"] == 0 and ck["config"]["epochs"] == 3
    for key in ("model", "optimizer", "scheduler", "scaler", "metrics", "rng"):
        assert key in ck
    assert isinstance(ck["rng"]["torch"], torch.ByteTensor) and isinstance(ck["rng"]["python"], list)
    assert ck["metrics"] == res["metrics"] and len(ck["history"]) == 3
    weights = torch.load(res["paths"]["weights"], weights_only=True)
    assert all(torch.equal(weights[k], state[k]) for k in state)
    lines = [json.loads(x) for x in open(res["paths"]["log_jsonl"])]
    table = list(csv.DictReader(open(res["paths"]["log_csv"])))
    assert [r["epoch"] for r in lines] == [1, 2, 3] and len(table) == 3
    for col in ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds", "img_per_s"):
        assert col in table[0]
    assert lines[-1]["test_acc"] > 0.6  # the three brightness bands are learnable
    summary = json.load(open(res["paths"]["metrics"]))
    assert summary["metrics"]["test_acc"] == res["metrics"]["test_acc"] and "environment" in summary


def test_finished_run_is_not_retrained(reference):
    out, state, res = reference
    model, again = run(out, recipe())
    assert again["epochs_run"] == 0 and again["metrics"] == res["metrics"]
    assert all(torch.equal(model.state_dict()[k], state[k]) for k in state)


def test_checkpoint_from_other_inputs_is_not_resumed(tmp_path):
    cfg = recipe(epochs=1)
    _, first = run(tmp_path, cfg, fingerprint="inputs-a")
    _, same = run(tmp_path, cfg, fingerprint="inputs-a")
    assert same["epochs_run"] == 0  # same inputs: the finished run is reused
    with pytest.warns(UserWarning, match="other inputs"):
        _, other = run(tmp_path, cfg, fingerprint="inputs-b")
    assert other["resumed_from"] is None and other["epochs_run"] == 1
    assert load_checkpoint(tmp_path / "checkpoint.pt")["fingerprint"] == "inputs-b"


def test_fingerprint_tracks_values_and_weights():
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    assert fingerprint({"lr": 0.1}, a) == fingerprint({"lr": 0.1}, a)
    assert fingerprint({"lr": 0.1}, a) != fingerprint({"lr": 0.2}, a)
    assert fingerprint({"lr": 0.1}, a) != fingerprint({"lr": 0.1}, b)


def test_nonfinite_loss_stops_and_keeps_checkpoint(tmp_path):
    run(tmp_path, recipe(epochs=1))
    before = (tmp_path / CHECKPOINT).read_bytes()
    calls = []

    def nan_after_two(model):
        calls.append(1)
        return torch.tensor(float("nan") if len(calls) > 2 else 0.0)

    with pytest.raises(NonFiniteLossError, match="(?i)lower the learning rate") as err:
        run(tmp_path, recipe(epochs=2, checkpoint_every_steps=None), extra_loss=nan_after_two)
    assert "untouched" in str(err.value) and "check the data" in str(err.value)
    assert (tmp_path / CHECKPOINT).read_bytes() == before
    ck = load_checkpoint(tmp_path / CHECKPOINT)
    assert (ck["epoch"], ck["step_in_epoch"]) == (1, 0)
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())


def test_hooks_and_extra_param_groups(tmp_path):
    model = new_model()
    head = model[-1]
    opt = build_optimizer(model, recipe(), extra_param_groups=[
        {"params": head.parameters(), "lr": 0.01, "momentum": 0.0, "weight_decay": 0.0, "name": "head"}])
    names = [g["name"] for g in opt.param_groups]
    assert names == ["decay", "no_decay", "head"]
    head_ids = {id(p) for p in head.parameters()}
    assert not head_ids & {id(p) for g in opt.param_groups[:2] for p in g["params"]}
    assert all(p.ndim > 1 for p in opt.param_groups[0]["params"])
    seen = {"steps": 0, "epochs": []}

    def hook(o):
        assert o is opt
        seen["steps"] += 1

    cfg = recipe(epochs=2, checkpoint_every_steps=None)
    res = fit(model, augmented_bundle(), cfg, tmp_path, optimizer=opt, step_hook=hook,
              extra_loss=lambda m: 0.5 * m[-1].weight.abs().sum(),
              on_epoch_end=lambda e, m, row: seen["epochs"].append((e, m is model, row["epoch"])),
              progress=False)
    assert seen["steps"] == 12 and seen["epochs"] == [(0, True, 1), (1, True, 2)]
    assert res["metrics"]["train_penalty"] > 0
    assert opt.param_groups[2]["lr"] < 0.01  # the schedule applies to extra groups too


def test_train_one_epoch_and_evaluate_directly():
    seed_everything(0)
    b = get_dataset("synthetic", input_shape=(1, 4, 4), num_classes=3, n_train=128, n_test=64, noise=0.3)
    train = torch.utils.data.DataLoader(b.train, batch_size=16, shuffle=True)
    test = torch.utils.data.DataLoader(b.test, batch_size=32)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    steps = []
    for epoch in range(3):
        stats = train_one_epoch(model, train, opt, device="cpu", epoch=epoch, max_steps=6, progress=False,
                                on_step=lambda s, st: steps.append(s))
    assert stats.steps == 6 and steps[-1] == 6 and stats.summary()["img_per_s"] > 0
    ev = evaluate(model, test, "cpu")
    assert ev["n"] == 64 and ev["acc"] > 0.9 and ev["loss"] < 0.5


def test_schedules():
    cfg = TrainConfig(epochs=10, schedule="step", milestones=[3, 6], gamma=0.2)
    f = lr_lambda(cfg, steps_per_epoch=5)
    assert f(0) == 1 and f(14) == 1 and math.isclose(f(15), 0.2) and math.isclose(f(30), 0.04)
    cos = lr_lambda(TrainConfig(epochs=10, schedule="cosine", warmup_epochs=2), steps_per_epoch=5)
    assert math.isclose(cos(0), 0.1) and math.isclose(cos(9), 1.0) and math.isclose(cos(10), 1.0)
    assert math.isclose(cos(30), 0.5) and cos(49) < 0.01
    assert {"step", "cosine", "constant"} <= set(SCHEDULERS.list())
    with pytest.raises(KeyError, match="registered"):
        lr_lambda(TrainConfig(schedule="nope"), 5)


def test_config_and_rng_roundtrip(tmp_path):
    with pytest.raises(ValueError, match="unknown TrainConfig keys"):
        TrainConfig.from_dict({"epochs": 1, "lr_typo": 0.1})
    cfg = TrainConfig.from_dict({"epochs": 2, "milestones": [1]})
    assert cfg.milestones == (1,) and cfg.to_dict()["milestones"] == [1]
    seed_everything(3)
    torch.save(rng_state(), tmp_path / "rng.pt")
    import random

    import numpy as np

    a = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and (a[1] == b[1]).all() and a[2] == b[2]
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "bad.pt")
