"""The stages of a DARC experiment as plain functions: train the base, time the latency table, gate, search,
fine-tune. The peers' stages are :mod:`darc.peers.stages`, the bench stage :mod:`darc.bench_stage`.

The ``darc`` CLI and the Snakemake workflow scripts are thin wrappers over these; an experiment is a
validated mapping (see :mod:`darc.config`) that :func:`darc.records.begin_stage` turns into the typed
:class:`darc.spec.Experiment` every stage passes down; data and networks come from :mod:`darc.inputs`. Every
stage writes ``result.json`` with its provenance (:mod:`darc.records`); how each search method runs is
:mod:`darc.methods`.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from torch import nn

from darc.inputs import base_model, data_seed, experiment_device, load_base, load_data, set_threads
from darc.io import load_weights, safe_torch_load
from darc.methods import SEARCH_METHODS, search_config
from darc.recipe import darc_search_images, images_per_epoch, recipe_record, reference_recipes
from darc.records import PEER_COLUMNS, RESULT, base_seed_of, begin_stage, file_sha256, stage_record, write_result
from darc.search import finetune, run_search
from darc.spec import ExperimentLike
from darc.train import WEIGHTS, TrainConfig, fit

#: Names other modules and scripts reach through this module (the stages' inputs and records).
__all__ = ["PEER_COLUMNS", "RESULT", "SEARCH_METHODS", "base_model", "base_seed_of", "begin_stage", "data_seed",
           "distillation_teacher", "experiment_device", "file_sha256", "finetune_search", "gate", "load_base",
           "load_data", "measure_latency_table", "search", "search_config", "set_threads", "stage_record",
           "train_base", "write_result"]


def train_base(exp: ExperimentLike, out_dir: str | Path, *, scale: str = "default", progress: bool = True) -> dict:
    """Train the base network; ``out_dir/model.pt`` holds its weights, ``result.json`` the summary."""
    exp = begin_stage(exp)
    threads = set_threads(exp)
    out = Path(out_dir)
    data = load_data(exp)
    model = base_model(exp, data)
    t0 = time.perf_counter()
    res = fit(model, data, TrainConfig.from_dict(exp.section("train")), out, device=exp.device, progress=progress)
    result = {
        **stage_record(exp, scale, data, "train_base", threads=threads),
        "seed": exp.seed,
        "test_acc": res["metrics"].get("test_acc"), "val_acc": res["metrics"].get("val_acc"),
        "seconds_this_call": time.perf_counter() - t0,
        "train_seconds": sum(r.get("epoch_seconds") or 0 for r in res["history"]),
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "n_train": data.meta.n_train, "n_val": data.meta.n_val, "n_test": data.meta.n_test,
        "weights": str(out / WEIGHTS),
    }
    write_result(result, out / RESULT)
    return result


def measure_latency_table(exp: ExperimentLike, table_path: str | Path, start_from: str | Path | None = None) -> dict:
    """Measure every candidate's latency (and the base's) into the lookup table searches will read.

    ``start_from``: a versioned table (e.g. committed with the config) copied to ``table_path`` first; only
    entries it lacks are timed, so with a complete table nothing is re-timed and reruns are identical.
    """
    from darc.costs import CostContext, assign_costs
    from darc.search import gate_for_search

    exp = begin_stage(exp)
    if start_from is not None:
        Path(table_path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(start_from, table_path)
    data = load_data(exp)
    base = base_model(exp, data).eval()
    cfg = search_config(exp, 0.0)
    cfg.distill_steps = 0  # the table keys on each candidate's structure, not its weights
    gated = gate_for_search(base, data, cfg)
    ctx = CostContext(tuple(data.meta.input_shape), batch_size=cfg.cost_batch_size, device=cfg.cost_device,
                      threads=cfg.cost_threads, table_path=table_path, context=cfg.latency_context,
                      pairs=cfg.latency_pairs, min_block_time=cfg.latency_block_time)
    return assign_costs(gated, base, "latency", ctx)


def gate(
    exp: ExperimentLike, base_dir: str | Path, out_path: str | Path, *, scale: str = "default", method: str = "darc",
) -> dict:
    """Gate the trained base in ``base_dir`` and distill its alternatives once, into ``out_path``: the start
    every ``method`` search of this seed shares (``search(..., start=out_path)``), whatever its lambda."""
    from darc.search import prepare_gated_start

    exp = begin_stage(exp)
    threads = set_threads(exp)
    data = load_data(exp)
    model = base_model(exp, data)
    load_weights(model, safe_torch_load(Path(base_dir) / WEIGHTS), Path(base_dir) / WEIGHTS)
    t0 = time.perf_counter()
    report = prepare_gated_start(model, data, search_config(exp, 0.0, method=method), out_path)
    record = {**stage_record(exp, scale, data, "gate", threads=threads),
              **report, "seconds": time.perf_counter() - t0, "seed": exp.seed, "gated": str(out_path)}
    write_result(record, Path(out_path).with_suffix(".json"))
    return record


def search(
    exp: ExperimentLike, lam: float, base_dir: str | Path, out_dir: str | Path, *,
    scale: str = "default", progress: bool = True, method: str = "darc", start: str | Path | None = None,
) -> dict:
    """Search from the trained base in ``base_dir``; materialised net in ``out_dir/materialized``.

    ``method``: ``darc``, the equal-budget ``reference`` or a grid peer (:data:`SEARCH_METHODS`). ``start``:
    the gated start :func:`gate` wrote for this base, seed and method (skips the distillation).
    """
    exp = begin_stage(exp)
    threads = set_threads(exp)
    data = load_data(exp)
    model = base_model(exp, data)
    load_weights(model, safe_torch_load(Path(base_dir) / WEIGHTS), Path(base_dir) / WEIGHTS)
    cfg = search_config(exp, lam, method=method)
    if cfg.cost_model == "latency":
        cfg.latency_table = cfg.latency_table or str(Path(out_dir).parent / "latency_table.json")
    summary = run_search(model, data, cfg, out_dir, device=exp.device, progress=progress, start=start)
    table = cfg.latency_table if cfg.cost_model == "latency" else None
    result = {**stage_record(exp, scale, data, "search", threads=threads, lam=cfg.lam), **summary,
              "seed": exp.seed, "role": method, "base_seed": base_seed_of(base_dir, exp),
              "base": str(base_dir), "val_acc": summary["metrics"].get("val_acc"),
              "latency_table_sha256": file_sha256(table) if table and Path(table).exists() else None}
    write_result(result, Path(out_dir) / RESULT)
    return result


def distillation_teacher(exp: ExperimentLike, cfg: TrainConfig, base_dir: str | Path | None) -> nn.Module | None:
    """The trained base a recipe distils from (``None`` where ``cfg`` does not distil); refuses a missing base
    before any training starts."""
    if not cfg.distill.active:
        return None
    if base_dir is None:
        raise ValueError(f"the recipe distils from the trained base (distill.alpha {cfg.distill.alpha}) but no "
                         "base was given: pass --base (the base run directory), or set finetune.distill.alpha 0")
    return load_base(exp, base_dir)


def _best_on_validation(trials: dict[str, dict[str, Any]]) -> str:
    """The trial with the highest validation accuracy (the first on a tie; test accuracy is never read)."""
    scored = {k: v["metrics"].get("val_acc") for k, v in trials.items()}
    if any(v is None for v in scored.values()):
        raise ValueError("choosing the reference's recipe needs a validation split (experiment key validation)")
    return max(scored, key=lambda k: (scored[k], -list(scored).index(k)))


def finetune_search(
    exp: ExperimentLike, search_dir: str | Path, out_dir: str | Path, *, scale: str = "default",
    progress: bool = True, base_dir: str | Path | None = None, recipe_from: str | Path | None = None,
) -> dict:
    """Fine-tune the network materialised by a search (no penalty) with the post-compression recipe
    (:func:`darc.recipe.finetune_recipe`; ``base_dir``: the trained base it distils from, where it does).

    The equal-budget reference is fine-tuned with every recipe of :func:`darc.recipe.reference_recipes` (in
    ``out_dir/recipes/<name>``) and reports the one with the best validation accuracy; with ``recipe_from`` (the
    first seed's reference fine-tune) only with the recipe chosen there, as the operating points are chosen on
    the first seed's validation accuracy."""
    exp = begin_stage(exp)
    threads = set_threads(exp)
    data = load_data(exp)
    n_train = len(data.train)
    mat = Path(search_dir) / "materialized"
    search_result = json.loads((Path(search_dir) / RESULT).read_text())
    role = search_result.get("role", "darc")
    recipes = reference_recipes(exp, n_train)
    recipes = recipes if role == "reference" else {"configured": recipes["configured"]}
    chosen_on = None
    if role == "reference" and recipe_from is not None:
        first = json.loads((Path(recipe_from) / RESULT).read_text())
        if first.get("role") != "reference" or first.get("recipe") not in recipes:
            raise ValueError(f"{recipe_from} is not a reference fine-tune with one of this experiment's recipes "
                             f"({', '.join(recipes)}): pass the first seed's finetune/reference directory")
        recipes, chosen_on = {first["recipe"]: recipes[first["recipe"]]}, first.get("seed")
    base_dir = base_dir if base_dir is not None else search_result.get("base")
    trials: dict[str, dict[str, Any]] = {}
    for name, cfg in recipes.items():
        where = Path(out_dir) if len(recipes) == 1 else Path(out_dir) / "recipes" / name
        model, res = finetune(mat / "architecture.json", mat / "weights.pt", data, cfg, where,
                              device=exp.device, progress=progress,
                              teacher=distillation_teacher(exp, cfg, base_dir))
        trials[name] = {"model": model, "metrics": res["metrics"], "cfg": cfg, "weights": str(where / WEIGHTS)}
    chosen = _best_on_validation(trials) if len(trials) > 1 else next(iter(trials))
    best = trials[chosen]
    model, cfg = best["model"], best["cfg"]
    after_base = darc_search_images(exp, n_train) + cfg.epochs * images_per_epoch(cfg, n_train)
    result = {
        **stage_record(exp, scale, data, "finetune", threads=threads, lam=search_result["lam"]),
        "seed": exp.seed, "role": role,
        "base_seed": search_result.get("base_seed", exp.seed),
        "arch_cost": search_result.get("arch_cost"),
        "test_acc": best["metrics"].get("test_acc"), "val_acc": best["metrics"].get("val_acc"),
        "test_acc_before_finetune": search_result["metrics"].get("test_acc"),
        "val_acc_before_finetune": search_result["metrics"].get("val_acc"),
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "architecture": str(mat / "architecture.json"), "weights": best["weights"],
        "kept": search_result["kept"],
        **recipe_record(cfg, exp, n_train, after_base), "recipe": chosen,
        "recipe_chosen_on_seed": exp.seed if chosen_on is None and len(trials) > 1 else chosen_on,
        "recipe_trials": {k: {"val_acc": v["metrics"].get("val_acc"), "test_acc": v["metrics"].get("test_acc"),
                              "train_config": v["cfg"].to_dict()} for k, v in trials.items()},
    }
    write_result(result, Path(out_dir) / RESULT)
    return result


