"""The peers' stages as plain functions (the ``darc peer`` CLI and the workflow call them), each writing a
``result.json`` that :func:`darc.peers.loading.load_finetuned` and the bench read like a DARC fine-tune's.

Every peer gets the training DARC got after the base (:mod:`darc.recipe`, the post-compression recipe):
the random-decision network and the pruned networks are fine-tuned with the fine-tune recipe (distillation
from the base included) for DARC's search plus fine-tune images (:func:`darc.recipe.peer_recipe`); the
from-scratch network is trained with the base recipe for the base's images plus those, distilled from the
base when the fine-tune is (:func:`darc.recipe.scratch_recipe`). The SSS peer is a search method
(:data:`darc.experiment.SEARCH_METHODS`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from darc.compressor import calibration_batch
from darc.experiment import distillation_teacher
from darc.inputs import base_model, load_base, load_data, set_threads
from darc.io import atomic_write_json
from darc.materialize import save_materialized
from darc.methods import search_config
from darc.peers.decisions import (
    allowed_labels,
    architecture_decisions,
    decision_counts,
    draw_random_decisions,
    gate_for_decisions,
    materialize_decisions,
    reinitialised,
)
from darc.peers.pruning import (
    load_pruned_dir,
    macs_measure,
    param_bytes_measure,
    prune_to_target,
    save_pruned,
)
from darc.recipe import (  # noqa: F401  (the budget helpers, importable from here as before)
    base_images,
    darc_finetune_images,
    darc_images_after_base,
    darc_search_images,
    images_per_epoch,
    peer_recipe,
    pruned_finetune_recipe,
    recipe_record,
    scratch_recipe,
    sparsity_recipe,
)
from darc.records import RESULT, base_seed_of, begin_stage, stage_record, write_result
from darc.registry import Registry
from darc.search import finetune, kept_labels, load_gated_start, slot_decisions
from darc.spec import Experiment, ExperimentLike
from darc.train import WEIGHTS, TrainConfig, fit


def _recipe_columns(recipe: TrainConfig, exp: Experiment, n_train: int, *, after_sparsity: bool = False
                    ) -> dict[str, Any]:
    """:func:`darc.recipe.recipe_record` of a peer fine-tuned from the base (after a sparsity phase that took
    DARC's search images, where ``after_sparsity``)."""
    images = recipe.epochs * images_per_epoch(recipe, n_train)
    return recipe_record(recipe, exp, n_train, images + (darc_search_images(exp, n_train) if after_sparsity else 0))


def _darc_search(search_dir: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """A DARC search's result and its materialised architecture record."""
    result = json.loads((Path(search_dir) / RESULT).read_text())
    if result.get("role", "darc") != "darc":
        raise ValueError(f"{search_dir} is a {result.get('role')!r} run, not a DARC search: peers copy DARC's")
    return result, json.loads(Path(result["architecture"]).read_text())


def _peer_result(exp: Experiment, scale: str, data: Any, role: str, darc: dict[str, Any], res: dict[str, Any],
                 model: Any, arch_path: str | Path, out: Path, threads: int, **extra: Any) -> dict[str, Any]:
    kept = kept_labels(json.loads(Path(arch_path).read_text()))
    return {
        **stage_record(exp, scale, data, role, threads=threads, lam=darc["lam"]),
        "seed": exp.seed, "base_seed": darc.get("base_seed", exp.seed), "role": role,
        "arch_cost": None, "matches": f"lam{darc['lam']:g}",
        "test_acc": res["metrics"].get("test_acc"), "val_acc": res["metrics"].get("val_acc"),
        "test_acc_before_finetune": None, "val_acc_before_finetune": None,
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "architecture": str(arch_path), "weights": str(out / WEIGHTS), "kept": kept,
        "decisions": slot_decisions(kept), **extra,
    }


def random_decisions(
    exp: ExperimentLike, base_dir: str | Path, darc_search_dir: str | Path, out_dir: str | Path, *,
    scale: str = "default", progress: bool = True, start: str | Path | None = None,
) -> dict[str, Any]:
    """DARC's decisions (how many slots dropped, kept, and replaced by which alternative) dealt to random
    slots (seeded by the run's seed), built from the trained base as a search starts (alternatives
    distilled), then fine-tuned with :func:`peer_recipe`. ``start``: the seed's gated start (``darc gate``),
    so the dealt alternatives are the very ones DARC's searches of the seed started from (not distilled again)."""
    exp = begin_stage(exp)
    threads = set_threads(exp)
    out = Path(out_dir)
    darc, arch = _darc_search(darc_search_dir)
    wanted = architecture_decisions(arch)
    data = load_data(exp)
    base = load_base(exp, base_dir)
    cfg = search_config(exp, darc["lam"])
    if start is not None:
        gated = load_gated_start(base, data, cfg, start)
    else:
        calib = calibration_batch(data.train, cfg.calibration_samples) if cfg.calibration_samples else None
        gated = gate_for_decisions(base, wanted, slots=cfg.slots, example_input=tuple(data.meta.input_shape),
                                   calibration=calib, distill_steps=cfg.distill_steps, distill_lr=cfg.distill_lr)
    drawn = draw_random_decisions(wanted, allowed_labels(gated), seed=exp.seed)
    plain, record = materialize_decisions(gated, drawn)
    record["peer"] = {"method": "random", "darc_search": str(darc_search_dir), "counts": decision_counts(drawn)}
    arch_path, weights_path = save_materialized(plain, record, out / "materialized")
    recipe = peer_recipe(exp, len(data.train))
    model, res = finetune(arch_path, weights_path, data, recipe, out, device=exp.device,
                          progress=progress, teacher=distillation_teacher(exp, recipe, base_dir))
    result = _peer_result(exp, scale, data, "random", darc, res, model, arch_path, out, threads,
                          darc_counts=decision_counts(wanted), **_recipe_columns(recipe, exp, len(data.train)))
    write_result(result, out / RESULT)
    return result


def from_scratch(
    exp: ExperimentLike, darc_search_dir: str | Path, out_dir: str | Path, *, scale: str = "default",
    progress: bool = True, base_dir: str | Path | None = None,
) -> dict[str, Any]:
    """DARC's materialised architecture re-initialised (seeded by the run's seed) and trained with
    :func:`scratch_recipe`: is the search worth more than the architecture it found? ``base_dir``: the trained
    base it distils from where the recipe does (default: the one DARC's search started from)."""
    exp = begin_stage(exp)
    threads = set_threads(exp)
    out = Path(out_dir)
    darc, arch = _darc_search(darc_search_dir)
    data = load_data(exp)
    model = reinitialised(arch, exp.seed)
    arch_path = atomic_write_json({**arch, "peer": {"method": "scratch", "darc_search": str(darc_search_dir)}},
                                  out / "architecture.json")
    recipe = scratch_recipe(exp, len(data.train))
    teacher = distillation_teacher(exp, recipe, base_dir if base_dir is not None else darc.get("base"))
    t0 = time.perf_counter()
    res = fit(model, data, recipe, out, device=exp.device, progress=progress, teacher=teacher)
    result = _peer_result(exp, scale, data, "scratch", darc, res, model, arch_path, out, threads,
                          seconds_this_call=time.perf_counter() - t0,
                          **recipe_record(recipe, exp, len(data.train), recipe.epochs * images_per_epoch(
                              recipe, len(data.train)) - base_images(exp, len(data.train))))
    write_result(result, out / RESULT)
    return result


#: What a Torch-Pruning peer is matched on: ``fn(exp, input_shape, darc_model) -> (measure, target)``, where
#: ``measure(model)`` is the quantity and the search stops at the first step with ``measure <= target``.
PRUNE_MATCHES: Registry[tuple[Callable[[nn.Module], float], float]] = Registry("pruning match")


@PRUNE_MATCHES.register("latency")
def _match_latency(exp: Experiment, shape: tuple[int, ...], darc_model: nn.Module):
    """Measured latency at the protocol's batch (``search.cost_batch_size``), by the bench protocol: each
    step is timed in interleaved A/B pairs against the DARC network, so ``measure`` is the ratio
    t(pruned) / t(DARC) and the target 1 (machine drift cancels)."""
    from darc.bench.latency import compare_latency

    def measure(model: nn.Module) -> float:
        ab = compare_latency(model, darc_model, shape, exp.cost_batch_size, pairs=exp.bench.pairs,
                             device=exp.device, threads=exp.timing_threads, min_block_time=exp.bench.min_block_time)
        return ab.ratio_median

    return measure, 1.0


@PRUNE_MATCHES.register("params")
def _match_params(exp: Experiment, shape: tuple[int, ...], darc_model: nn.Module):
    """Parameter bytes (the bench's ``param_bytes``)."""
    measure = param_bytes_measure()
    return measure, measure(darc_model)


@PRUNE_MATCHES.register("macs")
def _match_macs(exp: Experiment, shape: tuple[int, ...], darc_model: nn.Module):
    """MACs at batch 1 (analytic; the match, never a speed-up)."""
    measure = macs_measure(shape)
    return measure, measure(darc_model)


#: Role prefix of each pruner's rows (``<prefix>_<match>``).
PRUNER_ROLES = {"group_l1": "tp", "bn_scale": "tpbn"}


def bn_sparsity(
    exp: ExperimentLike, base_dir: str | Path, out_dir: str | Path, *, scale: str = "default", progress: bool = True,
) -> dict[str, Any]:
    """Network slimming's sparsity phase: the trained base trained on with ``peers.prune.bn_reg * sum|gamma|``
    over its BatchNorm scales (:func:`darc.peers.pruning.bn_sparsity_penalty`) for :func:`sparsity_recipe`;
    ``out_dir`` then holds a base-shaped network for :func:`prune_to_match` with ``pruner="bn_scale"``."""
    from darc.peers.pruning import bn_sparsity_penalty

    exp = begin_stage(exp)
    threads = set_threads(exp)
    out = Path(out_dir)
    data = load_data(exp)
    model = load_base(exp, base_dir)
    reg = float(exp.peers.prune.bn_reg)
    t0 = time.perf_counter()
    res = fit(model, data, sparsity_recipe(exp, len(data.train)), out, device=exp.device,
              extra_loss=bn_sparsity_penalty(model, reg), progress=progress)
    scales = torch.cat([m.weight.detach().abs().flatten() for m in model.modules()
                        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.affine])
    result = {**stage_record(exp, scale, data, "bn_sparsity", threads=threads), "seed": exp.seed,
              "base_seed": base_seed_of(base_dir, exp), "base": str(base_dir), "bn_reg": reg,
              "test_acc": res["metrics"].get("test_acc"), "val_acc": res["metrics"].get("val_acc"),
              "bn_scale_below_1e-2": float((scales < 1e-2).float().mean()),
              "seconds_this_call": time.perf_counter() - t0, "weights": str(out / WEIGHTS)}
    write_result(result, out / RESULT)
    return result


def prune_to_match(
    exp: ExperimentLike, base_dir: str | Path, darc_finetune_dir: str | Path, match: str, out_dir: str | Path, *,
    scale: str = "default", pruner: str = "group_l1",
) -> dict[str, Any]:
    """Prune the trained base with Torch-Pruning (``pruner``: group L1 magnitude, or ``bn_scale`` from the
    output of :func:`bn_sparsity` as ``base_dir``; iterative) until it matches the DARC network of
    ``darc_finetune_dir`` on ``match`` (:data:`PRUNE_MATCHES`: measured latency, parameter bytes or MACs);
    write ``out_dir/pruned`` and ``out_dir/prune.json``. A timing job where ``match`` is latency."""
    from darc.peers.loading import load_finetuned
    from darc.peers.pruning import PRUNER_NAMES

    if pruner not in PRUNER_NAMES:
        raise ValueError(f"unknown pruner {pruner!r}; choose from {sorted(PRUNER_NAMES)}")
    base_record = json.loads((Path(base_dir) / RESULT).read_text()) if (Path(base_dir) / RESULT).exists() else {}
    if (pruner == "bn_scale") != (base_record.get("stage") == "bn_sparsity"):
        raise ValueError(f"pruner {pruner!r} with base {base_dir} (stage {base_record.get('stage')!r}): "
                         "bn_scale prunes the output of `darc peer bn-sparsity`, group_l1 the trained base")
    exp = begin_stage(exp)
    torch.set_num_threads(exp.timing_threads)
    out = Path(out_dir)
    data = load_data(exp)
    shape = tuple(data.meta.input_shape)
    base = load_base(exp, base_dir).eval()
    darc_model = load_finetuned(darc_finetune_dir).eval()
    darc_result = json.loads((Path(darc_finetune_dir) / RESULT).read_text())
    measure, target = PRUNE_MATCHES.create(match, exp, shape, darc_model)
    cfg = exp.peers.prune
    t0 = time.perf_counter()
    pruned = prune_to_target(base, torch.zeros(1, *shape), measure, target, max_ratio=cfg.max_ratio,
                             steps=cfg.steps, refine_steps=cfg.refine_steps, global_pruning=cfg.global_pruning,
                             pruner=pruner)
    save_pruned(pruned, out / "pruned")
    tp_class, importance = PRUNER_NAMES[pruner]
    record = {**stage_record(exp, scale, data, "prune", lam=darc_result["lam"]), "match": match,
              "base_seed": base_record.get("base_seed", base_seed_of(base_dir, exp)), "pruned_from": str(base_dir),
              "darc_finetune": str(darc_finetune_dir), "importance": importance, "pruner_name": pruner,
              "pruner": tp_class, "seconds": time.perf_counter() - t0,
              "steps": cfg.steps, "refine_steps": cfg.refine_steps, "max_ratio": cfg.max_ratio,
              "global_pruning": cfg.global_pruning,
              **pruned.summary()}
    atomic_write_json(record, out / "prune.json")
    return record


def _pruned_from_base(prune: dict[str, Any]) -> str | None:
    """The trained base a pruned network descends from: the directory it was pruned from, or for BN-scale
    pruning the base the sparsity phase started from."""
    start = Path(prune["pruned_from"])
    record = json.loads((start / RESULT).read_text()) if (start / RESULT).exists() else {}
    return record.get("base") if record.get("stage") == "bn_sparsity" else str(start)


def prune_finetune(
    exp: ExperimentLike, prune_dir: str | Path, out_dir: str | Path, *, scale: str = "default",
    progress: bool = True, base_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Fine-tune a Torch-Pruning network (:func:`prune_to_match`) with :func:`pruned_finetune_recipe`
    (``base_dir``: the trained base it distils from where the recipe does; default: the one it was pruned
    from)."""
    exp = begin_stage(exp)
    threads = set_threads(exp)
    out = Path(out_dir)
    prune = json.loads((Path(prune_dir) / "prune.json").read_text())
    pruner = prune.get("pruner_name", "group_l1")
    role = f"{PRUNER_ROLES[pruner]}_{prune['match']}"
    data = load_data(exp)
    model = load_pruned_dir(lambda: base_model(exp, data), Path(prune_dir) / "pruned")
    recipe = pruned_finetune_recipe(exp, len(data.train), pruner)
    teacher = distillation_teacher(exp, recipe, base_dir if base_dir is not None else _pruned_from_base(prune))
    res = fit(model, data, recipe, out, device=exp.device, progress=progress, teacher=teacher)
    result = {
        **stage_record(exp, scale, data, role, threads=threads, lam=prune["lam"]),
        "seed": exp.seed, "base_seed": prune.get("base_seed"), "role": role,
        "arch_cost": None,
        "matches": f"lam{prune['lam']:g}", "test_acc": res["metrics"].get("test_acc"),
        "val_acc": res["metrics"].get("val_acc"), "test_acc_before_finetune": None,
        "val_acc_before_finetune": None, "num_parameters": sum(p.numel() for p in model.parameters()),
        "pruned": str(Path(prune_dir) / "pruned"), "architecture": None, "weights": str(out / WEIGHTS),
        "kept": {}, "match_target": prune["target"], "match_measured": prune["measured"],
        "match_reached": prune["reached"], "prune_ratio": prune["ratio"],
        **_recipe_columns(recipe, exp, len(data.train), after_sparsity=pruner == "bn_scale"),
    }
    write_result(result, out / RESULT)
    return result
