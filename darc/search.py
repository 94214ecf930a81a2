"""The DARC search: train weights and gates under the cost-weighted l1 penalty, then materialise.

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

from darc.costs import CostContext, architecture_cost, assign_costs
from darc.gates import DEFAULT_CANDIDATES, gate_model, gate_table, gated_slots
from darc.io import atomic_write_json, atomic_write_text, fingerprint
from darc.materialize import load_materialized, materialize, save_materialized
from darc.penalty import ProximalGateStep, check_lam, gate_penalty, search_param_groups
from darc.train import TrainConfig, fit
from darc.train import distributed as D


@dataclass
class SearchConfig:
    """Everything the search needs besides the base network and the data (documented defaults)."""

    lam: float = 1.0
    cost_model: str = "params"
    slots: Any = "branch"
    candidates: list[Any] = field(default_factory=lambda: list(DEFAULT_CANDIDATES))
    original_gate: float = 1.0
    alternative_gate: float = 0.05
    lr_gate: float | None = None  # default: the weights' lr
    nonnegative: bool = False
    revive: bool = False
    candidate_weight_decay: float | None = None  # default: train.weight_decay (closes the loophole)
    calibration_samples: int = 64
    cost_batch_size: int = 1
    cost_threads: int | None = None
    cost_device: str = "cpu"  # the deployment target the latency cost model measures on
    latency_table: str | None = None
    latency_context: str = "parent"  # "parent": marginal latency in the slot's block; "slot": timed alone
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        check_lam(self.lam)
        if self.lr_gate is not None and not self.lr_gate > 0:
            raise ValueError(f"lr_gate must be > 0 (or None for the weights' lr), got {self.lr_gate}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["train"] = self.train.to_dict()
        return d


def _calibration_batch(dataset: torch.utils.data.Dataset, n: int) -> torch.Tensor:
    n = min(n, len(dataset))
    return torch.stack([dataset[i][0] for i in range(n)])


def gate_for_search(base: nn.Module, data: Any, cfg: SearchConfig) -> nn.Module:
    """Gate ``base`` per ``cfg`` (deterministic for a fixed seed, so a resumed search rebuilds it)."""
    torch.manual_seed(cfg.train.seed)
    calib = _calibration_batch(data.train, cfg.calibration_samples) if cfg.calibration_samples else None
    return gate_model(
        base, cfg.slots, cfg.candidates, calibration=calib, example_input=tuple(data.meta.input_shape),
        original_gate=cfg.original_gate, alternative_gate=cfg.alternative_gate, revive=cfg.revive,
    )


def search_optimizer(gated: nn.Module, cfg: SearchConfig) -> torch.optim.Optimizer:
    """SGD over the search parameter groups (gates: no momentum, no weight decay)."""
    t = cfg.train
    groups = search_param_groups(
        gated, lr=t.lr, lr_gate=cfg.lr_gate if cfg.lr_gate is not None else t.lr, weight_decay=t.weight_decay,
        candidate_weight_decay=cfg.candidate_weight_decay, no_wd_on_bn_bias=t.no_wd_on_bn_bias,
    )
    return torch.optim.SGD(groups, lr=t.lr, momentum=t.momentum, nesterov=t.nesterov)


def run_search(
    base: nn.Module, data: Any, cfg: SearchConfig, out_dir: str | Path, *, resume: bool = True,
    device: str | torch.device | None = None, progress: bool = True,
) -> dict[str, Any]:
    """Search, materialise and return a summary (also written to ``out_dir/search.json``).

    ``data`` is a :class:`darc.data.DatasetBundle`. The base network should be trained already.

    Under ``torchrun`` (DDP): costs are measured once, on rank 0, and shared (:func:`assign_costs`); only
    rank 0 writes; every rank returns the same summary. A candidate whose gate is zero is skipped in the
    forward pass, so its weights get no gradient: the search turns on DDP's ``find_unused_parameters``
    (unless ``revive``, which computes every candidate). Gates are DDP-synchronised parameters and the
    proximal step is deterministic given the shared costs, so every rank keeps the same gates.
    """
    info = D.init_distributed()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    gated = gate_for_search(base, data, cfg)
    ctx = CostContext(
        tuple(data.meta.input_shape), batch_size=cfg.cost_batch_size, device=cfg.cost_device,
        threads=cfg.cost_threads, table_path=cfg.latency_table, context=cfg.latency_context,
    )
    cost_report = assign_costs(gated, base, cfg.cost_model, ctx)
    if info.is_main:
        atomic_write_json(cost_report, out / "costs.json")
    gates_log = out / "gates.jsonl"

    def log_gates(epoch: int, model: nn.Module, row: dict[str, Any]) -> None:
        if info.is_main:
            rows = [{"epoch": epoch, **r} for r in gate_table(model)]
            lines = gates_log.read_text().splitlines() if gates_log.exists() else []
            lines = [ln for ln in lines if json.loads(ln)["epoch"] < epoch] + [json.dumps(r) for r in rows]
            atomic_write_text("\n".join(lines) + "\n", gates_log)
        row["arch_cost"] = architecture_cost(model)
        row["penalty"] = float(gate_penalty(model, cfg.lam).detach())
        row["zero_gates"] = sum(int((s.gate == 0).sum()) for s in gated_slots(model).values())

    # what this search is made from; a rerun with other inputs starts afresh instead of resuming (costs
    # re-measured without a table are noise, not an input)
    measured_anew = cfg.cost_model == "latency" and not cfg.latency_table
    run_fingerprint = fingerprint(cfg.to_dict(), base, None if measured_anew else cost_report)
    marker = out / "fingerprint.txt"
    same_inputs = marker.exists() and marker.read_text().strip() == run_fingerprint
    if info.is_main and (not gates_log.exists() or not resume or not same_inputs):
        log_gates(-1, gated, {})
        atomic_write_text(run_fingerprint + "\n", marker)
    train = cfg.train
    if info.distributed and not cfg.revive:
        train = replace(train, ddp_find_unused_parameters=True)
    result = fit(
        gated, data, train, out / "train", resume=resume, device=device,
        optimizer=search_optimizer(gated, cfg), step_hook=ProximalGateStep(gated, cfg.lam, cfg.nonnegative),
        on_epoch_end=log_gates, progress=progress, fingerprint=run_fingerprint,
    )
    gated.to("cpu").eval()
    plain, arch = materialize(gated)
    arch["search"] = {"lam": cfg.lam, "cost_model": cfg.cost_model, "arch_cost": architecture_cost(gated)}
    arch_path, weights_path = out / "materialized" / "architecture.json", out / "materialized" / "weights.pt"
    if info.is_main:
        arch_path, weights_path = save_materialized(plain, arch, out / "materialized")
    summary = {
        "lam": cfg.lam, "cost_model": cfg.cost_model, "arch_cost": architecture_cost(gated),
        "final_gates": gate_table(gated), "metrics": result["metrics"],
        "kept": {s["name"]: [k["alternative"] + (f"{k['config']}" if k["config"] else "") for k in s["kept"]]
                 for s in arch["slots"]},
        "architecture": str(arch_path), "weights": str(weights_path), "config": cfg.to_dict(),
    }
    if info.is_main:
        atomic_write_json(summary, out / "search.json")
    D.barrier()  # the other ranks may read what rank 0 wrote (a fine-tune in the same job)
    return summary


def finetune(
    arch_path: str | Path, weights_path: str | Path, data: Any, cfg: TrainConfig, out_dir: str | Path, *,
    base_model: nn.Module | None = None, resume: bool = True, device: str | torch.device | None = None,
    progress: bool = True,
) -> tuple[nn.Module, dict[str, Any]]:
    """Fine-tune a materialised network (no penalty, no gates) with :func:`darc.train.fit`."""
    model = load_materialized(arch_path, weights_path, base_model=base_model)
    arch = json.loads(Path(arch_path).read_text())
    result = fit(model, data, cfg, out_dir, resume=resume, device=device, progress=progress,
                 fingerprint=fingerprint(arch, model))
    return model, result
