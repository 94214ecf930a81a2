"""One object that carries the DARC procedure: gate, price, search step by step, compress.

    comp = darc.Compressor(model, lam=2.0, calibration=images[:64], example_input=(3, 32, 32))
    opt = torch.optim.SGD(comp.param_groups(lr=0.05), lr=0.05, momentum=0.9)
    for x, y in loader:                       # the search: the user's own loop, or darc.train.fit
        loss = F.cross_entropy(comp.model(x), y)
        opt.zero_grad(); loss.backward(); opt.step()
        comp.step(opt)                        # the proximal gate step, after every optimizer step
    result = comp.compress()                  # a plain nn.Module, its architecture and a report
    result.save("out/")                       # later: darc.CompressionResult.load("out/", base_model=...)

The workflow's search (:func:`darc.search.run_search`) runs through the same object. The object refuses
misuse with one line before any work is lost: no calibration data, an optimizer whose gate group the soft
threshold cannot follow, ``compress()`` before any search step, a step after ``compress()``.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from darc.alternatives import get_alternative
from darc.costs import CostContext, architecture_cost, assign_costs, require_costs
from darc.gates import DEFAULT_CANDIDATES, CandidateRef, gate_model, gate_table, gated_slots
from darc.io import atomic_write_json
from darc.materialize import load_materialized, materialize, save_materialized
from darc.penalty import GATES_GROUP, ProximalGateStep, check_lam, search_param_groups

#: What the search does with the network's weights (``frozen``: only the gates learn) and what it hands on
#: (``rebuilt``: the starting weights with the surviving candidates at full strength; ``searched``: the
#: search's own weights, gates folded in). :mod:`darc.search` documents both.
WEIGHTS = frozenset({"train", "frozen"})
HANDOFFS = frozenset({"searched", "rebuilt"})


class CompressorStateError(RuntimeError):
    """A step of the procedure was skipped or repeated (e.g. ``compress()`` before any search step)."""


def calibration_batch(source: Any, n: int | None = None) -> torch.Tensor:
    """Up to ``n`` inputs (a tensor batch: all of it by default; otherwise 64) from a tensor batch, a dataset of
    ``(input, target)`` pairs or a data loader."""
    if isinstance(source, torch.Tensor):
        return source if n is None else source[:n]
    n = 64 if n is None else n
    if isinstance(source, torch.utils.data.DataLoader):
        xs, count = [], 0
        for batch in source:
            x = batch[0] if isinstance(batch, list | tuple) else batch
            xs.append(x)
            count += len(x)
            if count >= n:
                break
        return torch.cat(xs)[:n]
    if isinstance(source, torch.utils.data.Dataset):
        k = min(n, len(source))  # type: ignore[arg-type]
        return torch.stack([source[i][0] for i in range(k)])
    raise TypeError(f"calibration must be a tensor batch, a Dataset or a DataLoader, got {type(source).__name__}")


def skipped_candidates(gated: nn.Module, requested: Sequence[CandidateRef]) -> dict[str, dict[str, str]]:
    """Slot -> {candidate label: why it does not apply} for the requested candidates a slot did not get."""
    out: dict[str, dict[str, str]] = {}
    for name, slot in gated_slots(gated).items():
        original = slot.candidates[slot.labels.index("original")]
        missing = {ref.label: get_alternative(ref.alternative).applicable(slot.spec, original) or "refused"
                   for ref in requested if ref.label not in slot.labels}
        if missing:
            out[name] = missing
    return out


def skipped_message(skipped: dict[str, dict[str, str]], shown: int = 3) -> str:
    """One line per (candidate, reason): which slots skipped it (the first ``shown`` named, then a count)."""
    groups: dict[tuple[str, str], list[str]] = {}
    for slot, miss in skipped.items():
        for label, why in miss.items():
            groups.setdefault((label, why), []).append(slot)
    parts = []
    for (label, why), slots in groups.items():
        more = f" and {len(slots) - shown} more" if len(slots) > shown else ""
        parts.append(f"{label} on {', '.join(slots[:shown])}{more} ({why})")
    return "; ".join(parts)


@dataclass
class CompressionResult:
    """What :meth:`Compressor.compress` returns: the plain network, its architecture record and a report."""

    model: nn.Module
    architecture: dict[str, Any]
    report: dict[str, Any] = field(default_factory=dict)

    def save(self, out_dir: str | Path) -> Path:
        """``architecture.json``, ``weights.pt`` and ``report.json`` in ``out_dir`` (each written atomically)."""
        out = Path(out_dir)
        save_materialized(self.model, self.architecture, out)
        atomic_write_json(self.report, out / "report.json")
        return out

    @classmethod
    def load(cls, out_dir: str | Path, base_model: nn.Module | None = None) -> CompressionResult:
        """The result :meth:`save` wrote (weights loaded with ``weights_only=True``); ``base_model``: an instance
        of the uncompressed network, needed where the base is not one of darc's registered models."""
        out = Path(out_dir)
        model = load_materialized(out / "architecture.json", out / "weights.pt", base_model=base_model)
        report_path = out / "report.json"
        report = json.loads(report_path.read_text()) if report_path.exists() else {}
        return cls(model, json.loads((out / "architecture.json").read_text()), report)


