"""Gates: wrap chosen slots into learnable mixtures ``sum_j alpha_j * candidate_j(x)``.

:func:`gate_model` turns any ``nn.Module`` into a gated one: each chosen slot is replaced by a
:class:`GatedSlot` holding the original and its cheaper alternatives. Gates are plain learnable
scalars (not softmax weights: an l1 penalty does nothing on a simplex). The original's gate starts
at ``original_gate`` (1.0), alternatives at ``alternative_gate`` (small but non-zero: a gate at
exactly zero would never let its candidate train).

A candidate whose gate is exactly zero is skipped in the forward pass (no compute, no gradient):
with the proximal optimiser of :mod:`darc.penalty` a zeroed candidate therefore stays dropped.
Pass ``revive=True`` to keep computing it so its gate can come back.

A slot whose gates are all zero is removed the way :mod:`darc.materialize` will remove it
(:attr:`GatedSlot.removal`): a residual branch or a parallel branch outputs zeros (the network's output
still depends on its input), a whole block whose input and output shapes match passes its input on
(identity), and a whole block that is the only path from input to output cannot be removed (it outputs
zeros with a warning, and materialisation refuses the network).
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from darc.alternatives import check_options, distill, get_alternative
from darc.blocks import expose_branches, list_block_adapters
from darc.scaling import last_affine_name
from darc.slots import (
    REMOVAL_MODES,
    SlotSpec,
    capture_io,
    default_removal,
    describe_slots,
    module_removal,
    output_depends_on_input,
    select_modules,
)


class IncompatibleAlternativeError(ValueError):
    """A candidate cannot replace a slot (wrong output shape, or not applicable)."""


@dataclass(frozen=True)
class CandidateRef:
    """Which alternative, with which (JSON-serialisable) config."""

    alternative: str
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if not self.config:
            return self.alternative
        args = ",".join(f"{k}={v}" for k, v in sorted(self.config.items()))
        return f"{self.alternative}({args})"

    def to_dict(self) -> dict[str, Any]:
        return {"alternative": self.alternative, "config": dict(self.config)}

    @classmethod
    def parse(cls, item: str | dict[str, Any] | CandidateRef) -> CandidateRef:
        """Accept ``"dwsep"``, ``{"alternative": "narrow", "ratio": 0.5}`` or
        ``{"alternative": "narrow", "config": {"ratio": 0.5}}``."""
        if isinstance(item, CandidateRef):
            return item
        if isinstance(item, str):
            return cls(item)
        item = dict(item)
        name = item.pop("alternative")
        config = item.pop("config", {})
        return cls(name, {**config, **item})


#: Default candidates: the original, narrower versions, a depthwise-separable branch, and identity
#: (identity only applies to shape-preserving whole-module slots; others skip it).
DEFAULT_CANDIDATES: tuple[str | dict[str, Any], ...] = (
    "original",
    {"alternative": "narrow", "ratio": 0.5},
    {"alternative": "narrow", "ratio": 0.25},
    "dwsep",
    "identity",
)


def scaled_call(module: nn.Module, scale: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``scale * module(x)``, computed by scaling the weights of ``module``'s last affine layer when
    everything after it is linear (:mod:`darc.scaling`): a few weights are multiplied instead of a whole
    activation tensor, forward and backward. Otherwise the output is scaled."""
    name = last_affine_name(module, positive=False)
    if name is None:
        return scale * module(x)
    layer = module.get_submodule(name)
    prefix = f"{name}." if name else ""
    scaled = {f"{prefix}weight": layer.weight * scale}
    if layer.bias is not None:
        scaled[f"{prefix}bias"] = layer.bias * scale
    return functional_call(module, scaled, (x,))


