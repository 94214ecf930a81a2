"""The stages of a DARC experiment as plain functions: train base, search, fine-tune, benchmark.

The ``darc`` CLI and the Snakemake workflow scripts are thin wrappers over these; an experiment is a
validated mapping (see :mod:`darc.config`). Every stage writes ``result.json`` with its provenance.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from darc.config import validate_experiment
from darc.data import DatasetBundle, get_dataset
from darc.io import atomic_write_json, load_weights, safe_torch_load
from darc.materialize import load_materialized
from darc.models import create_model
from darc.provenance import git_commit, provenance
from darc.recipe import RECIPE_COLUMNS, darc_search_images, images_per_epoch, recipe_record, reference_recipes
from darc.registry import Registry
from darc.search import SearchConfig, finetune, run_search, slot_decisions
from darc.train import WEIGHTS, TrainConfig, fit
from darc.train.rng import seed_everything

RESULT = "result.json"
#: What a peer's result adds to its bench row: the DARC point it copies and how close a match came.
PEER_COLUMNS = ("matches", "match_target", "match_measured", "match_reached", "prune_ratio")


def begin_stage(exp: dict[str, Any]) -> None:
    """Validate ``exp`` and pin the git commit this process's outputs record: the code it started with,
    even if the checkout moves on while it runs."""
    validate_experiment(exp)
    git_commit()


def set_threads(exp: dict[str, Any]) -> int:
    """Apply the experiment's thread count (if set); return the count in force."""
    if exp.get("threads"):
        torch.set_num_threads(int(exp["threads"]))
    return torch.get_num_threads()


def experiment_device(exp: dict[str, Any]) -> str:
    """The device every stage of the experiment runs and measures on: its ``device`` key, else ``cpu``
    (never an implicit GPU, so the default scale is the same CPU run on every machine)."""
    return str(exp.get("device") or "cpu")


def data_seed(exp: dict[str, Any]) -> int:
    """The seed of the experiment's subset and validation split: ``data_seed`` where set (a shared base),
    else the run's ``seed``."""
    return int(exp["data_seed"] if exp.get("data_seed") is not None else exp.get("seed", 0))


def load_data(exp: dict[str, Any]) -> DatasetBundle:
    """The experiment's dataset (validation split, subset and seed applied)."""
    kw = {"download": True} if exp.get("download") else {}
    subset = tuple(exp["subset"]) if exp.get("subset") else None
    return get_dataset(exp["dataset"], root=exp.get("data_root"), subset=subset, seed=data_seed(exp),
                       val_size=exp.get("validation"), **kw)


def base_model(exp: dict[str, Any], data: DatasetBundle) -> nn.Module:
    """A fresh base network, initialised from the experiment's seed; input channels, size and class count
    default to the dataset's."""
    c, h, _ = data.meta.input_shape
    kw = {"in_chans": c, "input_size": h, "num_classes": data.meta.num_classes, **exp.get("model_kwargs", {})}
    seed_everything(int(exp.get("seed", 0)))
    return create_model(exp["model"], **kw)


def write_result(result: dict[str, Any], path: Path) -> None:
    """Rank 0 writes a stage's ``result.json``; under torchrun the other ranks wait until it is there."""
    from darc.train import distributed as D

    if D.is_main_process():
        atomic_write_json(result, path)
    D.barrier()


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (recorded for versioned inputs such as a latency table)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def stage_record(exp: dict[str, Any], scale: str, data: DatasetBundle, stage: str, **extra: Any) -> dict[str, Any]:
    return provenance(
        scale=scale, dataset=data.meta.name, model=exp["model"], stand_in=data.meta.stand_in,
        config=exp, device=experiment_device(exp), stage=stage, **extra,
    )


def train_base(exp: dict[str, Any], out_dir: str | Path, *, scale: str = "default", progress: bool = True) -> dict:
    """Train the base network; ``out_dir/model.pt`` holds its weights, ``result.json`` the summary."""
    begin_stage(exp)
    threads = set_threads(exp)
    out = Path(out_dir)
    data = load_data(exp)
    model = base_model(exp, data)
    t0 = time.perf_counter()
    res = fit(model, data, TrainConfig.from_dict(exp.get("train", {})), out, device=experiment_device(exp),
              progress=progress)
    result = {
        **stage_record(exp, scale, data, "train_base", threads=threads),
        "seed": exp.get("seed", 0),
        "test_acc": res["metrics"].get("test_acc"), "val_acc": res["metrics"].get("val_acc"),
        "seconds_this_call": time.perf_counter() - t0,
        "train_seconds": sum(r.get("epoch_seconds") or 0 for r in res["history"]),
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "n_train": data.meta.n_train, "n_val": data.meta.n_val, "n_test": data.meta.n_test,
        "weights": str(out / WEIGHTS),
    }
    write_result(result, out / RESULT)
    return result


