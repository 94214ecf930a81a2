"""The environment every benchmark record carries, and explicit thread control.

Builds on :func:`darc.provenance.environment` (device name, CPU model, torch version, git commit, ...)
and adds the facts that change a timing: threads, dtype, batch size and memory format.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from darc.provenance import environment

#: Keys present in every benchmark record (``None`` where a fact does not apply, e.g. ``batch_size`` of
#: a batch-independent metric such as parameter bytes).
ENV_KEYS = (
    "device",
    "device_name",
    "cpu_model",
    "threads",
    "torch",
    "dtype",
    "batch_size",
    "channels_last",
    "git_commit",
)


def dtype_name(dtype: torch.dtype | str) -> str:
    """``torch.float32`` -> ``"float32"`` (strings pass through, minus a ``torch.`` prefix)."""
    return str(dtype).removeprefix("torch.")


def resolve_threads(threads: int | None) -> int:
    """The thread count to use: ``threads`` if given (must be >= 1), else torch's current setting."""
    if threads is None:
        return torch.get_num_threads()
    if int(threads) < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    return int(threads)


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the body with ``torch.set_num_threads(threads)``; restore the previous count afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def resolve_device(device: str | torch.device) -> torch.device:
    """A concrete device (``cuda`` becomes ``cuda:<current>``) with a clear error if it is missing."""
    device = torch.device(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {device} requested but CUDA is not available")
        if device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
    return device


def synchronize(device: str | torch.device) -> None:
    """Wait for queued work on ``device`` (a no-op on CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type != "cpu" and hasattr(torch, "accelerator") and torch.accelerator.is_available():
        torch.accelerator.synchronize()


def bench_environment(
    device: str | torch.device = "cpu",
    *,
    threads: int | None = None,
    dtype: torch.dtype | str | None = torch.float32,
    batch_size: int | None = None,
    channels_last: bool | None = False,
) -> dict[str, Any]:
    """:func:`darc.provenance.environment` plus the run's threads, dtype, batch size and memory format.

    ``threads`` overrides the provenance value (torch's setting at call time) with the count the
    measurement actually used.
    """
    env = environment(device)
    env["threads"] = resolve_threads(threads)
    env["dtype"] = None if dtype is None else dtype_name(dtype)
    env["batch_size"] = batch_size
    env["channels_last"] = channels_last
    missing = [k for k in ENV_KEYS if k not in env]
    if missing:  # pragma: no cover - guards against provenance changes
        raise KeyError(f"environment record lacks {missing}")
    return env