class Compressor:
    """A network under DARC: its gated form (:attr:`model`), the penalty weight and how the search ends.

    Args:
        model: the trained network to compress (not modified: it is copied).
        lam: the penalty weight lambda (>= 0).
        calibration: real inputs (a tensor batch, a Dataset or a DataLoader; 64 are used): the alternatives
            are distilled on the slots' inputs they produce, and the strongest candidate per slot is chosen on
            them. Required: without it both would run on noise.
        slots: ``"branch"`` (residual branches: darc's models, and torchvision/timm blocks with an adapter),
            module names, glob patterns or a predicate (:func:`darc.gate_model`).
        candidates: alternatives per slot; one that does not apply to a slot is skipped with a warning that
            says why (``strict=True``: an error instead).
        example_input: a (C, H, W) shape or a batch (darc's models know theirs).
        cost_model: ``params``, ``macs``, ``uniform`` or ``latency`` (:data:`darc.COST_MODELS`);
            ``cost_context`` says where latency is measured.
        weights: ``frozen`` (only the gates learn: the recommended search) or ``train``.
        handoff: ``rebuilt`` (the starting weights, the surviving candidates at full strength) or ``searched``.
        single_candidate: keep at most one candidate per slot (a mixture is slower than the base).
        **gating: further :func:`darc.gate_model` options (``gate_init``, ``original_share``,
            ``distill_steps``, ``distill_lr``, ``revive``).
        calibration_samples: how many calibration inputs are used (a tensor batch is cut to it).
        lam_warmup_steps: the penalty's ramp: lambda grows linearly over the first ``lam_warmup_steps`` steps
            (0: at full strength from the first step). Without it, every gate shrinks at its full rate while the
            network still sits at the base's optimum (no gradient pushes back), and slots can collapse together.
    """

    def __init__(
        self, model: nn.Module, *, lam: float, calibration: Any, slots: Any = "branch",
        candidates: Sequence[str | dict[str, Any] | CandidateRef] = DEFAULT_CANDIDATES,
        example_input: torch.Tensor | tuple[int, ...] | None = None, cost_model: str = "params",
        cost_context: CostContext | None = None, weights: str = "frozen", handoff: str = "rebuilt",
        single_candidate: bool = True, nonnegative: bool = False, strict: bool = False,
        calibration_samples: int = 64, lam_warmup_steps: int = 0, **gating: Any,
    ) -> None:
        if calibration is None:
            raise ValueError("pass calibration= a batch of real inputs (e.g. 64 training images, a Dataset or a "
                             "DataLoader): the alternatives are distilled and the surviving candidate chosen on it")
        calib = calibration_batch(calibration, calibration_samples)
        refs = [CandidateRef.parse(c) for c in candidates]
        if example_input is None:
            example_input = getattr(model, "input_shape", None) or tuple(calib.shape[1:])
        gated = gate_model(model, slots, refs, example_input=example_input, calibration=calib, strict=strict,
                           **gating)
        skipped = skipped_candidates(gated, refs)
        if skipped and list(candidates) != list(DEFAULT_CANDIDATES):  # the defaults: recorded, not warned about
            warnings.warn(f"candidates skipped where they do not apply: {skipped_message(skipped)}", stacklevel=2)
        shape = tuple(example_input.shape[1:]) if isinstance(example_input, torch.Tensor) else tuple(example_input)
        costs = assign_costs(gated, model, cost_model, cost_context or CostContext(shape))
        self._setup(gated, lam=lam, calibration=calib, weights=weights, handoff=handoff,
                    single_candidate=single_candidate, nonnegative=nonnegative, cost_model=cost_model,
                    lam_warmup_steps=lam_warmup_steps)
        self.report["skipped_candidates"] = skipped
        self.report["costs"] = costs

    @classmethod
    def from_gated(
        cls, gated: nn.Module, *, lam: float, calibration: Any, weights: str = "frozen", handoff: str = "rebuilt",
        single_candidate: bool = True, nonnegative: bool = False, cost_model: str | None = None,
        lam_warmup_steps: int = 0,
    ) -> Compressor:
        """A compressor for a network already gated and priced (:func:`darc.gate_model`,
        :func:`darc.assign_costs`), e.g. a gated start shared by several lambdas (copy it per lambda)."""
        self = cls.__new__(cls)
        self._setup(gated, lam=lam, calibration=calibration_batch(calibration), weights=weights, handoff=handoff,
                    single_candidate=single_candidate, nonnegative=nonnegative, cost_model=cost_model,
                    lam_warmup_steps=lam_warmup_steps)
        return self

    def _setup(self, gated: nn.Module, *, lam: float, calibration: torch.Tensor, weights: str, handoff: str,
               single_candidate: bool, nonnegative: bool, cost_model: str | None, lam_warmup_steps: int) -> None:
        if weights not in WEIGHTS:
            raise ValueError(f"weights must be one of {sorted(WEIGHTS)}, got {weights!r}")
        if handoff not in HANDOFFS:
            raise ValueError(f"handoff must be one of {sorted(HANDOFFS)}, got {handoff!r}")
        if not gated_slots(gated):
            raise ValueError("the network has no gated slots: gate it first (darc.gate_model) or use Compressor()")
        require_costs(gated)
        self.model = gated
        self.lam = check_lam(lam)
        self.calibration = calibration
        self.weights, self.handoff, self.single_candidate = weights, handoff, single_candidate
        self.cost_model = cost_model
        if lam_warmup_steps < 0:
            raise ValueError(f"lam_warmup_steps must be >= 0, got {lam_warmup_steps}")
        self.lam_warmup_steps = lam_warmup_steps
        self._prox = ProximalGateStep(gated, self.lam, nonnegative)
        self._start_state = pre_search_state(gated) if handoff == "rebuilt" else None
        self._frozen = self._freeze() if weights == "frozen" else []
        self.steps = 0
        self._checked: int | None = None
        self._compressed = False
        self.report: dict[str, Any] = {"lam": self.lam, "cost_model": cost_model, "weights": weights,
                                       "handoff": handoff, "single_candidate": single_candidate,
                                       "lam_warmup_steps": lam_warmup_steps}

    def _freeze(self) -> list[nn.Parameter]:
        gate_ids = {id(s.gate) for s in gated_slots(self.model).values()}
        held = [p for p in self.model.parameters() if id(p) not in gate_ids and p.requires_grad]
        for p in held:
            p.requires_grad_(False)
        return held

    def _unfreeze(self) -> None:
        for p in self._frozen:
            p.requires_grad_(True)
        self._frozen = []

    def param_groups(self, *, lr: float, lr_gate: float | None = None, weight_decay: float = 5e-4,
                     candidate_weight_decay: float | None = None, no_wd_on_bn_bias: bool = False,
                     ) -> list[dict[str, Any]]:
        """The search's parameter groups for ``torch.optim.SGD``: the gates (no momentum, no weight decay, lr
        ``lr_gate``, default ``lr``), and, unless the weights are frozen, the candidates and the rest."""
        return search_param_groups(self.model, lr=lr, lr_gate=lr if lr_gate is None else lr_gate,
                                   weight_decay=weight_decay, candidate_weight_decay=candidate_weight_decay,
                                   no_wd_on_bn_bias=no_wd_on_bn_bias)

    def _check_optimizer(self, optimizer: torch.optim.Optimizer) -> None:
        gate_ids = {id(s.gate) for s in gated_slots(self.model).values()}
        groups = [g for g in optimizer.param_groups if any(id(p) in gate_ids for p in g["params"])]
        if not groups:
            raise ValueError("the optimizer does not train the gates: build it from compressor.param_groups(lr=...)")
        bad = [g for g in groups if g.get("name") != GATES_GROUP]
        if bad or not isinstance(optimizer, torch.optim.SGD):
            raise ValueError("the proximal gate step needs plain SGD on a gate group of its own: build the "
                             "optimizer as torch.optim.SGD(compressor.param_groups(lr=...), ...)")
        (gates,) = groups
        if gates.get("momentum", 0.0) or gates.get("weight_decay", 0.0):
            raise ValueError("the gate group must have momentum 0 and weight_decay 0 (momentum would carry gates "
                             "past the soft threshold): keep compressor.param_groups()'s gate settings")

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """The proximal gate step (soft threshold at the gate group's lr times lambda times each cost); call it
        after every ``optimizer.step()`` of the search."""
        if self._compressed:
            raise CompressorStateError("this Compressor has already compressed: make a new one to search again")
        if self._checked != id(optimizer):
            self._check_optimizer(optimizer)
            self._checked = id(optimizer)
        ramp = min(1.0, (self.steps + 1) / self.lam_warmup_steps) if self.lam_warmup_steps else 1.0
        self._prox(optimizer, ramp)
        self.steps += 1

    def mark_searched(self, steps: int) -> None:
        """Count ``steps`` proximal steps that ran in an earlier process (a search resumed from its checkpoint
        after it finished); :meth:`compress` refuses a network no step has touched."""
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.steps += steps

    def compress(self) -> CompressionResult:
        """End the search: keep the strongest candidate per slot (unless ``single_candidate`` is off), rebuild
        the starting weights (handoff ``rebuilt``) and materialise a plain network."""
        if self._compressed:
            raise CompressorStateError("compress() was already called: use the result it returned")
        if self.steps == 0:
            raise CompressorStateError("no search step was taken: call compressor.step(optimizer) after every "
                                       "optimizer.step() of the search, then compress()")
        self._compressed = True
        self._unfreeze()
        gated = self.model.to("cpu").eval()
        if self.single_candidate:
            keep_strongest_candidate_(gated, self.calibration)
        searched_gates = gate_table(gated)
        if self._start_state is not None:
            rebuild_from_(gated, self._start_state)
        plain, arch = materialize(gated)
        self.report["output_max_abs_difference"] = _max_difference(gated, plain, self.calibration[:8])
        arch["search"] = {"lam": self.lam, "cost_model": self.cost_model, "arch_cost": architecture_cost(gated),
                          "handoff": self.handoff}
        kept = kept_labels(arch)
        self.report.update({"steps": self.steps, "arch_cost": architecture_cost(gated), "final_gates": searched_gates,
                            "kept": kept, "decisions": slot_decisions(kept)})
        return CompressionResult(plain, arch, self.report)