#: How a search run differs from DARC's (``fn(cfg)`` edits the :class:`SearchConfig` in place). ``darc``:
#: as configured. ``reference``: the **equal-budget reference**, the same pipeline (same epochs, schedules,
#: gate step and fine-tuning after it) with the penalty off and only the original candidate in every slot,
#: so the base is trained through every step a compressed network gets after it. ``sss``: Sparse Structure
#: Selection, l1 on the originals' scale factors with every slot costing the same (no alternatives).
SEARCH_METHODS: Registry[None] = Registry("search method")


@SEARCH_METHODS.register("darc")
def _as_configured(cfg: SearchConfig) -> None:
    pass


@SEARCH_METHODS.register("reference")
def _equal_budget_reference(cfg: SearchConfig) -> None:
    cfg.lam, cfg.candidates, cfg.cost_model, cfg.latency_table = 0.0, ["original"], "params", None
    cfg.weights = "train"  # plain training of the base for the search's images, whatever DARC's search does
    cfg.handoff = "searched"  # and the fine-tune continues from that training


@SEARCH_METHODS.register("sss")
def _sparse_structure_selection(cfg: SearchConfig) -> None:
    cfg.candidates, cfg.cost_model, cfg.latency_table = ["original"], "uniform", None
    cfg.weights = "train"  # as published: block scales and weights learn together
    cfg.handoff = "searched"  # and the network is the one they learned


def _cost_model_ablation(model: str) -> Callable[[SearchConfig], None]:
    def apply(cfg: SearchConfig) -> None:
        cfg.cost_model, cfg.latency_table = model, None

    return apply


#: Ablations of DARC's cost weighting (peers, ``extended`` scale): the same candidates and search, each slot's
#: cost from another model. ``darc_uniform``: every slot costs the same (what cost weighting buys);
#: ``darc_params`` / ``darc_macs``: parameter bytes / MACs instead of measured latency (what the cost model
#: buys). The grid peers run by the workflow are :data:`darc.config.GRID_SEARCH_PEERS`.
for _name, _model in (("darc_uniform", "uniform"), ("darc_params", "params"), ("darc_macs", "macs")):
    SEARCH_METHODS.register(_name)(_cost_model_ablation(_model))


def base_seed_of(base_dir: str | Path, exp: dict[str, Any]) -> int:
    """The seed of the base a run started from (its ``result.json``; else the run's own seed)."""
    path = Path(base_dir) / RESULT
    return int(json.loads(path.read_text()).get("seed", 0)) if path.exists() else int(exp.get("seed", 0))


def search_config(exp: dict[str, Any], lam: float, *, method: str = "darc") -> SearchConfig:
    """The :class:`SearchConfig` of one lambda of the experiment, as the search ``method`` runs it
    (:data:`SEARCH_METHODS`: ``darc``, ``reference``, or a grid peer of :data:`darc.config.GRID_SEARCH_PEERS`)."""
    section = {k: v for k, v in exp.get("search", {}).items() if k not in ("lams", "train")}
    train = TrainConfig.from_dict(exp.get("search", {}).get("train", exp.get("train", {})))
    cost_threads = exp.get("bench", {}).get("threads") or exp.get("threads")
    section.setdefault("cost_device", experiment_device(exp))  # an explicit search.cost_device wins
    cfg = SearchConfig(lam=float(lam), train=train, cost_threads=cost_threads, **section)
    SEARCH_METHODS.create(method, cfg)
    return cfg


def measure_latency_table(exp: dict[str, Any], table_path: str | Path, start_from: str | Path | None = None) -> dict:
    """Measure every candidate's latency (and the base's) into the lookup table searches will read.

    ``start_from``: a versioned table (e.g. committed with the config) copied to ``table_path`` first; only
    entries it lacks are timed, so with a complete table nothing is re-timed and reruns are identical.
    """
    from darc.costs import CostContext, assign_costs
    from darc.search import gate_for_search

    begin_stage(exp)
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
    exp: dict[str, Any], base_dir: str | Path, out_path: str | Path, *, scale: str = "default", method: str = "darc",
) -> dict:
    """Gate the trained base in ``base_dir`` and distill its alternatives once, into ``out_path``: the start
    every ``method`` search of this seed shares (``search(..., start=out_path)``), whatever its lambda."""
    from darc.search import prepare_gated_start

    begin_stage(exp)
    threads = set_threads(exp)
    data = load_data(exp)
    model = base_model(exp, data)
    load_weights(model, safe_torch_load(Path(base_dir) / WEIGHTS), Path(base_dir) / WEIGHTS)
    t0 = time.perf_counter()
    report = prepare_gated_start(model, data, search_config(exp, 0.0, method=method), out_path)
    record = {**stage_record(exp, scale, data, "gate", threads=threads),
              **report, "seconds": time.perf_counter() - t0, "seed": exp.get("seed", 0), "gated": str(out_path)}
    write_result(record, Path(out_path).with_suffix(".json"))
    return record


