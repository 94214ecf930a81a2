"""darc: Differentiable ARchitecture Compression (a reconstruction of arXiv 1905.08170).

The public API: gate any ``nn.Module``'s slots, cost the candidates, search with the proximal gate
penalty, materialise into a plain network, and rebuild it from its architecture file.
"""

from darc.alternatives import ALTERNATIVES, list_alternatives, register_alternative
from darc.costs import COST_MODELS, CostContext, architecture_cost, assign_costs
from darc.gates import DEFAULT_CANDIDATES, GatedSlot, IncompatibleAlternativeError, gate_model, gated_slots
from darc.materialize import ArchitectureError, build, load_materialized, materialize, save_materialized
from darc.penalty import ProximalGateStep, gate_penalty, search_param_groups, soft_threshold_
from darc.slots import SlotSpec, describe_slots

__version__ = "0.1.0"

__all__ = [
    "ALTERNATIVES", "COST_MODELS", "DEFAULT_CANDIDATES", "ArchitectureError", "CostContext", "GatedSlot",
    "IncompatibleAlternativeError", "ProximalGateStep", "SlotSpec", "architecture_cost", "assign_costs",
    "build", "describe_slots", "gate_model", "gate_penalty", "gated_slots", "list_alternatives",
    "load_materialized", "materialize", "register_alternative", "save_materialized", "search_param_groups",
    "soft_threshold_",
]
