"""Cost models: what each candidate of each slot costs, normalised by the base network's total.

``c_ij = cost(candidate j of slot i) / cost(base network)`` under one cost model, so the penalty
weight lambda means the same across cost models. Candidates without weights (identity) cost zero
*by type*, whatever the cost model would measure.

Registered cost models (:data:`COST_MODELS`):

* ``params``: parameter bytes;
* ``uniform``: every slot costs the same (each candidate with weights ``1 / number of slots``), as in
  Sparse Structure Selection (SSS); the penalty then prefers fewer blocks, not cheaper ones;
* ``macs``: multiply-accumulates at batch 1, from ``torch.utils.flop_counter`` (MACs = FLOPs / 2;
  the counter counts convs and matmuls only, not BN, ReLU or additions);
* ``latency``: median wall-clock time on the current device at the given batch size and thread
  count, by the protocol of :mod:`darc.bench.latency`, through a lookup table saved as a JSON data
  file keyed by module (a label + a hash of its structure), shape, batch, threads, device and dtype,
  which also holds the whole base network's latency (the normaliser). A candidate's cost is its
  marginal latency inside the slot's parent module (the residual block of a branch slot): the parent
  with the candidate minus the parent with the slot dropped; the same difference in the whole network
  (``context="network"``); or its own latency (:class:`CostContext`).
  Each entry is timed in interleaved A/B pairs against the base network, so machine drift cancels.
  Entries already in the file are reused, so one exclusive measuring job can serve many searches.
"""

from __future__ import annotations

import copy
import hashlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from darc.gates import GatedSlot, gated_slots
from darc.registry import Registry


@dataclass
class CostContext:
    """Where and how costs are measured.

    ``context`` (latency only): ``"parent"`` (default) prices a candidate by its *marginal* latency in the
    module that holds the slot, ``t(parent with the candidate) - t(parent with the slot dropped)``, so what
    dropping a slot also removes (a residual block's pre-activation and addition) is counted; ``"network"``
    takes the same difference in the whole network (the base with only that slot changed), so what a
    block costs among its neighbours (caches, dispatch, layout changes) is counted too, at one whole-network
    timing per candidate; ``"slot"`` times each candidate alone. On WRN-16-2 (batch 1, 1 thread)
    ``"parent"`` predicted whole-network latency within 10 % on both CPUs tried, ``"slot"`` on one of them
    (``benchmarks/tools/run.py cost_model_error``); how well each ranks single-slot changes is measured by
    ``benchmarks/tools/run.py slot_costs``. Slots directly under the root are timed alone under ``"parent"``.
    Every module is timed against the base network in ``pairs`` interleaved A/B pairs of blocks lasting
    about ``min_block_time`` seconds (:func:`darc.bench.cost_check.build_latency_table` with a reference),
    so machine drift cancels.
    """

    input_shape: tuple[int, ...]
    batch_size: int = 1
    device: str = "cpu"
    threads: int | None = None
    dtype: torch.dtype = torch.float32
    table_path: str | os.PathLike | None = None
    min_run_time: float = 0.1
    context: str = "parent"
    pairs: int = 10
    min_block_time: float = 0.02


#: ``fn(base_model, slots, ctx) -> (base_total, {slot: [raw cost per candidate]}, unit)``
CostFn = Callable[[nn.Module, dict[str, GatedSlot], CostContext], tuple[float, dict[str, list[float]], str]]
LATENCY_CONTEXTS = ("parent", "network", "slot")
COST_MODELS: Registry[tuple[float, dict[str, list[float]], str]] = Registry("cost model")


