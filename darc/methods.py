"""How each search method runs: DARC, the equal-budget reference, SSS and DARC's cost-model ablations.

:data:`SEARCH_METHODS` edits a :class:`darc.search.SearchConfig` per method; :func:`search_config` builds the
config of one lambda of an experiment as a method runs it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from darc.recipe import train_section
from darc.registry import Registry
from darc.search import SearchConfig
from darc.spec import Experiment

#: How a search run differs from DARC's (``fn(cfg)`` edits the :class:`SearchConfig` in place). ``darc``:
#: as configured. ``reference``: the **equal-budget reference**, the same pipeline (same epochs, schedules,
#: gate step and fine-tuning after it) with the penalty off and only the original candidate in every slot,
#: so the base is trained through every step a compressed network gets after it. ``sss``: Sparse Structure
#: Selection, l1 on the originals' scale factors with every slot costing the same (no alternatives).
SEARCH_METHODS: Registry[None] = Registry("search method")


@SEARCH_METHODS.register("darc")
def _as_configured(cfg: SearchConfig) -> None:
    pass


@SEARCH_METHODS.register("reference")
def _equal_budget_reference(cfg: SearchConfig) -> None:
    cfg.lam, cfg.candidates, cfg.cost_model, cfg.latency_table = 0.0, ["original"], "params", None
    cfg.weights = "train"  # plain training of the base for the search's images, whatever DARC's search does
    cfg.handoff = "searched"  # and the fine-tune continues from that training


@SEARCH_METHODS.register("sss")
def _sparse_structure_selection(cfg: SearchConfig) -> None:
    cfg.candidates, cfg.cost_model, cfg.latency_table = ["original"], "uniform", None
    cfg.weights = "train"  # as published: block scales and weights learn together
    cfg.handoff = "searched"  # and the network is the one they learned


def _cost_model_ablation(model: str) -> Callable[[SearchConfig], None]:
    def apply(cfg: SearchConfig) -> None:
        cfg.cost_model, cfg.latency_table = model, None

    return apply


#: Ablations of DARC's cost weighting (peers, ``extended`` scale): the same candidates and search, each slot's
#: cost from another model. ``darc_uniform``: every slot costs the same (what cost weighting buys);
#: ``darc_params`` / ``darc_macs``: parameter bytes / MACs instead of measured latency (what the cost model
#: buys). The grid peers run by the workflow are :data:`darc.config.GRID_SEARCH_PEERS`.
for _name, _model in (("darc_uniform", "uniform"), ("darc_params", "params"), ("darc_macs", "macs")):
    SEARCH_METHODS.register(_name)(_cost_model_ablation(_model))


def search_config(exp: Experiment | dict[str, Any], lam: float, *, method: str = "darc") -> SearchConfig:
    """The :class:`SearchConfig` of one lambda of the experiment, as the search ``method`` runs it
    (:data:`SEARCH_METHODS`: ``darc``, ``reference``, or a grid peer of :data:`darc.config.GRID_SEARCH_PEERS`)."""
    exp = Experiment.of(exp)
    section = {k: v for k, v in exp.section("search").items() if k not in ("lams", "train")}
    train = train_section(exp, "search", "train")
    cost_threads = exp.bench.threads or exp.threads
    section.setdefault("cost_device", exp.device)  # an explicit search.cost_device wins
    cfg = SearchConfig(lam=float(lam), train=train, cost_threads=cost_threads, **section)
    SEARCH_METHODS.create(method, cfg)
    return cfg