def search(
    exp: dict[str, Any], lam: float, base_dir: str | Path, out_dir: str | Path, *,
    scale: str = "default", progress: bool = True, method: str = "darc", start: str | Path | None = None,
) -> dict:
    """Search from the trained base in ``base_dir``; materialised net in ``out_dir/materialized``.

    ``method``: ``darc``, the equal-budget ``reference`` or a grid peer (:data:`SEARCH_METHODS`). ``start``:
    the gated start :func:`gate` wrote for this base, seed and method (skips the distillation).
    """
    begin_stage(exp)
    threads = set_threads(exp)
    data = load_data(exp)
    model = base_model(exp, data)
    load_weights(model, safe_torch_load(Path(base_dir) / WEIGHTS), Path(base_dir) / WEIGHTS)
    cfg = search_config(exp, lam, method=method)
    if cfg.cost_model == "latency":
        cfg.latency_table = cfg.latency_table or str(Path(out_dir).parent / "latency_table.json")
    summary = run_search(model, data, cfg, out_dir, device=experiment_device(exp), progress=progress, start=start)
    table = cfg.latency_table if cfg.cost_model == "latency" else None
    result = {**stage_record(exp, scale, data, "search", threads=threads, lam=cfg.lam), **summary,
              "seed": exp.get("seed", 0), "role": method, "base_seed": base_seed_of(base_dir, exp),
              "base": str(base_dir), "val_acc": summary["metrics"].get("val_acc"),
              "latency_table_sha256": file_sha256(table) if table and Path(table).exists() else None}
    write_result(result, Path(out_dir) / RESULT)
    return result


def distillation_teacher(exp: dict[str, Any], cfg: TrainConfig, base_dir: str | Path | None) -> nn.Module | None:
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
    exp: dict[str, Any], search_dir: str | Path, out_dir: str | Path, *, scale: str = "default",
    progress: bool = True, base_dir: str | Path | None = None, recipe_from: str | Path | None = None,
) -> dict:
    """Fine-tune the network materialised by a search (no penalty) with the post-compression recipe
    (:func:`darc.recipe.finetune_recipe`; ``base_dir``: the trained base it distils from, where it does).

    The equal-budget reference is fine-tuned with every recipe of :func:`darc.recipe.reference_recipes` (in
    ``out_dir/recipes/<name>``) and reports the one with the best validation accuracy; with ``recipe_from`` (the
    first seed's reference fine-tune) only with the recipe chosen there, as the operating points are chosen on
    the first seed's validation accuracy."""
    begin_stage(exp)
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
                              device=experiment_device(exp), progress=progress,
                              teacher=distillation_teacher(exp, cfg, base_dir))
        trials[name] = {"model": model, "metrics": res["metrics"], "cfg": cfg, "weights": str(where / WEIGHTS)}
    chosen = _best_on_validation(trials) if len(trials) > 1 else next(iter(trials))
    best = trials[chosen]
    model, cfg = best["model"], best["cfg"]
    after_base = darc_search_images(exp, n_train) + cfg.epochs * images_per_epoch(cfg, n_train)
    result = {
        **stage_record(exp, scale, data, "finetune", threads=threads, lam=search_result["lam"]),
        "seed": exp.get("seed", 0), "role": role,
        "base_seed": search_result.get("base_seed", exp.get("seed", 0)),
        "arch_cost": search_result.get("arch_cost"),
        "test_acc": best["metrics"].get("test_acc"), "val_acc": best["metrics"].get("val_acc"),
        "test_acc_before_finetune": search_result["metrics"].get("test_acc"),
        "val_acc_before_finetune": search_result["metrics"].get("val_acc"),
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "architecture": str(mat / "architecture.json"), "weights": best["weights"],
        "kept": search_result["kept"],
        **recipe_record(cfg, exp, n_train, after_base), "recipe": chosen,
        "recipe_chosen_on_seed": exp.get("seed", 0) if chosen_on is None and len(trials) > 1 else chosen_on,
        "recipe_trials": {k: {"val_acc": v["metrics"].get("val_acc"), "test_acc": v["metrics"].get("test_acc"),
                              "train_config": v["cfg"].to_dict()} for k, v in trials.items()},
    }
    write_result(result, Path(out_dir) / RESULT)
    return result


