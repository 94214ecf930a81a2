"""DDP under ``torchrun``: detect its environment, start the process group, wrap the model.

``torchrun --nproc_per_node=N ...`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; without them
everything here is a no-op (one process, rank 0). The backend is NCCL on CUDA, gloo on CPU. Only
rank 0 writes checkpoints and logs (:func:`is_main_process`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_info() -> DistInfo:
    """What torchrun's environment variables say (one process when they are absent)."""
    return DistInfo(
        rank=int(os.environ.get("RANK", 0)),
        world_size=int(os.environ.get("WORLD_SIZE", 1)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
    )


def get_info() -> DistInfo:
    """The initialised process group's view, else the environment's."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), env_info().local_rank)
    return env_info()


def is_main_process() -> bool:
    return get_info().is_main


def init_distributed(backend: str | None = None) -> DistInfo:
    """Start the process group when launched by torchrun with WORLD_SIZE > 1 (idempotent)."""
    info = env_info()
    if not info.distributed or (dist.is_available() and dist.is_initialized()):
        return get_info()
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(info.local_rank)
    dist.init_process_group(backend=backend or ("nccl" if cuda else "gloo"))
    return get_info()


def default_device(info: DistInfo | None = None) -> torch.device:
    """``cuda:LOCAL_RANK`` when CUDA is available, else the CPU."""
    info = info or get_info()
    return torch.device("cuda", info.local_rank) if torch.cuda.is_available() else torch.device("cpu")


def wrap_ddp(model: nn.Module, device: torch.device, find_unused_parameters: bool = False) -> nn.Module:
    """``DistributedDataParallel(model)`` when distributed (rank 0's weights broadcast), else ``model``."""
    if not get_info().distributed:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(
        model, device_ids=ids, find_unused_parameters=find_unused_parameters
    )


def barrier() -> None:
    if get_info().distributed:
        dist.barrier()


def all_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum a list of numbers over ranks (identity in one process)."""
    if not get_info().distributed:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (``[obj]`` in one process)."""
    info = get_info()
    if not info.distributed:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def cleanup() -> None:
    """Destroy the process group if one was started."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