@torch.no_grad()
def _max_difference(gated: nn.Module, plain: nn.Module, x: torch.Tensor) -> float | None:
    """The largest absolute difference between the gated and the materialised network's outputs on ``x`` (both
    in eval mode; None where the output is not one tensor)."""
    was = plain.training
    a, b = gated.eval()(x), plain.eval()(x)
    plain.train(was)
    return float((a - b).abs().max()) if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) else None


def kept_labels(arch: dict[str, Any]) -> dict[str, list[str]]:
    """Slot name -> labels of the candidates an architecture record keeps (empty: dropped)."""
    return {s["name"]: [CandidateRef(k["alternative"], k["config"]).label for k in s["kept"]] for s in arch["slots"]}


def slot_decisions(kept: dict[str, list[str]]) -> dict[str, Any]:
    """Counts of slots ``kept`` (the original alone), ``replaced`` (alternatives only), ``mixed`` (the
    original beside alternatives) and ``dropped`` (nothing), and which alternatives replaced slots."""
    counts = {"kept": 0, "replaced": 0, "mixed": 0, "dropped": 0}
    replaced_by: dict[str, int] = {}
    for labels in kept.values():
        if not labels:
            counts["dropped"] += 1
        elif labels == ["original"]:
            counts["kept"] += 1
        elif "original" in labels:
            counts["mixed"] += 1
        else:
            counts["replaced"] += 1
            key = "+".join(labels)
            replaced_by[key] = replaced_by.get(key, 0) + 1
    return {**counts, "replaced_by": dict(sorted(replaced_by.items()))}


