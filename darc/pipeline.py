"""``darc.compress``: one call from a trained network and its data to a smaller, fine-tuned, measured network.

    result = darc.compress(model, train_loader, target="latency:1.5", val_loader=val_loader)
    result.model                      # a plain nn.Module
    result.report["measured"]         # the ratio reached, with its spread, at the stated threads
    result.save("out/")

Steps: gate the network once (:class:`darc.Compressor`; the alternatives distilled on real inputs), find lambda
for the target (:func:`darc.target.search_lambda`: a frozen-weights search per lambda, each distinct architecture
timed once in interleaved A/B pairs), materialise the chosen one, fine-tune it with the post-compression recipe
(:data:`DEFAULT_FINETUNE`: logit distillation from the original, cosine from lr 0.02 with warm-up) and report.
"""

from __future__ import annotations

import copy
import math
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from darc.compressor import CompressionResult, Compressor, calibration_batch
from darc.costs import CostContext
from darc.gates import DEFAULT_CANDIDATES
from darc.target import Target, measure, search_lambda
from darc.train import TrainConfig, fit
from darc.train.distill import Distill

#: The fine-tune :func:`compress` gives by default: the recipe the workflow's CIFAR protocol uses (logit
#: distillation from the uncompressed network, alpha 0.9, T 4; cosine from lr 0.02 with 5 % warm-up).
DEFAULT_FINETUNE = TrainConfig(epochs=1, lr=0.02, warmup_epochs=0.05, schedule="cosine", momentum=0.9,
                               weight_decay=5e-4, distill=Distill(alpha=0.9, temperature=4.0), log_every=10**9)

#: The target metric -> the cost model the search prices candidates with.
COST_MODEL_FOR = {"latency": "latency", "param_bytes": "params", "macs": "macs", "lam": "params"}


def _steps(cfg: TrainConfig, loader: DataLoader, steps: int) -> TrainConfig:
    """``cfg`` cut to ``steps`` optimizer steps over ``loader`` (whole epochs of at most ``len(loader)`` steps)."""
    per_epoch = min(steps, len(loader))
    return replace(cfg, epochs=math.ceil(steps / per_epoch), max_steps_per_epoch=per_epoch)


def predicted_ratio(costs: dict[str, Any], kept: dict[str, list[str]]) -> float:
    """The base / compressed ratio the cost model predicts for an architecture: one minus the normalised costs
    saved (each slot's original minus what it keeps; a dropped slot keeps nothing), inverted."""
    saved = 0.0
    for slot, labels in kept.items():
        cand = costs["slots"][slot]
        saved += cand["original"]["normalized"] - sum(cand[label]["normalized"] for label in labels)
    return 1.0 / max(1.0 - saved, 1e-9)


def _input_shape(example_input: Any, calib: torch.Tensor) -> tuple[int, ...]:
    if example_input is None:
        return tuple(calib.shape[1:])
    return tuple(example_input.shape[1:]) if isinstance(example_input, torch.Tensor) else tuple(example_input)


@torch.no_grad()
def accuracy(model: nn.Module, loader: DataLoader, device: str = "cpu") -> float:
    """Top-1 accuracy of ``model`` (eval mode) over ``loader``."""
    model.eval().to(device)
    correct = total = 0
    for x, y in loader:
        correct += int((model(x.to(device)).argmax(1) == y.to(device)).sum())
        total += len(y)
    return correct / max(total, 1)


