"""Provenance: the environment and run facts recorded beside every output."""

from __future__ import annotations

import os
import platform
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

SCALES = ("smoke", "default", "paper")


@lru_cache(maxsize=1)
def git_commit() -> str:
    """The current git commit (``-dirty`` if tracked code or config changed), or ``unknown``.

    ``results/`` is left out of the check: a workflow run rewrites it, and that is not a code change.
    """
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results"],
            cwd=root, capture_output=True, text=True, check=True,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where available)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: str | torch.device = "cpu") -> str:
    """A human name for ``device``: the GPU's name on CUDA, the CPU model otherwise."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_model()


def environment(device: str | torch.device = "cpu") -> dict[str, Any]:
    """Facts about where and with what a result was produced."""
    device = torch.device(device)
    return {
        "device": str(device),
        "device_name": device_name(device),
        "cpu_model": cpu_model(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "hostname": platform.node(),
        "git_commit": git_commit(),
        "cuda": torch.version.cuda if device.type == "cuda" else None,
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }


def provenance(
    *,
    scale: str,
    dataset: str,
    model: str,
    stand_in: bool,
    config: dict[str, Any] | None = None,
    device: str | torch.device = "cpu",
    **extra: Any,
) -> dict[str, Any]:
    """The provenance record every output carries.

    ``stand_in`` says the dataset stands in for the paper's (e.g. Fashion-MNIST for CIFAR-10).
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    return {
        "scale": scale,
        "dataset": dataset,
        "dataset_is_stand_in": stand_in,
        "model": model,
        **environment(device),
        "config": config or {},
        **extra,
    }
