"""One epoch of training and one evaluation, as plain functions (torchvision reference style)."""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from darc.data.loaders import prepare_epoch
from darc.train.distill import Distill, distillation_loss, teacher_logits

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; training stopped before the bad step touched the weights."""


@dataclass
class EpochStats:
    """Running sums over one epoch's training steps (resumable: stored in mid-epoch checkpoints)."""

    loss_sum: float = 0.0
    correct: float = 0.0
    samples: int = 0
    penalty_sum: float = 0.0
    steps: int = 0
    seconds: float = 0.0

    def update(self, loss: float, correct: float, n: int, penalty: float) -> None:
        self.loss_sum += loss * n
        self.correct += correct
        self.samples += n
        self.penalty_sum += penalty
        self.steps += 1

    def state(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> dict[str, float]:
        """Means: ``loss`` (task loss), ``acc``, ``penalty`` (per step), and throughput."""
        n, s = max(self.samples, 1), max(self.steps, 1)
        return {
            "loss": self.loss_sum / n, "acc": self.correct / n, "penalty": self.penalty_sum / s,
            "steps": self.steps, "samples": self.samples, "seconds": self.seconds,
            "img_per_s": self.samples / self.seconds if self.seconds > 0 else 0.0,
        }


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DDP (or similar ``.module``) wrapper."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def mixup(
    x: torch.Tensor, y: torch.Tensor, alpha: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Mixup (Zhang et al. 2018): lam ~ Beta(alpha, alpha), x <- lam x + (1 - lam) x[perm].

    Draws from torch's global CPU generator only (saved in checkpoints), on any device.
    """
    a = torch.tensor(float(alpha))
    lam = float(torch.distributions.Beta(a, a).sample())
    perm = torch.randperm(x.shape[0]).to(x.device, non_blocking=True)
    return lam * x + (1.0 - lam) * x[perm], y, y[perm], lam


def _to_device(x: torch.Tensor, y: torch.Tensor, device: torch.device, channels_last: bool):
    x = x.to(device, non_blocking=True)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y.to(device, non_blocking=True)


def _autocast(device: torch.device, amp_dtype: torch.dtype | None):
    if amp_dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=amp_dtype)


def _progress(total: int, initial: int, desc: str, enabled: bool) -> tqdm:
    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    return tqdm(total=total, initial=initial, desc=desc, leave=False, dynamic_ncols=True,
                disable=not (enabled and rank == 0 and sys.stderr.isatty()))


def train_one_epoch(
    model: nn.Module,
    loader: torch.utils.data.DataLoader,
    optimizer: torch.optim.Optimizer,
    *,
    loss_fn: LossFn | None = None,
    device: torch.device | str,
    epoch: int,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    scaler: torch.amp.GradScaler | None = None,
    mixup_alpha: float = 0.0,
    label_smoothing: float = 0.0,
    on_step: Callable[[int, EpochStats], None] | None = None,
    start_step: int = 0,
    log_every: int = 50,
    max_steps: int | None = None,
    step_hook: Callable[[torch.optim.Optimizer], None] | None = None,
    extra_loss: Callable[[nn.Module], torch.Tensor] | None = None,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    stats: EpochStats | None = None,
    progress: bool = True,
    teacher: nn.Module | None = None,
    distill: Distill | None = None,
) -> EpochStats:
    """Train ``model`` for one epoch (or what is left of it from ``start_step``).

    Per step: forward (under autocast when ``amp_dtype``), loss = ``loss_fn`` (cross-entropy with
    ``label_smoothing`` by default; mixed targets under mixup), mixed with logit distillation from
    ``teacher`` on the same (mixed) inputs where ``distill`` is on (:mod:`darc.train.distill`),
    + ``extra_loss(model)``, a finiteness check (:class:`NonFiniteLossError` before any weight changes),
    backward, ``optimizer.step()`` (through ``scaler`` if given), ``step_hook(optimizer)`` when the step was taken,
    ``scheduler.step()``, then ``on_step(steps_done_in_epoch, stats)``.

    The loader is set to ``epoch`` and, when its sampler can (:func:`darc.data.prepare_epoch`),
    starts at batch ``start_step``; otherwise the first ``start_step`` batches are read and dropped.
    ``stats`` continues the running sums of an interrupted epoch.
    """
    device = torch.device(device)
    model.train()
    inner = unwrap(model)
    crit = loss_fn or nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    distill = distill or Distill()
    if distill.active and teacher is None:
        raise ValueError("distill.alpha > 0 needs a teacher: pass teacher= (the trained base) or set distill.alpha 0")
    stats = stats if stats is not None else EpochStats()
    skipped = prepare_epoch(loader, epoch, start_step)
    total = len(loader) + (start_step if skipped else 0)
    if max_steps is not None:
        total = min(total, max_steps)
    batches = iter(loader) if skipped else itertools.islice(iter(loader), start_step, None)
    step = start_step
    bar = _progress(total, start_step, f"epoch {epoch + 1}", progress)
    t0 = time.perf_counter()
    try:
        for x, y in batches:
            if step >= total:
                break
            x, y = _to_device(x, y, device, channels_last)
            with _autocast(device, amp_dtype):
                if mixup_alpha > 0:
                    x, ya, yb, lam = mixup(x, y, mixup_alpha)
                    out = model(x)
                    loss = lam * crit(out, ya) + (1.0 - lam) * crit(out, yb)
                else:
                    out = model(x)
                    loss = crit(out, y)
                if distill.active:
                    loss = distillation_loss(loss, out, teacher_logits(teacher, x), distill)
            penalty = extra_loss(inner) if extra_loss is not None else None
            total_loss = loss if penalty is None else loss + penalty
            loss_val, pen_val = float(loss.detach()), float(penalty.detach()) if penalty is not None else 0.0
            if not torch.isfinite(total_loss.detach()):
                raise NonFiniteLossError(
                    f"non-finite loss at epoch {epoch + 1}, step {step + 1} (task loss {loss_val}, "
                    f"extra loss {pen_val}, lr {optimizer.param_groups[0]['lr']:.4g}); stopped before "
                    "updating the weights. Lower the learning rate (or add warm-up), check the data for "
                    "NaN/inf and its normalisation, and with AMP try amp_dtype 'bfloat16' or amp off."
                )
            optimizer.zero_grad(set_to_none=True)
            if not total_loss.requires_grad:  # nothing on the loss's path learns: a frozen-weight search
                stepped = False               # whose gates are all zero (every branch dropped)
            elif scaler is not None:
                scaler.scale(total_loss).backward()
                before = scaler.get_scale()
                scaler.step(optimizer)
                scaler.update()
                stepped = scaler.get_scale() >= before  # a skipped (inf-grad) step lowers the scale
            else:
                total_loss.backward()
                optimizer.step()
                stepped = True
            if stepped and step_hook is not None:
                step_hook(optimizer)
            if scheduler is not None:
                scheduler.step()
            with torch.no_grad():
                pred = out.argmax(1)
                if mixup_alpha > 0:
                    correct = lam * float((pred == ya).sum()) + (1.0 - lam) * float((pred == yb).sum())
                else:
                    correct = float((pred == y).sum())
            step += 1
            stats.update(loss_val, correct, int(y.shape[0]), pen_val)
            bar.update(1)
            if step % max(log_every, 1) == 0:
                bar.set_postfix(loss=f"{loss_val:.4f}", lr=f"{optimizer.param_groups[0]['lr']:.4g}")
            if on_step is not None:
                stats.seconds += time.perf_counter() - t0
                t0 = time.perf_counter()
                on_step(step, stats)
                t0 = time.perf_counter()
    finally:
        bar.close()
    stats.seconds += time.perf_counter() - t0
    return stats


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: torch.utils.data.DataLoader,
    device: torch.device | str,
    *,
    loss_fn: LossFn | None = None,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
    max_batches: int | None = None,
) -> dict[str, float]:
    """Mean loss and top-1 accuracy over ``loader`` (summed over ranks when distributed)."""
    device = torch.device(device)
    model.eval()
    crit = loss_fn or nn.CrossEntropyLoss()
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss_sum, correct, n
    for i, (x, y) in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            break
        x, y = _to_device(x, y, device, channels_last)
        with _autocast(device, amp_dtype):
            out = model(x)
        loss = crit(out.float(), y)
        sums += torch.stack([loss.double() * y.shape[0], (out.argmax(1) == y).sum().double(),
                             torch.tensor(float(y.shape[0]), dtype=torch.float64, device=device)])
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(sums)
    loss_sum, correct, n = sums.tolist()
    return {"loss": loss_sum / max(n, 1.0), "acc": correct / max(n, 1.0), "n": int(n)}
