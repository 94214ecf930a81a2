"""The model registry: ``@register_model`` fills it, ``create_model`` builds from it (as in timm)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from darc.registry import Registry

MODELS: Registry[nn.Module] = Registry("model")

ModelFn = Callable[..., nn.Module]


def register_model(fn: ModelFn) -> ModelFn:
    """Decorator: register ``fn`` under its own name (``@register_model``)."""
    return MODELS.register()(fn)


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the model registered as ``name``.

    The model records ``model_name`` and ``model_kwargs`` (a copy of ``kwargs``), so it can be
    rebuilt from JSON with ``create_model(m.model_name, **m.model_kwargs)``. Unknown names raise a
    KeyError listing the registered ones.
    """
    model = MODELS.create(name, **kwargs)
    model.model_name = name
    model.model_kwargs = dict(kwargs)
    return model


def list_models(pattern: str = "*") -> list[str]:
    """Sorted registered model names matching a shell-style ``pattern``."""
    return MODELS.list(pattern)
