"""The typed experiment: validated once against the schema, then passed down to every stage.

:func:`darc.records.begin_stage` builds an :class:`Experiment` from the validated mapping at the start of every
stage; the stages and what they call read typed fields from it (``exp.seed``, ``exp.bench.pairs``,
``exp.timing_threads``) instead of calling back up into the raw mapping with a default of their own. Every
default comes from the schema (``darc/configs/experiment.schema.yaml``, the single source of keys, defaults and
descriptions; :func:`schema_defaults`). The training sections (``train``, ``search``, ``finetune``) stay
mappings merged by :mod:`darc.recipe` and :mod:`darc.methods`; ``exp.raw`` is the validated mapping itself, for
provenance and for the run's ``experiment.yaml``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import cache
from typing import Any


@cache
def _schema() -> dict[str, Any]:
    from darc.config import experiment_schema

    return experiment_schema()


def schema_defaults(*path: str) -> dict[str, Any]:
    """``{key: default}`` of the properties of the schema's section at ``path`` (``()``: the top level) that
    declare a ``default``."""
    node = _schema()
    for key in path:
        node = node["properties"][key]
    return {k: copy.deepcopy(p["default"]) for k, p in node.get("properties", {}).items()
            if isinstance(p, dict) and "default" in p}


def _section(raw: Mapping[str, Any], cls: type, *path: str) -> Any:
    """``cls`` built from the schema's defaults at ``path`` with the mapping's section over them."""
    node: Any = raw
    for key in path:
        node = (node or {}).get(key)
    given = dict(node or {})
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in {**schema_defaults(*path), **given}.items() if k in names})


@dataclass(frozen=True)
class SelectionSpec:
    """How operating points are chosen on the first seed's grid (``selection:``)."""

    reseed_unchanged_points: bool
    points: dict[str, float] | None = None  #: None: :data:`darc.selection.DEFAULT_POINTS`


@dataclass(frozen=True)
class BenchSpec:
    """How compressed networks are measured (``bench:``)."""

    batch_sizes: list[int]
    pairs: int
    min_block_time: float
    peak_memory: bool
    match_sessions: int = 5
    threads: int | None = None
    backends: list[str] | None = None


@dataclass(frozen=True)
class BudgetSpec:
    """``darc budget``'s target and bisection (``budget:``)."""

    metric: str
    target_ratio: float
    lam_low: float
    lam_high: float
    max_tries: int
    tolerance: float
    max_param_mb: float | None = None


@dataclass(frozen=True)
class PruneSpec:
    """How the Torch-Pruning peers prune (``peers.prune:``)."""

    match: list[str]
    steps: int
    refine_steps: int
    max_ratio: float
    global_pruning: bool
    bn_reg: float


@dataclass(frozen=True)
class PeersSpec:
    """The peers beside every chosen operating point (``peers:``)."""

    methods: list[str]
    at_unchanged_points: bool
    lams: list[float] | None = None
    random_seeds: int | None = None
    scratch_seeds: int | None = None
    prune_seeds: int | dict[str, int | None] | None = None
    prune: PruneSpec | None = None


@dataclass(frozen=True)
class Experiment:
    """One validated experiment (build it with :meth:`of`)."""

    raw: dict[str, Any]
    dataset: str
    model: str
    model_kwargs: dict[str, Any]
    seed: int
    seeds: list[int]
    shared_base: bool
    data_seed: int
    data_root: str | None
    download: bool
    subset: tuple[int | None, int | None] | None
    validation: int | None
    device: str
    threads: int | None
    stands_for: str
    cost_batch_size: int
    selection: SelectionSpec
    bench: BenchSpec
    budget: BudgetSpec
    peers: PeersSpec

    @classmethod
    def of(cls, exp: Experiment | Mapping[str, Any]) -> Experiment:
        """The typed experiment of ``exp`` (validated against the schema; an :class:`Experiment` is returned as
        it is)."""
        if isinstance(exp, Experiment):
            return exp
        from darc.config import validate_experiment

        raw = validate_experiment(copy.deepcopy(dict(exp)))
        top = {**schema_defaults(), **raw}
        seed = int(top["seed"])
        peers = _section(raw, PeersSpec, "peers")
        peers = PeersSpec(**{**peers.__dict__, "prune": _section(raw, PruneSpec, "peers", "prune")})
        return cls(
            raw=raw, dataset=str(raw["dataset"]), model=str(raw["model"]), model_kwargs=dict(top["model_kwargs"]),
            seed=seed, seeds=[int(s) for s in raw.get("seeds") or [seed]], shared_base=bool(raw.get("shared_base")),
            data_seed=int(raw["data_seed"] if raw.get("data_seed") is not None else seed),
            data_root=raw.get("data_root"), download=bool(top["download"]),
            subset=tuple(raw["subset"]) if raw.get("subset") else None, validation=raw.get("validation"),
            device=str(raw.get("device") or "cpu"), threads=raw.get("threads"),
            stands_for=str(raw.get("stands_for") or raw["model"]),
            cost_batch_size=int({**schema_defaults("search"), **(raw.get("search") or {})}["cost_batch_size"]),
            selection=_section(raw, SelectionSpec, "selection"),
            bench=_section(raw, BenchSpec, "bench"), budget=_section(raw, BudgetSpec, "budget"), peers=peers,
        )

    @property
    def timing_threads(self) -> int:
        """Threads every timing runs at: ``bench.threads``, else the experiment's ``threads``, else torch's
        current count."""
        import torch  # here, so that the reporting layer imports without torch

        return int(self.bench.threads or self.threads or torch.get_num_threads())

    def section(self, key: str) -> dict[str, Any]:
        """A copy of one raw section (``train``, ``search``, ``finetune``, ...; empty where unset)."""
        return copy.deepcopy(self.raw.get(key) or {})


#: What the stages and helpers take: the typed experiment, or a mapping they validate into one.
ExperimentLike = Experiment | dict[str, Any]


def as_mapping(exp: Experiment | Mapping[str, Any]) -> dict[str, Any]:
    """The raw experiment mapping of ``exp`` (for the section-merging helpers of :mod:`darc.recipe`)."""
    return exp.raw if isinstance(exp, Experiment) else exp  # type: ignore[return-value]
