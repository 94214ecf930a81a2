"""The DARC search: train gates (and, by default, weights) under the cost-weighted l1 penalty, then materialise.

:func:`run_search` gates a trained base network, measures candidate costs, trains with
:func:`darc.train.fit` using the proximal gate step of :mod:`darc.penalty`, logs every gate every
epoch (``gates.jsonl``, for the gate-trajectory figure), and writes the materialised network
(``materialized/architecture.json`` + ``materialized/weights.pt``) and a ``search.json`` summary.
Everything is written atomically; a killed search resumes from its checkpoint.
:func:`finetune` trains a materialised network without penalty, reusing the same training loop.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from darc.compressor import (
    Compressor,
    calibration_batch,
    kept_labels,
    slot_decisions,
)
from darc.costs import CostContext, architecture_cost, assign_costs
from darc.gates import DEFAULT_CANDIDATES, gate_model, gate_table, gated_slots
from darc.io import atomic_torch_save, atomic_write_json, atomic_write_text, fingerprint
from darc.materialize import load_materialized, save_materialized
from darc.penalty import check_lam, gate_penalty, search_param_groups
from darc.train import TrainConfig, fit
from darc.train import distributed as D

#: What the search does with the network's weights. ``train``: they learn beside the gates (the paper's
#: joint search). ``frozen``: only the gates learn; every other parameter keeps the base's (and the
#: distilled alternatives') values. Batch-norm statistics still track the gated network in both.
SEARCH_WEIGHTS = frozenset({"train", "frozen"})

#: What the search hands to the fine-tune. ``searched``: the search's network, each surviving gate folded into
#: its candidate's weights (the paper). ``rebuilt``: the search only decides; the network is rebuilt from the
#: one the search started from (the base and the distilled alternatives, batch-norm statistics included), each
#: slot's surviving candidates at full strength (their gates rescaled to sum to 1, as the gates did at the
#: start). Under an l1 penalty the gates shrink as well as select (the lasso's bias); ``rebuilt`` keeps the
#: selection and undoes the shrinkage, as a relaxed lasso refits.
SEARCH_HANDOFFS = frozenset({"searched", "rebuilt"})


@dataclass
class SearchConfig:
    """Everything the search needs besides the base network and the data (documented defaults)."""

    lam: float = 1.0
    cost_model: str = "params"
    slots: Any = "branch"
    candidates: list[Any] = field(default_factory=lambda: list(DEFAULT_CANDIDATES))
    original_gate: float = 1.0
    alternative_gate: float = 0.05
    # How replacement works (chosen by benchmarks/studies/replacement_ablation.py; docs/decisions/replacement.md): every
    # alternative is distilled to mimic its slot, the candidates share the slot's output at the start, and
    # at most one candidate per slot survives the search.
    gate_init: str = "share"  # "share": gates sum to 1; "fixed": original_gate / alternative_gate (darc.gates)
    original_share: float | None = 0.5  # under "share": the original's part (the rest split evenly; None: 1/k)
    distill_steps: int = 100  # block-wise distillation of every alternative before the search
    distill_lr: float = 1e-2
    warmup_epochs: int = 0  # epochs of the search recipe without the penalty, before the search
    weights: str = "train"  # "train": weights and gates learn together (the paper); "frozen": only the gates
    handoff: str = "searched"  # what the fine-tune gets: the "searched" network, or one "rebuilt" (SEARCH_HANDOFFS)
    single_candidate: bool = True  # keep at most one candidate per slot (the largest contribution)
    log_gates_every: int | None = 50  # steps between gate-trajectory rows (epoch ends are always logged)
    lr_gate: float | None = None  # default: the weights' lr
    nonnegative: bool = False
    revive: bool = False
    candidate_weight_decay: float | None = None  # default: train.weight_decay (closes the loophole)
    calibration_samples: int = 64
    cost_batch_size: int = 1
    cost_threads: int | None = None
    cost_device: str | None = None  # where latency costs are measured; default: the search's device
    latency_table: str | None = None
    latency_context: str = "parent"  # marginal latency in the slot's block, or in the "network"; "slot": alone
    latency_pairs: int = 10  # interleaved A/B pairs per latency-table entry
    latency_block_time: float = 0.02  # seconds per timed block of those pairs
    cost_normalisation: str = "network"  # each cost over the base's total, or over its slot's original (NORMALISATIONS)
    lam_warmup_steps: int = 0  # lambda ramps up linearly over the search's first steps (0: full from the start)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        check_lam(self.lam)
        if self.lr_gate is not None and not self.lr_gate > 0:
            raise ValueError(f"lr_gate must be > 0 (or None for the weights' lr), got {self.lr_gate}")
        if self.weights not in SEARCH_WEIGHTS:
            raise ValueError(f"weights must be one of {sorted(SEARCH_WEIGHTS)}, got {self.weights!r}")
        if self.handoff not in SEARCH_HANDOFFS:
            raise ValueError(f"handoff must be one of {sorted(SEARCH_HANDOFFS)}, got {self.handoff!r}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["train"] = self.train.to_dict()
        return d


def gate_for_search(base: nn.Module, data: Any, cfg: SearchConfig) -> nn.Module:
    """Gate ``base`` per ``cfg`` (deterministic for a fixed seed, so a resumed search rebuilds it)."""
    torch.manual_seed(cfg.train.seed)
    calib = calibration_batch(data.train, cfg.calibration_samples) if cfg.calibration_samples else None
    return gate_model(
        base, cfg.slots, cfg.candidates, calibration=calib, example_input=tuple(data.meta.input_shape),
        original_gate=cfg.original_gate, alternative_gate=cfg.alternative_gate, gate_init=cfg.gate_init,
        original_share=cfg.original_share, distill_steps=cfg.distill_steps, distill_lr=cfg.distill_lr,
        revive=cfg.revive,
    )


#: The fields of a :class:`SearchConfig` the gated start (gating and the alternatives' distillation) depends on:
#: every lambda and cost model of one seed starts from the same one (:func:`prepare_gated_start`).
GATING_FIELDS = ("slots", "candidates", "original_gate", "alternative_gate", "gate_init", "original_share",
                 "distill_steps", "distill_lr", "revive", "calibration_samples")


def gating_key(base: nn.Module, cfg: SearchConfig) -> dict[str, Any]:
    """What a gated start is made from: the base's weights, the gating fields and the seed."""
    fields = {k: v for k, v in cfg.to_dict().items() if k in GATING_FIELDS}
    return {"base": fingerprint(base), "seed": cfg.train.seed, **json.loads(json.dumps(fields, default=str))}


