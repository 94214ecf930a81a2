"""The post-compression recipe (darc.recipe, darc.train.distill): distillation from the base, learning-rate
rewinding, the budget as a fraction of the base's images, the reference's best recipe, recipe columns."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from darc import experiment as E
from darc import recipe as R
from darc.config import ConfigError, experiment_for_seed, validate_experiment
from darc.peers import stages
from darc.peers.loading import load_finetuned
from darc.train import TrainConfig, build_optimizer, build_scheduler, fit, lr_lambda
from darc.train.distill import Distill, distillation_loss, kd_term
from darc.train.smoke_ddp import tiny_net
from tests.test_train import augmented_bundle, new_model


def test_distillation_at_alpha_0_is_cross_entropy_and_at_1_the_teacher_term():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(8, 5, generator=g), torch.randn(8, 5, generator=g)
    y = torch.randint(0, 5, (8,), generator=g)
    ce = F.cross_entropy(s, y)
    assert torch.equal(distillation_loss(ce, s, t, Distill(alpha=0.0)), ce)
    assert torch.equal(distillation_loss(ce, s, None, Distill()), ce)  # off: no teacher needed
    kl = kd_term(s, t, 4.0)
    assert torch.allclose(distillation_loss(ce, s, t, Distill(alpha=1.0, temperature=4.0)), kl)
    assert torch.allclose(distillation_loss(ce, s, t, Distill(alpha=0.25)), 0.75 * ce + 0.25 * kd_term(s, t, 4.0))
    manual = (F.softmax(t / 4, 1) * (F.log_softmax(t / 4, 1) - F.log_softmax(s / 4, 1))).sum(1).mean() * 16
    assert torch.allclose(kl, manual, atol=1e-6)
    assert float(kd_term(t, t, 2.0)) == pytest.approx(0.0, abs=1e-6)  # a student equal to its teacher
    with pytest.raises(ValueError, match="no teacher logits"):
        distillation_loss(ce, s, None, Distill(alpha=0.5))
    for bad in ({"alpha": 1.5}, {"temperature": 0}, {"alhpa": 0.5}):
        with pytest.raises(ValueError, match="distill"):
            Distill.from_value(bad)


def _teacher() -> nn.Module:
    torch.manual_seed(1)
    teacher = tiny_net(in_ch=1, num_classes=3)
    teacher.train()  # fit must put it in eval mode itself
    return teacher


def test_fit_with_distillation_sends_no_gradient_to_the_teacher_and_keeps_its_statistics(tmp_path):
    teacher = _teacher()
    before = copy.deepcopy(teacher.state_dict())
    cfg = TrainConfig(epochs=1, batch_size=16, lr=0.1, schedule="constant", distill={"alpha": 0.9}, seed=0)
    student = new_model()
    fit(student, augmented_bundle(), cfg, tmp_path / "kd", progress=False, teacher=teacher)
    assert not teacher.training
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    assert all(torch.equal(v, before[k]) for k, v in teacher.state_dict().items())  # BN statistics included
    plain = new_model()
    fit(plain, augmented_bundle(), TrainConfig(epochs=1, batch_size=16, lr=0.1, schedule="constant", seed=0),
        tmp_path / "ce", progress=False)
    assert any(not torch.equal(a, b) for a, b in zip(student.state_dict().values(), plain.state_dict().values()))


def test_fit_at_alpha_0_ignores_the_teacher_and_refuses_distillation_without_one(tmp_path):
    cfg = TrainConfig(epochs=1, batch_size=16, lr=0.1, schedule="constant", seed=0)
    with_teacher, alone = new_model(), new_model()
    teacher = _teacher()
    fit(with_teacher, augmented_bundle(), cfg, tmp_path / "a", progress=False, teacher=teacher)
    fit(alone, augmented_bundle(), cfg, tmp_path / "b", progress=False)
    assert all(torch.equal(a, b) for a, b in zip(with_teacher.state_dict().values(), alone.state_dict().values()))
    with pytest.raises(ValueError, match="no teacher"):
        fit(new_model(), augmented_bundle(), TrainConfig(epochs=1, batch_size=16, distill={"alpha": 0.5}),
            tmp_path / "c", progress=False)
    assert not (tmp_path / "c").exists()  # refused before any work


def _lrs(cfg: TrainConfig, steps_per_epoch: int) -> list[float]:
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched = build_scheduler(opt, cfg, steps_per_epoch)
    out = []
    for _ in range(cfg.epochs * steps_per_epoch):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


@pytest.mark.parametrize("warmup_epochs", [0.0, 0.5])
def test_rewound_schedule_replays_the_bases_last_steps(warmup_epochs):
    base = TrainConfig(epochs=6, batch_size=32, lr=0.1, schedule="cosine", warmup_epochs=0.5)
    base_lrs = _lrs(base, 10)  # T_base = 60 steps
    exp = {"train": base.to_dict() | {"milestones": []},
           "search": {"train": {"epochs": 1, "batch_size": 32, "max_steps_per_epoch": 2}},
           "finetune": {"epochs": 1, "batch_size": 32, "lr": 0.005, "schedule": "rewind",
                        "max_steps_per_epoch": 8, "warmup_epochs": warmup_epochs}}
    cfg = R.finetune_recipe(exp, 320)  # 10 steps per epoch on 320 images, capped at R = 8
    assert cfg.lr == base.lr and cfg.rewind_base["steps_per_epoch"] == 10
    lrs = _lrs(cfg, 8)
    warm = round(warmup_epochs * 8)
    for s, lr in enumerate(lrs):
        want = base_lrs[60 - 8 + s]  # lr(s) = base_lr(T_base - R + s)
        assert lr == pytest.approx(want * (min(1.0, (s + 1) / warm) if s < warm else 1.0), rel=1e-9)
    half = dict(exp, finetune={**exp["finetune"], "batch_size": 16, "warmup_epochs": 0.0})
    cfg16 = R.finetune_recipe(half, 320)  # half the batch: each step replays half a base step
    lrs16 = _lrs(cfg16, 8)
    assert lrs16[0] == pytest.approx(base_lrs[60 - 4]) and lrs16[2] == pytest.approx(base_lrs[60 - 3])
    with pytest.raises(ValueError, match="rewind_base"):
        lr_lambda(TrainConfig(schedule="rewind"), 5)


EXP = {
    "dataset": "synthetic", "model": "wrn10_2", "threads": 1, "validation": 32, "seeds": [0],
    "model_kwargs": {"input_size": 8},
    "train": {"epochs": 2, "batch_size": 32, "lr": 0.05, "schedule": "constant"},
    "search": {"lams": [3.0], "cost_model": "params", "calibration_samples": 16, "distill_steps": 5,
               "train": {"epochs": 1, "batch_size": 32, "lr": 0.05, "schedule": "constant",
                         "max_steps_per_epoch": 3}},
    "finetune": {"epochs": 1, "batch_size": 16, "lr": 0.01, "schedule": "constant"},
}


def test_budget_fraction_turns_into_the_stated_number_of_steps():
    exp = {**EXP, "finetune": {**EXP["finetune"], "budget": 0.25}}
    n = 1000  # a base epoch: 31 steps of 32 = 992 images, 1984 in all; the search: 3 x 32 = 96
    assert R.base_images(exp, n) == 1984 and R.darc_search_images(exp, n) == 96
    cfg = R.finetune_recipe(exp, n)  # 0.25 x 1984 = 496 after the base; the fine-tune gets 400: 25 steps of 16
    assert cfg.epochs * R.images_per_epoch(cfg, n) == 400 and (cfg.epochs, cfg.max_steps_per_epoch) == (1, 25)
    assert R.darc_images_after_base(exp, n) == 496
    peer = R.peer_recipe(exp, n)  # a peer gets the whole 496: 31 steps of 16
    assert peer.epochs * R.images_per_epoch(peer, n) == 496
    big = R.finetune_recipe({**exp, "finetune": {**exp["finetune"], "budget": 2.0}}, n)  # 3872 images: 4 epochs
    assert big.epochs * R.images_per_epoch(big, n) >= 3968 - 96 and big.epochs == 4
    with pytest.raises(ValueError, match="the search alone takes 96"):
        R.finetune_recipe({**exp, "finetune": {**exp["finetune"], "budget": 0.05}}, n)
    assert R.finetune_recipe(EXP, n).epochs == 1 and R.budget_fraction(EXP) is None  # unset: as written


def test_recipe_keys_are_validated_and_only_in_finetune():
    ok = {**EXP, "finetune": {**EXP["finetune"], "distill": {"alpha": 0.9, "temperature": 4},
                              "budget": 0.1, "reference_recipes": [{"distill": {"alpha": 0}, "lr": 0.005}]}}
    validate_experiment(ok)
    for bad in ({"finetune": {"distill": {"alpha": 2}}}, {"finetune": {"distill": {"alpah": 0.5}}},
                {"train": {"distill": {"alpha": 0.5}}}, {"finetune": {"budget": 0}},
                {"finetune": {"reference_recipes": [{"lrr": 1}]}}):
        with pytest.raises(ConfigError):
            validate_experiment({**EXP, **{k: {**EXP[k], **v} for k, v in bad.items()}})


def test_scratch_distils_when_the_finetune_does_and_sparsity_phase_never():
    kd = {**EXP, "finetune": {**EXP["finetune"], "distill": {"alpha": 0.9}}}
    assert R.scratch_recipe(kd, 1000).distill == Distill(alpha=0.9)
    assert R.scratch_recipe(EXP, 1000).distill == Distill()
    assert R.sparsity_recipe(kd, 1000).distill == Distill()
    assert R.peer_recipe(kd, 1000).distill == Distill(alpha=0.9)


@pytest.fixture(scope="module")
def kd_run(tmp_path_factory):
    """A trained base, a DARC search and a reference search, with a distilling recipe and a plain
    alternative for the reference."""
    out = tmp_path_factory.mktemp("kd")
    exp = experiment_for_seed({**EXP, "finetune": {
        **EXP["finetune"], "distill": {"alpha": 0.9, "temperature": 4.0}, "max_steps_per_epoch": 3,
        "reference_recipes": [{"distill": {"alpha": 0.0}, "lr": 0.05}]}}, 0)
    E.train_base(exp, out / "base", progress=False)
    E.search(exp, 3.0, out / "base", out / "search", progress=False)
    E.search(exp, 0.0, out / "base", out / "refsearch", progress=False, method="reference")
    return exp, out


def test_finetune_distils_from_the_base_and_records_its_recipe(kd_run, tmp_path):
    exp, out = kd_run
    res = E.finetune_search(exp, out / "search", tmp_path / "ft", progress=False)  # base: from the search's record
    assert res["recipe"] == "configured" and res["recipe_distill_alpha"] == 0.9
    assert res["recipe_distill_temperature"] == 4.0 and res["recipe_schedule"] == "constant"
    assert res["recipe_images_after_base"] == 3 * 32 + 3 * 16
    assert res["recipe_fraction_of_base"] == pytest.approx((3 * 32 + 3 * 16) / R.base_images(exp, 224))
    assert list(res["recipe_trials"]) == ["configured"]
    search = json.loads((out / "search" / "result.json").read_text())
    assert search["base"] == str(out / "base")
    no_base = {k: v for k, v in search.items() if k != "base"}
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "result.json").write_text(json.dumps(no_base))
    (tmp_path / "old" / "materialized").symlink_to(out / "search" / "materialized")
    with pytest.raises(ValueError, match="pass --base"):
        E.finetune_search(exp, tmp_path / "old", tmp_path / "ft2", progress=False)


def test_reference_takes_the_recipe_with_the_best_validation_accuracy(kd_run, tmp_path):
    exp, out = kd_run
    res = E.finetune_search(exp, out / "refsearch", tmp_path / "ref", progress=False)
    trials = res["recipe_trials"]
    assert set(trials) == {"configured", "alt0"}
    assert trials["alt0"]["train_config"]["distill"]["alpha"] == 0.0 and trials["alt0"]["train_config"]["lr"] == 0.05
    best = max(trials, key=lambda k: trials[k]["val_acc"])
    assert res["recipe"] == best and res["val_acc"] == trials[best]["val_acc"]
    assert res["weights"] == str(tmp_path / "ref" / "recipes" / best / "model.pt")
    assert load_finetuned(tmp_path / "ref")(torch.zeros(1, 3, 8, 8)).shape[0] == 1
    assert E._best_on_validation({"a": {"metrics": {"val_acc": 0.5}}, "b": {"metrics": {"val_acc": 0.5}}}) == "a"


def test_peers_distil_and_carry_their_recipe(kd_run, tmp_path):
    exp, out = kd_run
    rnd = stages.random_decisions(exp, out / "base", out / "search", tmp_path / "random", progress=False)
    assert rnd["recipe_distill_alpha"] == 0.9
    assert rnd["recipe_images_after_base"] == R.darc_images_after_base(exp, 224)
    scratch = stages.from_scratch(exp, out / "search", tmp_path / "scratch", progress=False)
    assert scratch["recipe_distill_alpha"] == 0.9 and scratch["recipe_images_after_base"] >= \
        R.darc_images_after_base(exp, 224)
    assert math.isclose(scratch["recipe_lr"], exp["train"]["lr"])


def test_train_config_round_trips_its_distill_section():
    cfg = TrainConfig(distill={"alpha": 0.5})
    assert cfg.to_dict()["distill"] == {"alpha": 0.5, "temperature": 4.0}
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert isinstance(build_optimizer(nn.Linear(2, 2), cfg), torch.optim.SGD)


def test_other_seeds_reference_follows_the_first_seeds_recipe(kd_run, tmp_path):
    exp, out = kd_run
    first = E.finetune_search(exp, out / "refsearch", tmp_path / "ref0", progress=False)
    other = E.finetune_search(experiment_for_seed(exp, 1), out / "refsearch", tmp_path / "ref1", progress=False,
                              recipe_from=tmp_path / "ref0")
    assert list(other["recipe_trials"]) == [first["recipe"]] and other["recipe"] == first["recipe"]
    assert first["recipe_chosen_on_seed"] == 0 and other["recipe_chosen_on_seed"] == 0
    assert other["weights"] == str(tmp_path / "ref1" / "model.pt")
    with pytest.raises(ValueError, match="first seed's finetune/reference"):
        E.finetune_search(exp, out / "refsearch", tmp_path / "ref2", progress=False, recipe_from=out / "search")


def test_a_partial_section_merges_onto_the_base_recipe_not_onto_dataclass_defaults():
    exp = {"train": {"epochs": 3, "lr": 0.1, "schedule": "cosine", "amp": True, "channels_last": True,
                     "warmup_epochs": 0.5, "label_smoothing": 0.1},
           "search": {"train": {"lr": 0.005, "schedule": "constant"}},
           "finetune": {"lr": 0.02, "budget": 0.1, "reference_recipes": [{"lr": 0.005}]}}
    search, fine = R.train_section(exp, "search", "train"), R.train_section(exp, "finetune")
    assert (search.lr, search.schedule, search.amp, search.channels_last) == (0.005, "constant", True, True)
    assert (fine.lr, fine.schedule, fine.warmup_epochs, fine.label_smoothing) == (0.02, "cosine", 0.5, 0.1)
    assert R.train_section({"train": exp["train"]}, "finetune") == R.train_section(exp, "train")
    assert TrainConfig().amp is False  # what a partial section used to fall back to
