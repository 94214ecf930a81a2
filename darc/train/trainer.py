"""``fit``: train with checkpoints, exact resume, logs, DDP and hooks for other modules.

Resume is exact: a run killed at any moment and resumed with ``resume=True`` ends with weights
``torch.equal`` to an uninterrupted run's (same machine and thread count). That rests on

* data: the sampler's order is a function of (seed, epoch) and augmentation a function of
  (seed, epoch, index) (:mod:`darc.data.tensor`), and the sampler can start mid-epoch;
* state: model, optimizer, scheduler, scaler and every RNG (per rank) are saved at epoch ends and,
  with ``checkpoint_every_steps``, every so many steps, after the step and its hooks;
* nothing draws random numbers behind the loop's back (loaders own their generators).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from darc.data.base import DatasetBundle
from darc.data.loaders import make_eval_loader, make_loaders, prepare_epoch
from darc.gates import gated_slots
from darc.io import atomic_torch_save, atomic_write_json
from darc.provenance import environment
from darc.train import distributed as D
from darc.train.checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from darc.train.config import TrainConfig
from darc.train.distill import frozen_teacher
from darc.train.engine import EpochStats, LossFn, NonFiniteLossError, evaluate, train_one_epoch
from darc.train.history import LOG_CSV, LOG_JSONL, write_logs
from darc.train.optim import build_optimizer, build_scheduler
from darc.train.rng import configure_determinism, rng_state, seed_everything, set_rng_state

WEIGHTS = "model.pt"
METRICS = "metrics.json"
# Config keys that may change between a run and its resumption without a warning.
RESUME_FREE = {"epochs", "workers", "log_every", "checkpoint_every_steps", "eval_every", "evaluate", "test_batch_size"}


def _loaders(
    data: DatasetBundle | tuple[DataLoader, DataLoader | None], cfg: TrainConfig, info: D.DistInfo
) -> tuple[DataLoader, DataLoader | None, DataLoader | None]:
    """Train, test and (where the bundle holds a validation split) validation loaders."""
    if isinstance(data, DatasetBundle):
        train, test = make_loaders(data, cfg.batch_size, cfg.workers, distributed=info.distributed, seed=cfg.seed,
                                   test_batch_size=cfg.test_batch_size, rank=info.rank, world_size=info.world_size)
        val = None if data.val is None else make_eval_loader(
            data.val, cfg.test_batch_size or cfg.batch_size, cfg.workers, seed=cfg.seed + 2,
            rank=info.rank, world_size=info.world_size)
        return train, test, val
    train, test = data
    return train, test, None


def _sync_buffers(model: nn.Module) -> None:
    """Give every rank rank 0's buffers (BN running stats drift apart between DDP's broadcasts)."""
    if D.get_info().distributed:
        for b in model.buffers():
            dist.broadcast(b, 0)


def _warn_config_change(saved: dict[str, Any], cfg: TrainConfig) -> None:
    now = cfg.to_dict()
    changed = sorted(k for k in now if k not in RESUME_FREE and saved.get(k) != now[k])
    if changed:
        diff = ", ".join(f"{k}: {saved.get(k)!r} -> {now[k]!r}" for k in changed)
        warnings.warn(
            f"resuming with a different config ({diff}); "
            "the result will not equal an uninterrupted run's",
            stacklevel=3,
        )


def _evaluate_all(
    model: nn.Module, test: DataLoader | None, val: DataLoader | None, device: torch.device,
    amp_dtype: torch.dtype | None, channels_last: bool,
) -> dict[str, float]:
    """``test_loss``/``test_acc`` and ``val_loss``/``val_acc`` for the loaders that exist."""
    out: dict[str, float] = {}
    for split, loader in (("val", val), ("test", test)):
        if loader is not None:
            ev = evaluate(model, loader, device, amp_dtype=amp_dtype, channels_last=channels_last)
            out[f"{split}_loss"], out[f"{split}_acc"] = ev["loss"], ev["acc"]
    return out


def cpu_amp_is_native(amp_dtype: torch.dtype) -> bool:
    """Whether this CPU computes ``amp_dtype`` in hardware (bfloat16: AVX512-BF16 or AMX); elsewhere
    autocast emulates it, slower than float32."""
    if amp_dtype != torch.bfloat16:
        return False
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def _warn_if_cpu_amp_emulated(amp_dtype: torch.dtype) -> None:
    if not cpu_amp_is_native(amp_dtype):
        warnings.warn(
            f"amp with {amp_dtype} on this CPU is emulated and slower than float32 (no AVX512-BF16 / AMX): "
            "set amp: false in train, search.train and finetune",
            stacklevel=3,
        )


def find_unused_parameters(model: nn.Module, cfg: TrainConfig) -> bool:
    """DDP's ``find_unused_parameters``: on where ``cfg`` asks, and for a gated model whose zero-gated candidates
    are skipped (no ``revive``): their weights get no gradient, which DDP must be told of."""
    return cfg.ddp_find_unused_parameters or any(not s.revive for s in gated_slots(model).values())


def fit(
    model: nn.Module,
    data: DatasetBundle | tuple[DataLoader, DataLoader | None],
    cfg: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = True,
    device: torch.device | str | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    loss_fn: LossFn | None = None,
    step_hook: Callable[[torch.optim.Optimizer], None] | None = None,
    extra_loss: Callable[[nn.Module], torch.Tensor] | None = None,
    on_epoch_end: Callable[[int, nn.Module, dict[str, Any]], None] | None = None,
    on_step: Callable[[int, int, EpochStats], None] | None = None,
    progress: bool = True,
    fingerprint: str | None = None,
    teacher: nn.Module | None = None,
) -> dict[str, Any]:
    """Train ``model`` per ``cfg``, checkpointing to ``out_dir``; resume from its checkpoint if any.

    Args:
        model: the network (moved to ``device``; wrapped in DDP under torchrun, with
            ``find_unused_parameters`` on for a gated model: :func:`find_unused_parameters`).
        data: a :class:`DatasetBundle` (loaders built with :func:`make_loaders`, seed ``cfg.seed``)
            or ``(train_loader, test_loader_or_None)``; exact mid-epoch resume needs the train
            loader's sampler to be a :class:`darc.data.ResumableSampler`.
        cfg: the recipe.
        out_dir: gets ``checkpoint.pt``, ``log.jsonl``, ``log.csv``, ``model.pt`` (final state
            dict) and ``metrics.json`` (rank 0 only).
        resume: continue from ``out_dir/checkpoint.pt`` when it exists (a finished run returns
            at once); False starts afresh and overwrites.
        device: default ``cuda:LOCAL_RANK`` if CUDA is available, else CPU.
        optimizer: one built by the caller (e.g. :func:`build_optimizer` with extra groups);
            default ``build_optimizer(model, cfg)``. The lr schedule is built on it.
        loss_fn: ``(logits, targets) -> loss``; default cross-entropy with ``cfg.label_smoothing``.
        step_hook: ``step_hook(optimizer)`` after every optimizer step actually taken.
        extra_loss: ``extra_loss(model) -> scalar`` added to the loss (a penalty).
        on_epoch_end: ``on_epoch_end(epoch, model, row)`` after each epoch's evaluation, before
            its checkpoint (``epoch`` 0-based, ``model`` unwrapped, ``row`` the log row).
        on_step: ``on_step(epoch, step_in_epoch, stats)`` after every step (and its checkpoint).
        progress: show a tqdm bar (only on rank 0 and a terminal).
        fingerprint: what the run is made from (:func:`darc.io.fingerprint` of its inputs), stored in
            the checkpoint; a checkpoint with another fingerprint is not resumed (a warning says so) but
            overwritten, so a rerun after its inputs changed starts afresh.
        teacher: the network ``cfg.distill`` distils from (required when ``cfg.distill.alpha > 0``): moved
            to ``device``, frozen and kept in eval mode (:func:`darc.train.distill.frozen_teacher`).

    Returns:
        ``{"metrics": last log row, "history": rows, "paths": {name: path}, "resumed_from":
        {"epoch", "step_in_epoch"} or None, "epochs_run": epochs trained by this call}``.
    """
    out_dir = Path(out_dir)
    if cfg.distill.active and teacher is None:
        raise ValueError(f"distill.alpha is {cfg.distill.alpha} but fit() got no teacher: pass teacher= (the "
                         "trained base the network came from) or set distill.alpha to 0")
    info = D.init_distributed()
    device = torch.device(device) if device is not None else D.default_device(info)
    configure_determinism(cfg.deterministic)
    amp_dtype = getattr(torch, cfg.amp_dtype) if cfg.amp else None
    if amp_dtype is not None and device.type == "cpu":
        _warn_if_cpu_amp_emulated(amp_dtype)
    channels_last = cfg.channels_last
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    if teacher is not None and cfg.distill.active:
        frozen_teacher(teacher).to(device)
        if channels_last:
            teacher.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    else:
        teacher = None  # distillation off: the teacher is never evaluated

    train_loader, test_loader, val_loader = _loaders(data, cfg, info)
    prepare_epoch(train_loader, 0, 0)
    steps_per_epoch = len(train_loader)
    if cfg.max_steps_per_epoch is not None:
        steps_per_epoch = min(steps_per_epoch, cfg.max_steps_per_epoch)
    if steps_per_epoch < 1:
        raise ValueError(
            f"the train loader yields no full batch (batch_size {cfg.batch_size}, "
            f"{len(train_loader.dataset)} samples per {info.world_size} process(es)): "  # type: ignore[arg-type]
            "lower batch_size or use more data"
        )
    optimizer = optimizer if optimizer is not None else build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg, steps_per_epoch)
    scaler = torch.amp.GradScaler(device.type) if amp_dtype == torch.float16 else None
    seed_everything(cfg.seed + info.rank)

    ckpt_path = out_dir / CHECKPOINT
    start_epoch, start_step = 0, 0
    history: list[dict[str, Any]] = []
    saved_progress: dict[str, Any] | None = None
    resumed_from = None
    ck = load_checkpoint(ckpt_path) if resume and ckpt_path.exists() else None
    if ck is not None and fingerprint is not None and ck.get("fingerprint") != fingerprint:
        warnings.warn(
            f"{ckpt_path} was made from other inputs (fingerprint {ck.get('fingerprint')}, now {fingerprint}): "
            "starting afresh and overwriting it", stacklevel=2,
        )
        ck = None
    if ck is not None:
        _warn_config_change(ck["config"], cfg)
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        scheduler.load_state_dict(ck["scheduler"])
        if scaler is not None and ck["scaler"] is not None:
            scaler.load_state_dict(ck["scaler"])
        start_epoch, start_step = int(ck["epoch"]), int(ck["step_in_epoch"])
        history = list(ck.get("history", []))
        if start_step and info.is_main:
            saved_progress = ck.get("progress")
        ranks = ck.get("rng_ranks") or []
        set_rng_state(ranks[info.rank] if len(ranks) == info.world_size else ck["rng"])
        resumed_from = {"epoch": start_epoch, "step_in_epoch": start_step}
    net = D.wrap_ddp(model, device, find_unused_parameters(model, cfg))

    def save(epoch: int, step: int, stats: EpochStats | None) -> None:
        """Collective (every rank calls it); rank 0 writes."""
        rngs = D.gather_objects(rng_state())
        progress_state = None
        if stats is not None:
            s = stats.state()
            s["loss_sum"], s["correct"], s["samples"], s["penalty_sum"] = D.all_sum(
                [s["loss_sum"], s["correct"], float(s["samples"]), s["penalty_sum"]], device)
            s["samples"] = int(s["samples"])
            progress_state = s
        if info.is_main:
            save_checkpoint({
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict() if scaler else None,
                "epoch": epoch, "step_in_epoch": step, "config": cfg.to_dict(),
                "metrics": history[-1] if history else {}, "history": history, "progress": progress_state,
                "rng": rngs[0], "rng_ranks": rngs, "fingerprint": fingerprint,
            }, ckpt_path)

    epochs_run = 0
    for epoch in range(start_epoch, cfg.epochs):
        first = epoch == start_epoch
        s0 = start_step if first else 0
        stats = EpochStats(**saved_progress) if first and saved_progress else EpochStats()
        lr = scheduler.base_lrs[0] * scheduler.lr_lambdas[0](epoch * steps_per_epoch)  # first group's, step 0
        t_epoch = time.perf_counter()

        def _on_step(step: int, st: EpochStats, epoch: int = epoch) -> None:
            every = cfg.checkpoint_every_steps
            if every and step % every == 0 and step < steps_per_epoch:
                save(epoch, step, st)
            if on_step is not None:
                on_step(epoch, step, st)

        try:
            stats = train_one_epoch(
                net, train_loader, optimizer, loss_fn=loss_fn, device=device, epoch=epoch,
                scheduler=scheduler, scaler=scaler, mixup_alpha=cfg.mixup_alpha,
                label_smoothing=cfg.label_smoothing, on_step=_on_step, start_step=s0,
                log_every=cfg.log_every, max_steps=cfg.max_steps_per_epoch, step_hook=step_hook,
                extra_loss=extra_loss, amp_dtype=amp_dtype, channels_last=channels_last, stats=stats,
                progress=progress, teacher=teacher, distill=cfg.distill,
            )
        except NonFiniteLossError as exc:
            where = (f"The last good checkpoint {ckpt_path} is untouched: fix the cause and rerun to resume "
                     "from it." if ckpt_path.exists() else "No checkpoint had been written yet.")
            raise NonFiniteLossError(f"{exc} {where}") from None
        _sync_buffers(model)
        loss_sum, correct, samples, pen = D.all_sum(
            [stats.loss_sum, stats.correct, float(stats.samples), stats.penalty_sum], device)
        n = max(samples, 1.0)
        row: dict[str, Any] = {
            "epoch": epoch + 1, "train_loss": loss_sum / n, "train_acc": correct / n,
            "train_penalty": pen / max(stats.steps * info.world_size, 1), "val_loss": None, "val_acc": None,
            "test_loss": None, "test_acc": None, "lr": lr, "steps": stats.steps, "seconds": stats.seconds,
            "img_per_s": samples / stats.seconds if stats.seconds > 0 else 0.0,
        }
        if cfg.evaluate and ((epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs):
            row.update(_evaluate_all(model, test_loader, val_loader, device, amp_dtype, channels_last))
        row["epoch_seconds"] = time.perf_counter() - t_epoch
        history.append(row)
        if on_epoch_end is not None:
            on_epoch_end(epoch, model, row)
        save(epoch + 1, 0, None)
        if info.is_main:
            write_logs(history, out_dir)
        epochs_run += 1

    if not history and test_loader is not None and cfg.evaluate:  # nothing trained: report the model as it is
        history.append({"epoch": 0, **_evaluate_all(model, test_loader, val_loader, device, amp_dtype, channels_last)})
    final = history[-1] if history else {}
    paths = {"out_dir": out_dir, "checkpoint": ckpt_path, "weights": out_dir / WEIGHTS,
             "log_jsonl": out_dir / LOG_JSONL, "log_csv": out_dir / LOG_CSV, "metrics": out_dir / METRICS}
    if info.is_main:
        atomic_torch_save(model.state_dict(), paths["weights"])
        write_logs(history, out_dir)
        meta = data.meta.to_dict() if isinstance(data, DatasetBundle) else None
        atomic_write_json({"metrics": final, "epochs": cfg.epochs, "config": cfg.to_dict(), "dataset": meta,
                           "world_size": info.world_size, "environment": environment(device)},
                          paths["metrics"])
    D.barrier()
    return {"metrics": final, "history": history, "paths": {k: str(v) for k, v in paths.items()},
            "resumed_from": resumed_from, "epochs_run": epochs_run}
