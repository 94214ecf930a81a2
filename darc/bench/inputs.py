"""The benchmark input: one random tensor made once on the device, and how shapes are written.

Kept apart from the timing code so the memory probe's child processes import nothing but torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def shape_str(shape: Sequence[int]) -> str:
    """``(1, 28, 28)`` -> ``"1x28x28"`` (how shapes appear in records)."""
    return "x".join(str(int(s)) for s in shape)


def make_input(
    input_shape: Sequence[int],
    batch_size: int,
    device: torch.device,
    dtype: torch.dtype,
    channels_last: bool = False,
    seed: int = 0,
) -> torch.Tensor:
    """The benchmark input: ``randn(batch_size, *input_shape)`` on ``device``, made once."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((batch_size, *input_shape), generator=gen, dtype=torch.float32)
    x = x.to(device=device, dtype=dtype)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x
