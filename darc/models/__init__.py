"""Built-in base networks, timm-style: ``create_model(name, **kwargs)``, ``list_models(pattern)``.

Every built-in model has ``input_shape`` (C, H, W), ``slot_names(level)`` and ``slots(level)``; its
residual blocks follow the contract in :mod:`darc.models.base`. Importing this package registers the
WRN (:mod:`darc.models.wrn`) and ResNet-v1d (:mod:`darc.models.resnet_v1d`) families.
"""

from darc.models import resnet_v1d, wrn  # noqa: F401  (registers the models)
from darc.models._registry import MODELS, create_model, list_models, register_model
from darc.models.base import BRANCH_LAYER_TYPES, ResidualBlock, SlotsMixin
from darc.models.external import model_from_name
from darc.models.timm_compat import load_timm_resnet_d, timm_resnet_d_key_map

__all__ = [
    "BRANCH_LAYER_TYPES",
    "MODELS",
    "ResidualBlock",
    "SlotsMixin",
    "create_model",
    "list_models",
    "model_from_name",
    "load_timm_resnet_d",
    "register_model",
    "timm_resnet_d_key_map",
]