def load_finetuned(finetune_dir: str | Path) -> nn.Module:
    """The plain fine-tuned network of a fine-tune run directory: a materialised architecture (DARC, the
    reference, SSS, random decisions, from scratch) or a Torch-Pruning network (its shape record)."""
    result = json.loads((Path(finetune_dir) / RESULT).read_text())
    if result.get("pruned"):
        from darc.peers.pruning import RECORD_NAME, load_pruned

        record = json.loads((Path(result["pruned"]) / RECORD_NAME).read_text())
        return load_pruned(lambda: create_model(record["model_name"], **record["model_kwargs"]), record,
                           safe_torch_load(result["weights"]))
    return load_materialized(result["architecture"], result["weights"])


def load_base(exp: dict[str, Any], base_dir: str | Path) -> nn.Module:
    """The trained base network of a ``train_base`` run directory."""
    model = base_model(exp, load_data(exp))
    load_weights(model, safe_torch_load(Path(base_dir) / WEIGHTS), Path(base_dir) / WEIGHTS)
    return model


def compare_to_base(
    base: nn.Module, compressed: nn.Module, input_shape: tuple[int, ...], *, batch_sizes: list[int],
    threads: int, pairs: int, min_block_time: float, device: str = "cpu",
) -> dict[str, Any]:
    """Measured ratios base / compressed: latency (interleaved A/B, per batch size) and parameter
    bytes, plus MACs (an analytic cost, reported as such, never as a speed-up)."""
    from darc.bench.latency import compare_latency
    from darc.bench.macs import count_macs
    from darc.bench.memory import param_bytes

    row: dict[str, Any] = {
        "param_bytes": param_bytes(compressed), "base_param_bytes": param_bytes(base),
        "macs": count_macs(compressed, input_shape, 1), "base_macs": count_macs(base, input_shape, 1),
    }
    row["param_reduction"] = row["base_param_bytes"] / row["param_bytes"]
    row["macs_ratio"] = row["base_macs"] / row["macs"]
    for b in batch_sizes:
        ab = compare_latency(base, compressed, input_shape, b, pairs=pairs, device=device, threads=threads,
                             min_block_time=min_block_time)
        row[f"latency_b{b}_ms"] = ab.median_b_s * 1e3
        row[f"base_latency_b{b}_ms"] = ab.median_a_s * 1e3
        row[f"speedup_b{b}"] = ab.ratio_median
        row[f"speedup_b{b}_iqr"] = ab.ratio_iqr
    return row


def peak_memory_columns(
    base: nn.Module, compressed: dict[str, nn.Module], input_shape: tuple[int, ...], batch_sizes: list[int],
    threads: int, device: str = "cpu", *, resident: bool = True,
) -> dict[str, dict[str, Any]]:
    """Per compressed model and batch size: peak tensor memory (exact, in-process: weights + the inference's
    peak allocations) and, with ``resident``, measured peak resident memory (spawned children), each with its
    reduction against the base (measured once)."""
    from darc.bench.memory import peak_inference_memory_many, peak_tensor_memory

    cols: dict[str, dict[str, Any]] = {k: {} for k in compressed}
    for b in batch_sizes:
        tensor = {key: peak_tensor_memory(m, input_shape, b, device, threads=threads).net_bytes
                  for key, m in {"__base__": base, **compressed}.items()}
        for key in compressed:
            cols[key][f"peak_tensor_b{b}_bytes"] = tensor[key]
            cols[key][f"base_peak_tensor_b{b}_bytes"] = tensor["__base__"]
            cols[key][f"peak_tensor_reduction_b{b}"] = tensor["__base__"] / max(tensor[key], 1)
        if not resident:
            continue
        mem = peak_inference_memory_many({"__base__": base, **compressed}, input_shape, b, device, threads=threads)
        for key in compressed:
            cols[key][f"peak_mem_b{b}_bytes"] = mem[key].net_bytes
            cols[key][f"base_peak_mem_b{b}_bytes"] = mem["__base__"].net_bytes
            cols[key][f"peak_mem_reduction_b{b}"] = mem["__base__"].net_bytes / max(mem[key].net_bytes, 1)
            cols[key]["peak_mem_method"] = mem[key].method
    return cols


