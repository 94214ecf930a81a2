"""Networks by name from torchvision and timm, beside darc's own: ``torchvision:resnet18``, ``timm:resnet26d``,
``wrn16_2``. What ``darc compress --model`` and ``darc.models.model_from_name`` build."""

from __future__ import annotations

from typing import Any

from torch import nn


def model_from_name(name: str, *, num_classes: int, in_chans: int = 3, input_size: int | None = None,
                    **kwargs: Any) -> nn.Module:
    """A fresh network: ``torchvision:NAME`` (``torchvision.models.get_model``, no pretrained weights),
    ``timm:NAME`` (``timm.create_model``, no pretrained weights), or a darc model's registered name."""
    source, _, model = name.partition(":")
    if not model:
        from darc.models._registry import create_model

        size = {"input_size": input_size} if input_size else {}
        return create_model(name, in_chans=in_chans, num_classes=num_classes, **size, **kwargs)
    if source == "torchvision":
        import torchvision

        if in_chans != 3:
            raise ValueError(f"{name} takes 3-channel input but the data has {in_chans}: use a 3-channel dataset, "
                             f"or timm:{model} (timm models take in_chans)")
        try:
            return torchvision.models.get_model(model, weights=None, num_classes=num_classes, **kwargs)
        except ValueError as exc:
            raise ValueError(f"torchvision has no model {model!r} ({exc}); list them with "
                             "torchvision.models.list_models()") from None
    if source == "timm":
        import timm

        if not timm.is_model(model):
            raise ValueError(f"timm has no model {model!r}; list them with timm.list_models('{model[:4]}*')")
        return timm.create_model(model, pretrained=False, num_classes=num_classes, in_chans=in_chans, **kwargs)
    raise ValueError(f"model {name!r}: write torchvision:NAME, timm:NAME or a darc model name (darc models)")