class GatedSlot(nn.Module):
    """``sum_j gate[j] * candidates[j](x)``; with every gate at zero, the slot's input where ``removal`` is
    ``"identity"``, else a zero output of the slot's shape.

    ``removal`` (default: by the slot's kind, :func:`darc.slots.default_removal`) says how the slot is removed
    once it loses every candidate; ``probe_shape`` (the network's input shape, set by :func:`gate_model`) lets
    materialisation check that the network's output still depends on its input.
    """

    def __init__(
        self, spec: SlotSpec, candidates: Sequence[nn.Module], refs: Sequence[CandidateRef],
        gates: Sequence[float], revive: bool = False, removal: str | None = None,
        probe_shape: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__()
        if not (len(candidates) == len(refs) == len(gates)) or not candidates:
            raise ValueError("a gated slot needs one ref and one gate per candidate, and at least one")
        removal = removal or default_removal(spec.kind)
        if removal not in REMOVAL_MODES:
            raise ValueError(f"removal must be one of {REMOVAL_MODES}, got {removal!r}")
        self.removal = removal
        self.probe_shape = probe_shape
        self._warned_unremovable = False
        self.spec = spec
        self.refs = list(refs)
        self.candidates = nn.ModuleList(candidates)
        like = next((p for p in self.candidates.parameters() if p.is_floating_point()), None)
        # on the candidates' device, in their dtype (at least float32: a gate's small proximal steps)
        where: dict[str, Any] = {} if like is None else {
            "device": like.device, "dtype": torch.promote_types(like.dtype, torch.float32)}
        self.gate = nn.Parameter(torch.tensor([float(g) for g in gates], **where))
        self.register_buffer("cost", torch.zeros(len(candidates), **where))
        self.cost_model: str | None = None  # set by darc.costs.assign_costs: the costs were assigned
        self.revive = revive
        self.distill_error: list[float | None] = [None] * len(candidates)  # set by gate_model's preparation

    @property
    def labels(self) -> list[str]:
        return [r.label for r in self.refs]

    def zeros_for(self, x: torch.Tensor) -> torch.Tensor:
        shape = list(self.spec.out_shape)
        if x.dim() == 4 and len(shape) == 3:
            shape[1:] = [math.ceil(s / self.spec.stride) for s in x.shape[2:]]
        return x.new_zeros(x.shape[0], *shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        active = [True] * len(self.candidates) if self.revive else (self.gate != 0).tolist()
        out: torch.Tensor | None = None
        for j, (candidate, on) in enumerate(zip(self.candidates, active)):
            if not on:
                continue
            y = scaled_call(candidate, self.gate[j], x)
            out = y if out is None else out + y
        if out is None:
            return self.removed_output(x)
        if self.removal == "identity" and self.revive and not bool((self.gate != 0).any()):
            return x + out  # every gate is zero: removed, while the candidates keep their gradients
        return out

    def removed_output(self, x: torch.Tensor) -> torch.Tensor:
        """The output of the slot once it has lost every candidate (see :attr:`removal`)."""
        if self.removal == "identity":
            return x
        if self.removal == "refuse" and not self._warned_unremovable:
            self._warned_unremovable = True
            warnings.warn(unremovable_message([self.spec]) + " (materialisation will refuse this network)",
                          stacklevel=3)
        return self.zeros_for(x)

    def extra_repr(self) -> str:
        gates = ", ".join(f"{l}={g:.4g}" for l, g in zip(self.labels, self.gate.tolist()))
        return f"slot={self.spec.name!r}, gates=[{gates}]"


def unremovable_message(specs: Sequence[SlotSpec]) -> str:
    """One line: these whole-module slots lost every candidate but cannot be removed, and what to do."""
    names = ", ".join(repr(s.name) for s in specs)
    shapes = "; ".join(f"{s.name!r} maps {s.in_shape} to {s.out_shape}" for s in specs)
    return (
        f"slot{'s' if len(specs) > 1 else ''} {names} lost every candidate (all gates 0) but cannot be removed: "
        f"with zeros in its place the network's output no longer depends on its input, and it cannot become the "
        f"identity ({shapes}). Lower lam, leave it out of the slots, or gate the residual branch inside it "
        "instead (a sub-module whose output is added to a skip connection)"
    )


def gated_slots(model: nn.Module) -> dict[str, GatedSlot]:
    """All gated slots of ``model`` by module name."""
    return {n: m for n, m in model.named_modules() if isinstance(m, GatedSlot)}


def gate_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The gate vectors (one per slot)."""
    return [s.gate for s in gated_slots(model).values()]


def candidate_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Every weight that lives inside a gated candidate."""
    return [p for s in gated_slots(model).values() for p in s.candidates.parameters()]


def gate_table(model: nn.Module) -> list[dict[str, Any]]:
    """One row per (slot, candidate): gate value and normalised cost."""
    return [
        {"slot": name, "candidate": label, "gate": g, "cost": c}
        for name, slot in gated_slots(model).items()
        for label, g, c in zip(slot.labels, slot.gate.tolist(), slot.cost.tolist())
    ]


#: How gates start (:func:`gate_model`).
GATE_INITS = ("fixed", "share")


def has_weights(module: nn.Module) -> bool:
    """Whether ``module`` has any parameter (weightless candidates, such as identity, cost nothing)."""
    return next(module.parameters(), None) is not None


def initial_gates(
    refs: Sequence[CandidateRef], candidates: Sequence[nn.Module], mode: str, original_gate: float,
    alternative_gate: float, original_share: float | None = None,
) -> list[float]:
    """Starting gate of each candidate of a slot under ``mode`` (see :func:`gate_model`)."""
    if mode == "fixed":
        return [original_gate if r.alternative == "original" else alternative_gate for r in refs]
    weighted = [has_weights(c) for c in candidates]
    is_original = [r.alternative == "original" for r in refs]
    k = sum(weighted)
    if original_share is None or k < 2 or not any(is_original):
        return [1.0 / k if w else alternative_gate for w in weighted]
    rest = (1.0 - original_share) / (k - 1)
    return [alternative_gate if not w else original_share if o else rest for w, o in zip(weighted, is_original)]


def _resolve_slots(
    model: nn.Module, slots: str | Sequence[str] | Callable[[str, nn.Module], bool]
) -> tuple[nn.Module, list[str], str]:
    """The model to gate (third-party residual blocks exposed for ``slots="branch"``), the slot names and kind."""
    slot_names = getattr(model, "slot_names", None)
    if isinstance(slots, str) and slots in ("branch", "conv"):
        if slot_names is not None:
            return model, list(slot_names(slots)), slots
        if slots == "conv":
            raise ValueError(
                f"slots='conv' needs a built-in darc model; for {type(model).__name__} name the "
                "slots by module name, glob pattern or predicate"
            )
        return (*_exposed_branches(model), "branch")
    names = select_modules(model, slots)
    nested = [(a, b) for a in names for b in names if b.startswith(a + ".")]
    if nested:
        raise ValueError(f"slots must not be nested: {nested[0][1]!r} lies inside {nested[0][0]!r}")
    return model, names, "module"


def _exposed_branches(model: nn.Module) -> tuple[nn.Module, list[str]]:
    """``model`` (changed in place) with its residual blocks' branches exposed, and the branch names; a
    ValueError saying what to do where it has no block with an adapter."""
    model, names = expose_branches(model, inplace=True)
    if not names:
        raise ValueError(
            f"slots='branch' found no residual block with an adapter in {type(model).__name__} (adapters: "
            f"{', '.join(list_block_adapters())}); register one for your block class with "
            "darc.blocks.register_block_adapter, or name the slots by module name, glob pattern or predicate"
        )
    return model, names


def _removal_probe(model: nn.Module, specs: Sequence[SlotSpec], example_input: torch.Tensor | tuple[int, ...],
                   ) -> tuple[int, ...] | None:
    """The input shape whole-module slots are probed with (:func:`darc.slots.module_removal`), or None (with a
    warning) where the network's output does not depend on a random input to begin with, or cannot be probed."""
    if not any(s.kind == "module" for s in specs):
        return None
    shape = tuple(example_input.shape[1:]) if isinstance(example_input, torch.Tensor) else tuple(example_input)
    try:
        if output_depends_on_input(model, shape):
            return shape
        reason = "its output does not depend on its input (an untrained, zero-initialised head?)"
    except Exception as exc:  # noqa: BLE001 - an input the probe cannot fake (e.g. token ids)
        reason = f"it cannot be probed with random inputs ({exc})"
    warnings.warn(f"cannot check which slots of {type(model).__name__} can be removed: {reason}; a whole-module "
                  "slot that loses every candidate will output zeros", stacklevel=3)
    return None


def slot_removal(model: nn.Module, spec: SlotSpec, probe_shape: tuple[int, ...] | None) -> str:
    """How ``spec`` is removed once it loses every candidate: by its kind for a built-in model's slots, probed
    for a whole-module slot (:func:`darc.slots.module_removal`), zeros where it cannot be probed."""
    if spec.kind != "module" or probe_shape is None:
        return default_removal(spec.kind)
    return module_removal(model, spec, probe_shape)


def build_candidate(
    ref: CandidateRef, spec: SlotSpec, original: nn.Module, init: bool,
    calibration: torch.Tensor | None = None,
) -> nn.Module:
    """Build one candidate and check it has the slot's output shape (clear error if not)."""
    alt = get_alternative(ref.alternative)
    check_options(ref.alternative, ref.config)
    reason = alt.applicable(spec, original)
    if reason:
        raise IncompatibleAlternativeError(
            f"alternative {ref.label!r} cannot replace slot {spec.name!r}: {reason}. Remove it from "
            "this slot's candidates, or register an alternative that fits."
        )
    extra = {"calibration": calibration} if (init and calibration is not None) else {}
    module = alt.build(spec, original, init, **ref.config, **extra)
    param = next(original.parameters(), None)
    probe = torch.zeros(2, *spec.in_shape, device=param.device if param is not None else "cpu",
                        dtype=param.dtype if param is not None and param.is_floating_point() else None)
    was_training = module.training
    module.eval()
    with torch.no_grad():
        out = module(probe)
    module.train(was_training)
    if tuple(out.shape[1:]) != tuple(spec.out_shape):
        raise IncompatibleAlternativeError(
            f"alternative {ref.label!r} for slot {spec.name!r} maps input {spec.in_shape} to "
            f"{tuple(out.shape[1:])}, but the slot must output {spec.out_shape}. Remove it from this "
            "slot's candidates or fix its build()."
        )
    return module


def gate_model(
    model: nn.Module,
    slots: str | Sequence[str] | Callable[[str, nn.Module], bool] = "branch",
    candidates: Sequence[str | dict[str, Any] | CandidateRef] = DEFAULT_CANDIDATES,
    *,
    example_input: torch.Tensor | tuple[int, ...] | None = None,
    calibration: torch.Tensor | None = None,
    original_gate: float = 1.0,
    alternative_gate: float = 0.05,
    gate_init: str = "share",
    original_share: float | None = 0.5,
    distill_steps: int = 100,
    distill_lr: float = 1e-2,
    strict: bool = False,
    revive: bool = False,
    inplace: bool = False,
) -> nn.Module:
    """Return ``model`` with each chosen slot replaced by a :class:`GatedSlot`.

    ``slots``: ``"branch"``/``"conv"`` for a built-in model's slot list, module names or glob
    patterns, or a predicate ``(name, module) -> bool``. On another model ``"branch"`` gates the residual
    branches of the blocks :func:`darc.blocks.expose_branches` can adapt (torchvision / timm ResNet blocks,
    MobileNetV2's inverted residuals, ones registered with :func:`darc.blocks.register_block_adapter`).
    ``candidates``: alternatives for every slot; ones that do not apply to a slot are skipped, unless ``strict``
    (then it is an error).
    ``example_input``: a batch or a (C, H, W) shape (built-in models know theirs).
    ``calibration``: a batch of real inputs; every alternative with weights is prepared by block-wise
    distillation (:func:`darc.alternatives.distill`, ``distill_steps`` Adam steps at ``distill_lr``) on
    the slot's inputs it produces (on Gaussian noise without it); ``distill_steps=0`` skips that.
    ``gate_init``: ``"fixed"`` starts the original at ``original_gate`` and alternatives at
    ``alternative_gate``; ``"share"``: the distilled candidates with weights share the slot's output (their
    gates sum to 1): the original ``original_share`` of it and the other ``k - 1`` equal parts of the rest
    (``None``: ``1/k`` each); weightless ones start at ``alternative_gate``. The original's head start
    makes a small lambda keep the base network, and a larger one hand the slot to a cheaper candidate.
    """
    if original_share is not None and not 0.0 < original_share < 1.0:
        raise ValueError(f"original_share must lie in (0, 1) (or be None for 1/k), got {original_share}")
    if gate_init not in GATE_INITS:
        raise ValueError(f"gate_init must be one of {GATE_INITS}, got {gate_init!r}")
    refs = [CandidateRef.parse(c) for c in candidates]
    if not any(r.alternative == "original" for r in refs):
        raise ValueError("the candidates must include 'original'")
    for ref in refs:  # every one, applicable to some slot or not: a typo is never silently ignored
        check_options(ref.alternative, ref.config)
    if not inplace:
        model = copy.deepcopy(model)
    model, names, kind = _resolve_slots(model, slots)
    if example_input is None:
        example_input = getattr(model, "input_shape", None)
        if example_input is None:
            raise ValueError(f"pass example_input (a batch or a C,H,W shape) to gate {type(model).__name__}")
    specs = describe_slots(model, names, example_input, kind=kind)
    probe_shape = _removal_probe(model, specs, example_input)
    removals = {spec.name: slot_removal(model, spec, probe_shape) for spec in specs}
    slot_inputs: dict[str, torch.Tensor] = {}
    if calibration is not None:
        slot_inputs = {n: io[0] for n, io in capture_io(model, names, calibration).items()}
    for spec in specs:
        original = model.get_submodule(spec.name)
        mods, kept_refs = [], []
        for ref in refs:
            if not strict and get_alternative(ref.alternative).applicable(spec, original):
                continue
            mods.append(build_candidate(ref, spec, original, True, slot_inputs.get(spec.name)))
            kept_refs.append(ref)
        errors = [distill(m, original, spec, slot_inputs.get(spec.name), distill_steps, distill_lr)
                  if r.alternative != "original" and has_weights(m) and distill_steps > 0 else None
                  for m, r in zip(mods, kept_refs)]
        gates = initial_gates(kept_refs, mods, gate_init, original_gate, alternative_gate, original_share)
        slot = GatedSlot(spec, mods, kept_refs, gates, revive=revive, removal=removals[spec.name],
                         probe_shape=probe_shape)
        slot.distill_error = errors
        model.set_submodule(spec.name, slot)
    return model
