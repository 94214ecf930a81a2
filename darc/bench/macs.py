"""Multiply-accumulate counts from :class:`torch.utils.flop_counter.FlopCounterMode`.

MACs = FLOPs / 2, where FlopCounterMode counts 2 FLOPs per multiply-add of the matrix-like operators it
knows (convolutions, ``mm``/``addmm``/``bmm``/``matmul``, attention). It ignores everything else:
batch norm, ReLU and other element-wise ops, additions of residual branches, pooling. Those are cheap in
MACs but not in time (memory-bound), which is one reason MACs and measured latency disagree; darc
therefore reports both.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def _flop_counter(model: nn.Module, input_shape: Sequence[int], batch_size: int) -> FlopCounterMode:
    try:
        p = next(iter(model.parameters()))
        device, dtype = p.device, p.dtype
    except StopIteration:
        device, dtype = torch.device("cpu"), torch.float32
    x = torch.zeros((batch_size, *input_shape), device=device, dtype=dtype)
    was_training = model.training
    model.eval()
    try:
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
    return counter


def count_macs(model: nn.Module, input_shape: Sequence[int], batch_size: int = 1) -> int:
    """MACs of one eval-mode forward on a ``(batch_size, *input_shape)`` input (FLOPs // 2).

    Counts only matrix-like ops (conv, linear, matmul); see the module docstring for what is ignored.
    """
    return int(_flop_counter(model, input_shape, batch_size).get_total_flops()) // 2


def macs_by_module(model: nn.Module, input_shape: Sequence[int], batch_size: int = 1) -> dict[str, int]:
    """MACs per module, keyed by qualified module name (``""`` is the whole model).

    A module's count includes its children's. Modules without counted ops are absent.
    """
    counts = _flop_counter(model, input_shape, batch_size).get_flop_counts()
    root = type(model).__name__
    out: dict[str, int] = {}
    for key, ops in counts.items():
        if key == "Global":
            continue
        if key == root:
            name = ""
        elif key.startswith(root + "."):
            name = key[len(root) + 1 :]
        else:
            name = key
        out[name] = int(sum(ops.values())) // 2
    return out