@torch.no_grad()
def keep_strongest_candidate_(gated: nn.Module, calibration: torch.Tensor) -> dict[str, str]:
    """In every slot with several non-zero gates, zero all but the candidate whose gated output
    ``||alpha_j B_j(x)||`` on the slot's inputs (from ``calibration``) is largest, and give it the sum of the
    live gates (the candidates share the slot's output, so the slot keeps its scale); returns slot -> kept
    label."""
    from darc.slots import capture_io

    slots = gated_slots(gated)
    inputs = {n: io[0] for n, io in capture_io(gated, list(slots), calibration).items()}
    kept = {}
    for name, slot in slots.items():
        live = [j for j in range(len(slot.candidates)) if slot.gate[j] != 0]
        if len(live) < 2:
            continue
        strength = {j: float((slot.gate[j] * slot.candidates[j](inputs[name])).norm()) for j in live}
        best = max(strength, key=strength.__getitem__)
        total = float(slot.gate[live].sum())
        slot.gate[live] = 0.0
        slot.gate[best] = total
        kept[name] = slot.labels[best]
    return kept


def _gate_keys(gated: nn.Module) -> set[str]:
    return {f"{name}.gate" if name else "gate" for name in gated_slots(gated)}


def pre_search_state(gated: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every parameter and buffer of ``gated`` but the gates (what :func:`rebuild_from_` restores)."""
    gate_keys = _gate_keys(gated)
    return {k: v.detach().clone() for k, v in gated.state_dict().items() if k not in gate_keys}


@torch.no_grad()
def rebuild_from_(gated: nn.Module, start_state: dict[str, torch.Tensor]) -> None:
    """Restore ``start_state`` (from :func:`pre_search_state`) and put each slot's surviving candidates at full
    strength: their gates rescaled so their magnitudes sum to 1 (signs kept). Zero gates stay zero, so the
    architecture is the search's; only the weights, statistics and gate sizes go back to the start."""
    missing, unexpected = gated.load_state_dict(start_state, strict=False)
    if unexpected or set(missing) - _gate_keys(gated):
        raise ValueError(f"the pre-search state does not fit this network: missing {missing}, unexpected {unexpected}")
    for slot in gated_slots(gated).values():
        total = float(slot.gate.abs().sum())
        if total > 0:
            slot.gate.div_(total)
