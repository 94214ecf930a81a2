"""darc: Differentiable ARchitecture Compression (a reconstruction of arXiv 1905.08170).

The public API: gate any ``nn.Module``'s slots, cost the candidates, search with the proximal gate
penalty, materialise into a plain network, and rebuild it from its architecture file.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

#: public name -> the submodule that defines it; imported on first use (PEP 562), so ``import darc.io`` or
#: ``darc.reporting`` (the workflow's table and figure jobs) does not pay for torch
_EXPORTS = {
    "ALTERNATIVES": "alternatives", "list_alternatives": "alternatives", "register_alternative": "alternatives",
    "CompressionResult": "compressor", "Compressor": "compressor", "CompressorStateError": "compressor",
    "Target": "target", "compress": "pipeline",
    "ResidualBranchBlock": "blocks", "expose_branches": "blocks", "register_block_adapter": "blocks",
    "COST_MODELS": "costs", "CostContext": "costs", "architecture_cost": "costs", "assign_costs": "costs",
    "DEFAULT_CANDIDATES": "gates", "GatedSlot": "gates", "IncompatibleAlternativeError": "gates",
    "gate_model": "gates", "gated_slots": "gates",
    "ArchitectureError": "materialize", "build": "materialize", "load_materialized": "materialize",
    "materialize": "materialize", "save_materialized": "materialize",
    "ProximalGateStep": "penalty", "gate_penalty": "penalty", "search_param_groups": "penalty",
    "soft_threshold_": "penalty",
    "SlotSpec": "slots", "describe_slots": "slots",
}

__version__ = "0.1.0"

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'darc' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"darc.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


class _Package(types.ModuleType):
    """Keeps ``darc.materialize`` the function (as the eager imports did) when the import system binds the
    submodule of the same name on the package."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and _EXPORTS.get(name) == name:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