def compress(
    model: nn.Module, train_loader: DataLoader, *, target: str | Target, val_loader: DataLoader | None = None,
    example_input: torch.Tensor | tuple[int, ...] | None = None, slots: Any = "branch",
    candidates: Sequence[Any] = DEFAULT_CANDIDATES, search_steps: int = 300, search_lr: float = 0.005,
    gate_lr: float = 0.05, finetune_steps: int = 300, finetune: TrainConfig | None = None,
    lam_range: tuple[float, float] = (0.01, 100.0), max_tries: int = 8, tolerance: float = 0.05,
    threads: int = 1, pairs: int = 10, out_dir: str | Path | None = None, device: str = "cpu",
    progress: bool = False, **gating: Any,
) -> CompressionResult:
    """Compress ``model`` (trained; not modified) to ``target`` and return the fine-tuned plain network.

    Args:
        train_loader: the training data (``(input, label)`` batches): calibration, search and fine-tune.
        target: ``"latency:1.5"`` (batch-1 latency ratio, measured), ``"latency@64:1.3"``, ``"bytes:3"``,
            ``"macs:2"`` or ``"lam:2"`` (one search at that lambda), or a :class:`darc.target.Target`.
        val_loader: measures accuracy before and after (the report's ``val_acc``); the fine-tune evaluates on it.
        slots, candidates, **gating: as for :class:`darc.Compressor` (``slots="branch"`` finds the residual
            branches of darc's models and of torchvision/timm blocks).
        search_steps, search_lr, gate_lr: each lambda's search (frozen weights: only the gates learn; the
            weights' lr matters only with ``weights="train"`` in ``gating``).
        finetune_steps, finetune: the post-compression recipe (default :data:`DEFAULT_FINETUNE`), cut to
            ``finetune_steps`` steps; ``finetune_steps=0`` skips the fine-tune.
        lam_range, max_tries, tolerance: the bisection (:func:`darc.target.search_lambda`).
        threads, pairs: latency timing (interleaved A/B pairs at this many threads).
        out_dir: keeps every search and the fine-tune (checkpoints, logs) and the result; default: a temporary one.
    """
    goal = Target.parse(target)
    if search_steps < 1:
        raise ValueError(f"search_steps must be >= 1, got {search_steps}")
    if finetune_steps < 0:
        raise ValueError(f"finetune_steps must be >= 0, got {finetune_steps}")
    if len(train_loader) == 0:
        raise ValueError("train_loader yields no batches: give it the training data")
    base = copy.deepcopy(model).eval()
    calib = calibration_batch(train_loader, int(gating.pop("calibration_samples", 64)))
    shape = _input_shape(example_input, calib)
    weights = gating.pop("weights", "frozen")
    handoff = gating.pop("handoff", "rebuilt" if weights == "frozen" else "searched")
    cost_model = gating.pop("cost_model", COST_MODEL_FOR[goal.metric])
    ctx = CostContext(shape, batch_size=goal.batch_size, threads=threads, device=device)
    torch.manual_seed(0)
    start = Compressor(base, lam=0.0, calibration=calib, slots=slots, candidates=candidates, example_input=shape,
                       cost_model=cost_model, cost_context=ctx, weights="train", handoff="searched", **gating)
    search_cfg = _steps(TrainConfig(lr=search_lr, schedule="constant", momentum=0.9, evaluate=False,
                                    log_every=10**9), train_loader, search_steps)
    results: dict[float, CompressionResult] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(out_dir) if out_dir is not None else Path(tmp)

        def search_at(lam: float) -> tuple[nn.Module, dict[str, Any]]:
            comp = Compressor.from_gated(copy.deepcopy(start.model), lam=lam, calibration=calib, weights=weights,
                                         handoff=handoff, cost_model=cost_model)
            opt = torch.optim.SGD(comp.param_groups(lr=search_lr, lr_gate=gate_lr), lr=search_lr, momentum=0.9)
            fit(comp.model, (train_loader, None), search_cfg, root / "search" / f"lam{lam:.4g}", optimizer=opt,
                step_hook=comp.step, progress=progress, device=device, resume=False)
            results[lam] = comp.compress()
            return results[lam].model, {"decisions": results[lam].report["decisions"]}

        if goal.metric == "lam":
            plain, _ = search_at(goal.value)
            chosen, path = results[goal.value], None
            b, lat = (measure(k, base, plain, shape, threads=threads, pairs=pairs, device=device)
                      for k in ("param_bytes", "latency"))
            measured = {"metric": "latency", "ratio": lat.ratio, "q25": lat.q25, "q75": lat.q75, "threads": threads,
                        "pairs": pairs, "param_bytes_ratio": b.ratio}
        else:
            path = search_lambda(search_at, base, goal, shape, lam_low=lam_range[0], lam_high=lam_range[1],
                                 max_tries=max_tries, tolerance=tolerance, threads=threads, pairs=pairs,
                                 device=device, log=print if progress else None)
            best = path.best_try
            if best is None:
                measured_tries = [t for t in path.tries if not math.isnan(t.ratio)]
                if not measured_tries:
                    raise ValueError(f"every lambda tried in [{lam_range[0]:g}, {lam_range[1]:g}] gave a network that "
                                     "cannot be materialised safely: lower lam_range's lower end")
                top = max(measured_tries, key=lambda t: t.ratio)
                raise ValueError(f"no lambda in [{lam_range[0]:g}, {lam_range[1]:g}] met {goal}: the largest ratio "
                                 f"measured was {top.ratio:.3f} at lambda {top.lam:.4g}; raise lam_range's upper end, "
                                 "add cheaper candidates, or lower the target")
            chosen = results[best.lam]
            measured = {"metric": goal.metric, "ratio": best.ratio, "q25": best.q25, "q75": best.q75,
                        "threads": threads, "pairs": pairs, "noisy": best.info["timing_noisy"]}
        compared = {"latency": measured["ratio"], "params": measured.get("param_bytes_ratio", measured["ratio"]),
                    "macs": measured["ratio"]}.get(cost_model) if COST_MODEL_FOR[goal.metric] == cost_model else None
        if compared is not None:  # what the search's costs promised, beside what was measured
            measured["cost_model_predicted_ratio"] = predicted_ratio(start.report["costs"], chosen.report["kept"])
            measured["cost_model_error"] = measured["cost_model_predicted_ratio"] / compared - 1.0
        report = {**chosen.report, "target": str(goal), "measured": measured, "cost_model": cost_model,
                  "lam_path": None if path is None else path.to_dict(), "threads": threads, "device": device,
                  "torch": torch.__version__, "skipped_candidates": start.report["skipped_candidates"]}
        net = chosen.model
        if val_loader is not None:
            report["base_val_acc"] = accuracy(base, val_loader, device)
            report["searched_val_acc"] = accuracy(net, val_loader, device)
        if finetune_steps:
            cfg = _steps(finetune or DEFAULT_FINETUNE, train_loader, finetune_steps)
            cfg = replace(cfg, evaluate=val_loader is not None)
            fit(net, (train_loader, val_loader), cfg, root / "finetune", progress=progress, device=device,
                resume=False, teacher=base if cfg.distill.active else None)
            report["recipe"] = {"steps": finetune_steps, "lr": cfg.lr, "schedule": cfg.schedule,
                                "warmup_epochs": cfg.warmup_epochs, "distill_alpha": cfg.distill.alpha,
                                "distill_temperature": cfg.distill.temperature}
        if val_loader is not None:
            report["val_acc"] = accuracy(net, val_loader, device)
        result = CompressionResult(net.eval().to("cpu"), chosen.architecture, report)
        if out_dir is not None:
            result.save(Path(out_dir) / "result")
    return result
