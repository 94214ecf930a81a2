"""What a network's inference cost depends on, as one hash: two networks with the same signature run the same
computation (weights aside), so one measurement of latency and memory serves both."""

from __future__ import annotations

import hashlib

from torch import nn


def architecture_signature(model: nn.Module) -> str:
    """SHA-1 over every module's path and class, every leaf module's ``repr`` (channels, kernel, stride,
    padding, groups, ...) and every parameter's and buffer's path, shape and dtype; not over their values."""
    digest = hashlib.sha1()
    for name, module in model.named_modules():
        leaf = not any(True for _ in module.children())
        digest.update(f"{name}:{type(module).__module__}.{type(module).__qualname__}".encode())
        if leaf:
            digest.update(repr(module).encode())
    for kind, tensors in (("p", model.named_parameters()), ("b", model.named_buffers())):
        for name, t in tensors:
            digest.update(f"{kind}:{name}:{tuple(t.shape)}:{t.dtype}".encode())
    return digest.hexdigest()