def bench(
    exp: dict[str, Any], base_dir: str | Path, finetune_dirs: list[str | Path], out_csv: str | Path, *,
    scale: str = "default",
) -> list[dict[str, Any]]:
    """Benchmark every fine-tuned network of an experiment against its base; one tidy row each.

    Rows carry the run's seed, role, cost and accuracy (validation and test; the base's accuracy where
    the run has the base's seed), measured speed-ups at batch 1 and the batched size, parameter-byte
    and peak-memory reductions, the MACs ratio, kept candidates and provenance. Every base of an
    experiment has the same architecture, so one of them serves as the timing reference for all seeds; and
    runs with the same architecture (:func:`darc.bench.signature.architecture_signature`: the reference and
    a point that keeps the base, a point every seed decided alike) share one measurement (``timed_as``).
    """
    import pandas as pd

    from darc.bench.signature import architecture_signature
    from darc.io import atomic_write_text

    begin_stage(exp)
    b = exp.get("bench", {})
    threads = int(b.get("threads") or exp.get("threads") or torch.get_num_threads())
    torch.set_num_threads(threads)
    data = load_data(exp)
    base = load_base(exp, base_dir).eval()
    base_result = json.loads((Path(base_dir) / RESULT).read_text()) if (Path(base_dir) / RESULT).exists() else {}
    shape = tuple(data.meta.input_shape)
    batch_sizes = list(b.get("batch_sizes", [1, 64]))
    runs = {str(d): (json.loads((Path(d) / RESULT).read_text()), load_finetuned(d).eval()) for d in finetune_dirs}
    device = experiment_device(exp)
    # Latency and memory depend on the architecture, not the weights: each distinct architecture is measured
    # once (the first run that has it) and every run with it carries that measurement (column timed_as).
    signature = {key: architecture_signature(m) for key, (_, m) in runs.items()}
    timed_as: dict[str, str] = {}
    for key, sig in signature.items():
        timed_as.setdefault(sig, key)
    first = {key: timed_as[sig] for key, sig in signature.items()}
    distinct = {k: runs[k][1] for k in dict.fromkeys(first.values())}
    memory = peak_memory_columns(base, distinct, shape, batch_sizes, threads, device=device,
                                 resident=bool(b.get("peak_memory", True)))
    measured: dict[str, dict[str, Any]] = {}
    prov = {k: v for k, v in stage_record(exp, scale, data, "bench", threads=threads).items() if k != "config"}
    rows = []
    for key, (res, _) in runs.items():
        same_seed = base_result.get("seed", 0) == res.get("base_seed", res.get("seed", 0))
        base_acc = base_result.get("test_acc") if same_seed else None
        row = {
            "experiment": exp.get("stands_for", exp["model"]), "role": res.get("role", "darc"),
            "seed": res.get("seed", 0), "base_seed": res.get("base_seed", res.get("seed", 0)), "lam": res["lam"],
            "arch_cost": res.get("arch_cost"),
            "val_acc": res.get("val_acc"), "test_acc": res["test_acc"], "base_test_acc": base_acc,
            "test_acc_before_finetune": res["test_acc_before_finetune"],
            "acc_change": None if base_acc is None else res["test_acc"] - base_acc,
            "kept_slots": sum(1 for v in res["kept"].values() if v) if res["kept"] else None,
            "total_slots": len(res["kept"]) or None, "kept": json.dumps(res["kept"]),
            **{f"slots_{k}": v if res["kept"] else None  # a pruned network has no slots
               for k, v in slot_decisions(res["kept"]).items() if k != "replaced_by"},
            "replaced_by": json.dumps(slot_decisions(res["kept"])["replaced_by"]),
            **{k: res[k] for k in (*PEER_COLUMNS, *RECIPE_COLUMNS, "recipe") if k in res},
        }
        if first[key] not in measured:
            measured[first[key]] = compare_to_base(
                base, runs[first[key]][1], shape, batch_sizes=batch_sizes, threads=threads,
                pairs=int(b.get("pairs", 10)), min_block_time=float(b.get("min_block_time", 0.05)), device=device,
            )
        row.update(measured[first[key]])
        row["timed_as"] = first[key]  # the run whose measurement this row carries (itself, or one of its architecture)
        row.update(memory[first[key]])
        row.update(prov)
        row["config"] = json.dumps(exp, sort_keys=True)
        rows.append(row)
    frame = pd.DataFrame(rows).sort_values(["role", "seed", "lam"], kind="stable")
    atomic_write_text(frame.to_csv(index=False), out_csv)
    return rows
