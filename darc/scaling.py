"""Where a scalar multiplying a module's output can be absorbed: its last affine layer.

``s * module(x)`` equals ``module(x)`` with the weight (and bias) of its last conv / linear / affine BN
multiplied by ``s``, when everything after that layer is linear (identity, dropout, average pooling,
flatten) or, for ``s > 0``, positively homogeneous (ReLU, leaky ReLU, max-pooling). Materialisation
folds surviving gates this way; gated training uses it to scale a few weights instead of a whole
activation tensor.
"""

from __future__ import annotations

from torch import nn

LINEAR_PASSTHROUGH = (nn.Identity, nn.Dropout, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Flatten)
POSITIVE_PASSTHROUGH = (nn.ReLU, nn.LeakyReLU, nn.MaxPool2d, nn.AdaptiveMaxPool2d)
AFFINE = (nn.Conv1d, nn.Conv2d, nn.Linear)


def last_affine_name(module: nn.Module, positive: bool) -> str | None:
    """Dotted name (``""`` for ``module`` itself) of the layer that can absorb an output scale, or None.

    ``positive``: the scale is known to be positive, so ReLUs and max-pools after the layer are allowed.
    """
    if isinstance(module, AFFINE):
        return ""
    if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
        return "" if module.affine else None
    if isinstance(module, nn.Sequential):
        for name, child in reversed(list(module.named_children())):
            if isinstance(child, LINEAR_PASSTHROUGH) or (positive and isinstance(child, POSITIVE_PASSTHROUGH)):
                continue
            inner = last_affine_name(child, positive)
            return None if inner is None else (f"{name}.{inner}" if inner else name)
    return None


def last_affine(module: nn.Module, positive: bool) -> nn.Module | None:
    """The layer :func:`last_affine_name` names, or None."""
    name = last_affine_name(module, positive)
    return None if name is None else module.get_submodule(name)