def _param_bytes(module: nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def _weightless(module: nn.Module) -> bool:
    return next(module.parameters(), None) is None


def _module_key(label: str, module: nn.Module) -> str:
    digest = hashlib.sha1(repr(module).encode()).hexdigest()[:12]
    return f"{label}#{digest}"


@COST_MODELS.register("params")
def param_costs(base: nn.Module, slots: dict[str, GatedSlot], ctx: CostContext):
    raw = {n: [float(_param_bytes(c)) for c in s.candidates] for n, s in slots.items()}
    return float(_param_bytes(base)), raw, "bytes"


@COST_MODELS.register("uniform")
def uniform_costs(base: nn.Module, slots: dict[str, GatedSlot], ctx: CostContext):
    """Every candidate of every slot costs 1 and the base network ``len(slots)`` (so dropping all of them
    saves the whole normaliser): SSS's equal l1 weight per block, whatever the block computes."""
    raw = {n: [1.0 for _ in s.candidates] for n, s in slots.items()}
    return float(len(slots)), raw, "slots"


@COST_MODELS.register("macs")
def mac_costs(base: nn.Module, slots: dict[str, GatedSlot], ctx: CostContext):
    from darc.bench.macs import count_macs

    raw = {n: [float(count_macs(c, s.spec.in_shape, 1)) for c in s.candidates] for n, s in slots.items()}
    return float(count_macs(base, ctx.input_shape, 1)), raw, "MACs"


class _BuiltOnAccess(Mapping[str, nn.Module]):
    """Modules built when read (whole-network variants), so a table of many never holds them all at once."""

    def __init__(self, builders: dict[str, Callable[[], nn.Module]]) -> None:
        self._builders = builders

    def __getitem__(self, name: str) -> nn.Module:
        return self._builders[name]()

    def __iter__(self) -> Iterator[str]:
        return iter(self._builders)

    def __len__(self) -> int:
        return len(self._builders)


def _in_context(
    base: nn.Module, name: str, slot: GatedSlot, context: str,
) -> tuple[str, dict[str, Callable[[], nn.Module]]] | None:
    """Builders of the module a slot is timed in (its parent, or the whole network under ``"network"``)
    with each weighted candidate in place, and with the slot dropped.

    Returns ``(scope, {table label: builder})`` (the dropped variant under ``"dropped"``; ``scope`` is the
    timed module's name, ``""`` for the whole network), or None for a slot timed alone (``"slot"``, or a
    slot without a parent inside ``base`` under ``"parent"``).
    """
    from darc.materialize import assemble_slot

    parent_name, _, attr = name.rpartition(".")
    if context == "slot" or (context == "parent" and not parent_name):
        return None
    scope = "" if context == "network" else parent_name
    holder = parent_name[len(scope):].lstrip(".")  # the slot's parent, inside the timed module
    timed = base.get_submodule(scope)

    def builder(candidate: nn.Module | None) -> Callable[[], nn.Module]:
        def build() -> nn.Module:
            variant = copy.deepcopy(timed)
            replacement = copy.deepcopy(candidate) if candidate is not None else assemble_slot(slot.spec, [])
            setattr(variant.get_submodule(holder), attr, replacement)
            return variant
        return build

    options = [*zip(slot.labels, slot.candidates), ("dropped", None)]
    variants = {label: builder(c) for label, c in options if c is None or not _weightless(c)}
    return scope, variants


@COST_MODELS.register("latency")
def latency_costs(base: nn.Module, slots: dict[str, GatedSlot], ctx: CostContext):
    """Measured latencies, each timed against the base network; with ``ctx.context == "parent"`` each
    candidate's marginal latency in its slot's parent module (see :class:`CostContext`)."""
    from darc.bench.cost_check import LatencyKey, build_latency_table, load_latency_table
    from darc.bench.env import dtype_name, resolve_device, resolve_threads
    from darc.slots import capture_io

    if ctx.context not in LATENCY_CONTEXTS:
        raise ValueError(f"latency context {ctx.context!r} is not one of {LATENCY_CONTEXTS}")
    device, threads = resolve_device(ctx.device), resolve_threads(ctx.threads)
    table: dict[LatencyKey, float] = {}
    if ctx.table_path is not None and Path(ctx.table_path).exists():
        table = load_latency_table(ctx.table_path)

    def key(name: str, shape: tuple[int, ...]) -> LatencyKey:
        return LatencyKey(name, tuple(shape), ctx.batch_size, threads, str(device), dtype_name(ctx.dtype))

    todo: dict[str, Callable[[], nn.Module]] = {}
    shapes: dict[str, tuple[int, ...]] = {}

    def need(label: str, build: Callable[[], nn.Module], shape: tuple[int, ...]) -> LatencyKey:
        k = key(_module_key(label, build()), shape)
        if k not in table:
            todo[k.module], shapes[k.module] = build, tuple(shape)
        return k

    def as_is(module: nn.Module) -> Callable[[], nn.Module]:
        return lambda: module

    base_key = need("base", as_is(base), tuple(ctx.input_shape))
    contexts = {n: _in_context(base, n, s, ctx.context) for n, s in slots.items()}
    scopes = sorted({c[0] for c in contexts.values() if c and c[0]})
    scope_io = capture_io(base, scopes, tuple(ctx.input_shape)) if scopes else {}
    keys: dict[str, dict[str, LatencyKey]] = {}
    for n, s in slots.items():
        if contexts[n] is None:
            keys[n] = {label: need(label, as_is(c), s.spec.in_shape)
                       for label, c in zip(s.labels, s.candidates) if not _weightless(c)}
        else:
            scope, variants = contexts[n]
            shape = tuple(scope_io[scope][0].shape[1:]) if scope else tuple(ctx.input_shape)
            keys[n] = {label: need(f"{n}<-{label}", build, shape) for label, build in variants.items()}

    def measure() -> None:
        if todo:
            table.update(build_latency_table(
                _BuiltOnAccess(todo), shapes, ctx.batch_size, device=device, threads=threads, dtype=ctx.dtype,
                min_run_time=ctx.min_run_time, reference=(base_key.module, base, tuple(ctx.input_shape)),
                pairs=ctx.pairs, min_block_time=ctx.min_block_time, path=ctx.table_path,
            ))
            todo.clear()

    measure()
    # a marginal latency lost in the timing noise (<= 0) falls back to the candidate timed alone: a
    # candidate with weights is never free
    alone: dict[tuple[str, str], LatencyKey] = {}
    for n, s in slots.items():
        if contexts[n] is not None:
            for label, c in zip(s.labels, s.candidates):
                if label in keys[n] and table[keys[n][label]] <= table[keys[n]["dropped"]]:
                    alone[n, label] = need(label, as_is(c), s.spec.in_shape)
    measure()

    def cost(n: str, label: str) -> float:
        if label not in keys[n]:
            return 0.0  # weightless
        if contexts[n] is None:
            return table[keys[n][label]]
        if (n, label) in alone:
            return table[alone[n, label]]
        return table[keys[n][label]] - table[keys[n]["dropped"]]

    raw = {n: [cost(n, label) for label in s.labels] for n, s in slots.items()}
    return table[base_key], raw, "seconds"


class CostsNotAssignedError(ValueError):
    """A gated model is penalised or searched before :func:`assign_costs` gave its slots their costs."""


def require_costs(gated_model: nn.Module) -> None:
    """Refuse a gated model whose slots never had costs assigned (every cost would silently be 0, so the
    penalty would do nothing). A zero *assigned* cost (a weightless candidate) is fine: the marker is
    ``GatedSlot.cost_model``, set by :func:`assign_costs`, not the cost values."""
    slots = gated_slots(gated_model)
    if not slots:
        raise ValueError("the model has no gated slots: call darc.gate_model first")
    missing = [n for n, s in slots.items() if getattr(s, "cost_model", None) is None]
    if missing:
        raise CostsNotAssignedError(
            f"the costs of {len(missing)} of {len(slots)} gated slot(s) (e.g. {missing[0]!r}) were never "
            "assigned, so the penalty would be zero: call darc.assign_costs(gated, base, cost_model, ctx) first"
        )


def _measure(
    slots: dict[str, GatedSlot], base_model: nn.Module, cost_model: str, ctx: CostContext
) -> tuple[float, dict[str, list[float]], str]:
    base_total, raw, unit = COST_MODELS.create(cost_model, base_model, slots, ctx)
    if base_total <= 0:
        raise ValueError(f"the base network's {cost_model} cost is {base_total}: cannot normalise")
    raw = {n: [0.0 if _weightless(c) else r for c, r in zip(s.candidates, raw[n])] for n, s in slots.items()}
    return base_total, raw, unit


def _measured_on_rank0(measure: Callable[[], Any]) -> Any:
    """``measure()`` on rank 0 only, its result (or its exception) broadcast to every rank; just
    ``measure()`` in one process."""
    import pickle

    import torch.distributed as dist

    from darc.train import distributed as D

    info = D.init_distributed()
    if not info.distributed:
        return measure()
    payload: list[Any] = [None]
    if info.is_main:
        try:
            payload[0] = ("ok", measure())
        except Exception as exc:  # noqa: BLE001 - every rank raises it below
            try:
                pickle.dumps(exc)
                payload[0] = ("error", exc)
            except Exception:  # noqa: BLE001
                payload[0] = ("error", RuntimeError(f"{type(exc).__name__}: {exc}"))
    dist.broadcast_object_list(payload, src=0)
    status, value = payload[0]
    if status == "error":
        raise value
    return value


#: How raw costs become the penalty's weights. ``network``: each over the base network's total (lambda means the
#: same across cost models). ``slot``: each over its own slot's original, times the mean of the originals'
#: network-normalised costs: within a slot the candidates keep their relative costs, every slot's original costs
#: the same, so slots cross at different lambdas by what they contribute, not by what they cost.
NORMALISATIONS = ("network", "slot")


def assign_costs(
    gated_model: nn.Module, base_model: nn.Module, cost_model: str, ctx: CostContext, normalisation: str = "network",
) -> dict[str, Any]:
    """Fill every gated slot's ``cost`` buffer with normalised costs (:data:`NORMALISATIONS`; and mark the slot's
    costs as assigned, ``slot.cost_model``); return a report.

    The report has keys ``cost_model``, ``unit``, ``base_total``, ``normalisation`` and ``slots`` (slot -> candidate
    label -> ``{"raw": ..., "normalized": ...}``).

    Under ``torchrun`` costs are measured once: rank 0 measures them (or reads its latency table, and
    alone writes to it) and broadcasts them, so every rank penalises its gates with the same costs and
    the gates stay identical. The other ranks wait meanwhile (for at most the process group's timeout):
    measure a latency table before a distributed search (:func:`darc.experiment.measure_latency_table`).
    """
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"cost normalisation must be one of {NORMALISATIONS}, got {normalisation!r}")
    slots = gated_slots(gated_model)
    if not slots:
        raise ValueError("the model has no gated slots: call darc.gate_model first")
    base_total, raw, unit = _measured_on_rank0(lambda: _measure(slots, base_model, cost_model, ctx))
    divisor = {name: base_total for name in slots}
    if normalisation == "slot":
        originals = {name: raw[name][slot.labels.index("original")] for name, slot in slots.items()}
        if min(originals.values()) <= 0:
            raise ValueError(f"cost normalisation 'slot' needs every slot's original to cost > 0 under {cost_model}; "
                             f"got {originals}: use normalisation 'network'")
        mean = sum(originals.values()) / len(originals) / base_total
        divisor = {name: originals[name] / mean for name in slots}
    report: dict[str, Any] = {"cost_model": cost_model, "unit": unit, "base_total": base_total,
                              "normalisation": normalisation, "slots": {}}
    for name, slot in slots.items():
        costs = raw[name]
        with torch.no_grad():
            slot.cost.copy_(torch.tensor(costs) / divisor[name])
        slot.cost_model = cost_model
        report["slots"][name] = {
            label: {"raw": r, "normalized": r / divisor[name]} for label, r in zip(slot.labels, costs)
        }
    return report


def architecture_cost(gated_model: nn.Module) -> float:
    """Normalised cost of the architecture the gates currently select (kept candidates only)."""
    return float(sum(
        float(s.cost[s.gate.detach() != 0].sum()) for s in gated_slots(gated_model).values()
    ))
