"""Plain building blocks a materialised network may contain (none of them is a gate)."""

from __future__ import annotations

import math

import torch
from torch import nn


class SumOf(nn.Module):
    """Sum of several parallel modules' outputs (a slot that kept more than one candidate)."""

    def __init__(self, modules: list[nn.Module]) -> None:
        super().__init__()
        self.parts = nn.ModuleList(modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.parts[0](x)
        for part in self.parts[1:]:
            out = out + part(x)
        return out


class Scaled(nn.Module):
    """``scale * module(x)`` with a constant (non-learnable) scale, for outputs nothing can absorb."""

    def __init__(self, module: nn.Module, scale: float) -> None:
        super().__init__()
        self.module = module
        self.register_buffer("scale", torch.tensor(float(scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.module(x)


class ZeroOutput(nn.Module):
    """Outputs zeros of a slot's output shape: a slot whose every gate is zero and without which the network's
    output still depends on its input (a residual or parallel branch; see :mod:`darc.materialize`).

    ``out_shape`` excludes the batch; for image tensors the spatial size follows the input
    (divided by ``stride``) so the module works at any resolution.
    """

    def __init__(self, out_shape: tuple[int, ...], stride: int = 1) -> None:
        super().__init__()
        self.out_shape = tuple(out_shape)
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = list(self.out_shape)
        if x.dim() == 4 and len(shape) == 3:
            shape[1:] = [math.ceil(s / self.stride) for s in x.shape[2:]]
        return x.new_zeros(x.shape[0], *shape)

    def extra_repr(self) -> str:
        return f"out_shape={self.out_shape}, stride={self.stride}"