def prepare_gated_start(base: nn.Module, data: Any, cfg: SearchConfig, path: str | Path) -> dict[str, Any]:
    """Gate ``base`` and distill its alternatives once (:func:`gate_for_search`), and save the result to
    ``path`` (atomically) for every search of the same seed and gating settings to start from
    (``run_search(..., start=path)``): the distillation is the same for every lambda and cost model."""
    gated = gate_for_search(base, data, cfg)
    errors = {n: [None if e is None else float(e) for e in s.distill_error] for n, s in gated_slots(gated).items()}
    payload = {"key": json.dumps(gating_key(base, cfg), sort_keys=True), "state": gated.state_dict(),
               "distill_error": errors}
    atomic_torch_save(payload, path)
    return {"distill_error": errors, "key": gating_key(base, cfg)}


def load_gated_start(base: nn.Module, data: Any, cfg: SearchConfig, path: str | Path) -> nn.Module:
    """The gated network :func:`prepare_gated_start` saved to ``path``; refuses one made from another base,
    seed or gating settings (the search would silently start from the wrong alternatives)."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    want = gating_key(base, cfg)
    have = json.loads(payload["key"])
    if have != want:
        differ = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
        raise ValueError(f"the gated start {path} was prepared from other settings ({', '.join(differ)} differ): "
                         "prepare it again (`darc gate`) for this base and search config, or search without --start")
    gated = gate_for_search(base, data, replace(cfg, distill_steps=0))
    gated.load_state_dict(payload["state"], strict=True)
    for name, slot in gated_slots(gated).items():
        slot.distill_error = payload["distill_error"][name]
    return gated


def continuation_start(start: str | Path, search_dir: str | Path, path: str | Path) -> Path:
    """A gated start for the next lambda of a continuation: the gated start ``start`` a finished search in
    ``search_dir`` began from, with the gates (and, under ``weights: train``, the weights) that search ended
    with. A search at a higher lambda from it (``run_search(..., start=path)``) begins where this one settled
    instead of from the level start; the gating key is kept, so it is refused for another base or seed."""
    from darc.io import safe_torch_load

    final = Path(search_dir) / "train" / "model.pt"
    if not final.exists():
        raise FileNotFoundError(f"{final} is missing: the search in {search_dir} has not finished; run it first")
    payload = safe_torch_load(start)
    state = safe_torch_load(final)
    if set(state) != set(payload["state"]):
        raise ValueError(f"the search in {search_dir} did not start from {start} (their gated networks differ)")
    atomic_torch_save({**payload, "state": state}, path)
    return Path(path)


def search_optimizer(gated: nn.Module, cfg: SearchConfig) -> torch.optim.Optimizer:
    """SGD over the search parameter groups (gates: no momentum, no weight decay)."""
    t = cfg.train
    groups = search_param_groups(
        gated, lr=t.lr, lr_gate=cfg.lr_gate if cfg.lr_gate is not None else t.lr, weight_decay=t.weight_decay,
        candidate_weight_decay=cfg.candidate_weight_decay, no_wd_on_bn_bias=t.no_wd_on_bn_bias,
    )
    return torch.optim.SGD(groups, lr=t.lr, momentum=t.momentum, nesterov=t.nesterov)


def resolve_cost_device(cfg: SearchConfig, device: str | torch.device | None = None) -> str:
    """Where the latency cost model measures: ``cfg.cost_device`` where it is set (the deployment target
    may differ from the training device), else the device the search runs on (``device``), else ``cpu``."""
    if cfg.cost_device:
        return str(cfg.cost_device)
    return str(device) if device is not None else "cpu"


def run_search(
    base: nn.Module, data: Any, cfg: SearchConfig, out_dir: str | Path, *, resume: bool = True,
    device: str | torch.device | None = None, progress: bool = True, start: str | Path | None = None,
) -> dict[str, Any]:
    """Search, materialise and return a summary (also written to ``out_dir/search.json``).

    ``data`` is a :class:`darc.data.DatasetBundle`. The base network should be trained already. ``start``: a
    gated start saved by :func:`prepare_gated_start` for this base, seed and gating settings (the same search
    as without it, minus the distillation); without it the search gates and distills itself.

    Under ``torchrun`` (DDP): costs are measured once, on rank 0, and shared (:func:`assign_costs`); only
    rank 0 writes; every rank returns the same summary. A candidate whose gate is zero is skipped in the
    forward pass, so its weights get no gradient: the search turns on DDP's ``find_unused_parameters``
    (unless ``revive``, which computes every candidate). Gates are DDP-synchronised parameters and the
    proximal step is deterministic given the shared costs, so every rank keeps the same gates.
    """
    info = D.init_distributed()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    gated = load_gated_start(base, data, cfg, start) if start is not None else gate_for_search(base, data, cfg)
    ctx = CostContext(
        tuple(data.meta.input_shape), batch_size=cfg.cost_batch_size, device=resolve_cost_device(cfg, device),
        threads=cfg.cost_threads, table_path=cfg.latency_table, context=cfg.latency_context,
        pairs=cfg.latency_pairs, min_block_time=cfg.latency_block_time,
    )
    cost_report = assign_costs(gated, base, cfg.cost_model, ctx, cfg.cost_normalisation)
    compressor = Compressor.from_gated(
        gated, lam=cfg.lam, calibration=calibration_batch(data.train, max(cfg.calibration_samples, 1)),
        weights=cfg.weights, handoff=cfg.handoff, single_candidate=cfg.single_candidate, nonnegative=cfg.nonnegative,
        cost_model=cfg.cost_model, lam_warmup_steps=cfg.lam_warmup_steps,
    )
    if info.is_main:
        atomic_write_json(cost_report, out / "costs.json")
    gates_log = GateLog(out / "gates.jsonl", enabled=info.is_main)
    per_epoch = _steps_per_epoch(data, cfg.train, info.world_size)

    def phase_hooks(phase: str, offset: int) -> dict[str, Any]:
        """fit's hooks that log gates every ``log_gates_every`` steps and at epoch ends, on one time axis
        (epochs since the search began, warm-up included)."""

        def on_step(epoch: int, step: int, stats: Any) -> None:
            if cfg.log_gates_every and step % cfg.log_gates_every == 0 and step < per_epoch:
                gates_log.write(offset + epoch + step / per_epoch, phase, gated)

        def on_epoch_end(epoch: int, model: nn.Module, row: dict[str, Any]) -> None:
            gates_log.write(offset + epoch + 1, phase, model)
            row["arch_cost"] = architecture_cost(model)
            row["penalty"] = float(gate_penalty(model, cfg.lam).detach())
            row["zero_gates"] = sum(int((s.gate == 0).sum()) for s in gated_slots(model).values())

        return {"on_step": on_step, "on_epoch_end": on_epoch_end}

    # what this search is made from; a rerun with other inputs starts afresh instead of resuming (costs
    # re-measured without a table are noise, not an input)
    measured_anew = cfg.cost_model == "latency" and not cfg.latency_table
    run_fingerprint = fingerprint(cfg.to_dict(), base, None if measured_anew else cost_report)
    marker = out / "fingerprint.txt"
    same_inputs = marker.exists() and marker.read_text().strip() == run_fingerprint
    if info.is_main and (not gates_log.path.exists() or not resume or not same_inputs):
        gates_log.write(0.0, "start", gated)
        atomic_write_text(run_fingerprint + "\n", marker)
    train = cfg.train
    if info.distributed and not cfg.revive:
        train = replace(train, ddp_find_unused_parameters=True)
    if cfg.lam_warmup_steps and resume and same_inputs:  # the ramp goes on where the killed search left it
        compressor.steps = _resumed_steps(out / "train", per_epoch)
    if cfg.warmup_epochs:  # the same recipe without the proximal step: alternatives learn before the penalty
        fit(gated, data, replace(train, epochs=cfg.warmup_epochs), out / "warmup", resume=resume,
            device=device, optimizer=search_optimizer(gated, cfg), progress=progress,
            fingerprint=run_fingerprint, **phase_hooks("warmup", 0))
    result = fit(
        gated, data, train, out / "train", resume=resume, device=device,
        optimizer=search_optimizer(gated, cfg), step_hook=compressor.step,
        progress=progress, fingerprint=run_fingerprint, **phase_hooks("search", cfg.warmup_epochs),
    )
    if compressor.steps == 0:  # the search had finished in an earlier process: fit resumed its final state
        compressor.mark_searched(1)
    compressed = compressor.compress()
    plain, arch = compressed.model, compressed.architecture
    searched_gates = compressed.report["final_gates"]
    arch_path, weights_path = out / "materialized" / "architecture.json", out / "materialized" / "weights.pt"
    if info.is_main:
        arch_path, weights_path = save_materialized(plain, arch, out / "materialized")
    summary = {
        "lam": cfg.lam, "cost_model": cfg.cost_model, "arch_cost": architecture_cost(gated),
        "final_gates": searched_gates, "handoff": cfg.handoff, "metrics": result["metrics"],
        "kept": kept_labels(arch), "decisions": slot_decisions(kept_labels(arch)),
        "distill_error": {n: dict(zip(s.labels, s.distill_error)) for n, s in gated_slots(gated).items()},
        "architecture": str(arch_path), "weights": str(weights_path), "config": cfg.to_dict(),
    }
    if info.is_main:
        atomic_write_json(summary, out / "search.json")
    D.barrier()  # the other ranks may read what rank 0 wrote (a fine-tune in the same job)
    return summary


class GateLog:
    """``gates.jsonl``: one row per (time, slot, candidate) with the gate and its cost; ``t`` counts epochs
    since the search began (warm-up included). A write at time ``t`` first drops rows at ``t`` or later, so
    a resumed search does not keep what a killed one logged past its checkpoint."""

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path, self.enabled = path, enabled

    def write(self, t: float, phase: str, model: nn.Module) -> None:
        if not self.enabled:
            return
        rows = [{"t": round(t, 6), "epoch": int(t), "phase": phase, **r} for r in gate_table(model)]
        lines = self.path.read_text().splitlines() if self.path.exists() else []
        lines = [ln for ln in lines if json.loads(ln).get("t", -1) < t] + [json.dumps(r) for r in rows]
        atomic_write_text("\n".join(lines) + "\n", self.path)


def _resumed_steps(train_dir: Path, per_epoch: int) -> int:
    """Optimizer steps a search's checkpoint in ``train_dir`` had taken (0 without one)."""
    from darc.io import safe_torch_load

    path = train_dir / "checkpoint.pt"
    if not path.exists():
        return 0
    ck = safe_torch_load(path)
    return int(ck["epoch"]) * per_epoch + int(ck["step_in_epoch"])


def _steps_per_epoch(data: Any, cfg: TrainConfig, world_size: int) -> int:
    steps = len(data.train) // world_size // cfg.batch_size
    return max(1, min(steps, cfg.max_steps_per_epoch or steps))


def finetune(
    arch_path: str | Path, weights_path: str | Path, data: Any, cfg: TrainConfig, out_dir: str | Path, *,
    base_model: nn.Module | None = None, resume: bool = True, device: str | torch.device | None = None,
    progress: bool = True, teacher: nn.Module | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Fine-tune a materialised network (no penalty, no gates) with :func:`darc.train.fit` (``teacher``: the
    network ``cfg.distill`` distils from)."""
    model = load_materialized(arch_path, weights_path, base_model=base_model)
    arch = json.loads(Path(arch_path).read_text())
    result = fit(model, data, cfg, out_dir, resume=resume, device=device, progress=progress,
                 fingerprint=fingerprint(arch, model), teacher=teacher)
    return model, result
