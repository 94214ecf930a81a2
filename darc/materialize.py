"""Materialise a gated network into a plain, smaller ``nn.Module`` plus an architecture file.

Candidates whose gate is exactly zero are dropped; each surviving gate is folded into its
candidate's last conv / linear / BN layer (through trailing ReLUs and max-pools when the gate is
positive, since those are positively homogeneous); where nothing can absorb it (identity, a module
ending in a non-homogeneous op) a constant :class:`darc.nn.Scaled` keeps it.

A slot with every gate at zero is removed as its :attr:`darc.gates.GatedSlot.removal` says (:data:`REMOVALS`):
a built-in residual branch leaves its block's shortcut (``block.branch = None``); a slot the network's
output does not hang on (a residual or parallel branch, a conv inside a built-in branch) becomes
:class:`darc.nn.ZeroOutput`; a whole block with equal input and output shapes becomes the identity; a
whole block the network hangs on that cannot be the identity is refused (:class:`UnsafeRemovalError`):
never a network whose output no longer depends on its input.

The architecture file (JSON) names the base model and, per slot, the kept candidates and their
configs; :func:`build` turns it plus a state dict back into the same plain module.
"""

from __future__ import annotations

import copy
import json
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from darc.blocks import ResidualBranchBlock, expose_branches
from darc.gates import CandidateRef, GatedSlot, build_candidate, gated_slots, unremovable_message
from darc.io import atomic_write_json, load_weights
from darc.nn import Scaled, SumOf, ZeroOutput
from darc.scaling import last_affine
from darc.slots import SlotSpec, default_removal, output_depends_on_input

ARCH_FORMAT = "darc-architecture/1"


class ArchitectureError(ValueError):
    """An architecture file does not fit the model it is applied to."""


class UnsafeRemovalError(ValueError):
    """Removing the slots that lost every candidate would leave a network whose output ignores its input."""


#: What replaces a slot that keeps no candidate, by removal mode (``None``: the block keeps its shortcut).
REMOVALS: dict[str, Callable[[SlotSpec], nn.Module | None]] = {
    "shortcut": lambda spec: None,
    "zero": lambda spec: ZeroOutput(spec.out_shape, spec.stride),
    "identity": lambda spec: nn.Identity(),
}


@torch.no_grad()
def fold_scale_(module: nn.Module, scale: float) -> bool:
    """Multiply ``module``'s output by ``scale`` by rescaling its last affine layer in place.

    Returns False (and changes nothing) where no layer can absorb the scale.
    """
    if scale == 1.0:
        return True
    target = last_affine(module, positive=scale > 0)
    if target is None:
        return False
    target.weight.mul_(scale)
    if target.bias is not None:
        target.bias.mul_(scale)
    return True


def assemble_slot(spec: SlotSpec, parts: list[nn.Module], removal: str | None = None) -> nn.Module | None:
    """What replaces a slot that keeps ``parts``: the part, their sum, or, with none kept, what ``removal``
    (default: by the slot's kind) names in :data:`REMOVALS`."""
    if not parts:
        return REMOVALS[removal or default_removal(spec.kind)](spec)
    return parts[0] if len(parts) == 1 else SumOf(parts)


def _refuse_unremovable(slots: dict[str, GatedSlot], emptied: list[str]) -> None:
    """Raise :class:`UnsafeRemovalError` for emptied slots that cannot be removed."""
    stuck = [slots[n].spec for n in emptied if slots[n].removal == "refuse"]
    if stuck:
        raise UnsafeRemovalError(unremovable_message(stuck))


def _check_still_depends(model: nn.Module, slots: dict[str, GatedSlot], emptied: list[str]) -> None:
    """Refuse a materialised ``model`` whose output no longer depends on its input once the whole-module
    slots in ``emptied`` output zeros (each alone was probed when gated; together they may cut every path)."""
    zeroed = [n for n in emptied if slots[n].spec.kind == "module" and slots[n].removal == "zero"]
    shape = next((slots[n].probe_shape for n in zeroed if slots[n].probe_shape is not None), None)
    if not zeroed or shape is None:
        return
    try:
        depends = output_depends_on_input(model, shape)
    except Exception as exc:  # noqa: BLE001 - an input the probe cannot fake: say so, keep the zeros
        warnings.warn(f"cannot check that the network survives removing {zeroed} ({exc})", stacklevel=3)
        return
    if not depends:
        names = ", ".join(repr(n) for n in zeroed)
        raise UnsafeRemovalError(
            f"slots {names} lost every candidate (all gates 0) and output zeros, and together they cut every path "
            "from the network's input to its output (its output no longer depends on its input). Lower lam, or "
            "leave some of them out of the slots"
        )


def _install(model: nn.Module, spec: SlotSpec, module: nn.Module | None) -> None:
    parent_name, _, attr = spec.name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, attr, module)


def _base_record(model: nn.Module) -> dict[str, Any]:
    """Which base network: its registered name (or class) and kwargs, and ``"exposed_branches": true`` where
    its residual blocks were rebuilt by :func:`darc.blocks.expose_branches` (so :func:`build` does it again)."""
    record = {
        "name": getattr(model, "model_name", None),
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "kwargs": dict(getattr(model, "model_kwargs", {}) or {}),
    }
    if any(isinstance(m, ResidualBranchBlock) for m in model.modules()):
        record["exposed_branches"] = True
    return record


def _removal_record(slot: GatedSlot, parts: list[nn.Module]) -> dict[str, str]:
    """``{"removed_as": mode}`` for a whole-module slot that kept nothing (built-in slots' files are unchanged:
    their kind says how they were removed)."""
    return {"removed_as": slot.removal} if not parts and slot.spec.kind == "module" else {}


def materialize(gated_model: nn.Module, threshold: float = 0.0) -> tuple[nn.Module, dict[str, Any]]:
    """A plain copy of ``gated_model`` with gates folded away, and its architecture record.

    ``threshold`` (off by default) also drops candidates with ``|gate| <= threshold``; that changes
    the network's function, so a warning says by how much gate mass.
    """
    model = copy.deepcopy(gated_model)
    slots_record = []
    slots = gated_slots(model)
    emptied = [n for n, s in slots.items() if all(g == 0 or abs(g) <= threshold for g in s.gate.detach().tolist())]
    _refuse_unremovable(slots, emptied)
    for name, slot in slots.items():
        parts, kept = [], []
        gates = slot.gate.detach().tolist()
        cut = [g for g in gates if g != 0 and abs(g) <= threshold]
        if cut:
            warnings.warn(f"slot {name}: threshold {threshold} drops non-zero gates {cut}", stacklevel=2)
        for candidate, ref, g in zip(slot.candidates, slot.refs, gates):
            if abs(g) <= threshold or g == 0:
                continue
            scaled = not fold_scale_(candidate, g)
            parts.append(Scaled(candidate, g) if scaled else candidate)
            kept.append({**ref.to_dict(), "gate": g, "constant_scale": scaled})
        _install(model, slot.spec, assemble_slot(slot.spec, parts, slot.removal))
        slots_record.append({**slot.spec.to_dict(), "kept": kept, **_removal_record(slot, parts)})
    _check_still_depends(model, slots, emptied)
    arch = {"format": ARCH_FORMAT, "base_model": _base_record(gated_model), "slots": slots_record}
    return model, arch


def check_architecture(arch: Any) -> None:
    """Refuse a record that is not a well-formed architecture (a file edited by hand, or another file):
    an :class:`ArchitectureError` naming the first bad field."""
    if not isinstance(arch, dict) or arch.get("format") != ARCH_FORMAT:
        got = arch.get("format") if isinstance(arch, dict) else type(arch).__name__
        raise ArchitectureError(f"not a darc architecture file (format {got!r}, want {ARCH_FORMAT!r})")

    def bad(where: str, what: str) -> ArchitectureError:
        return ArchitectureError(f"malformed architecture: {where} must be {what}")

    base = arch.get("base_model")
    if not isinstance(base, dict) or not isinstance(base.get("class"), str) or not isinstance(
            base.get("kwargs"), dict) or not isinstance(base.get("name"), str | None):
        raise bad("base_model", "a mapping with 'name' (str or null), 'class' (str) and 'kwargs' (mapping)")
    if not isinstance(base.get("exposed_branches", False), bool):
        raise bad("base_model.exposed_branches", "true or false")
    if not isinstance(arch.get("slots"), list | tuple):
        raise bad("slots", "a list")
    for i, slot in enumerate(arch["slots"]):
        where = f"slots[{i}]"
        if not isinstance(slot, dict) or not isinstance(slot.get("name"), str) or not isinstance(slot.get("kind"), str):
            raise bad(where, "a mapping with a 'name' and a 'kind'")
        for key in ("in_shape", "out_shape"):
            shape = slot.get(key)
            if not isinstance(shape, list | tuple) or not all(isinstance(d, int) and d > 0 for d in shape):
                raise bad(f"{where}.{key}", "a list of positive integers")
        if not isinstance(slot.get("kept"), list | tuple):
            raise bad(f"{where}.kept", "a list")
        if "removed_as" in slot and slot["removed_as"] not in REMOVALS:
            raise bad(f"{where}.removed_as", f"one of {sorted(REMOVALS)}")
        for j, kept in enumerate(slot["kept"]):
            w = f"{where}.kept[{j}]"
            if not isinstance(kept, dict) or not isinstance(kept.get("alternative"), str):
                raise bad(w, "a mapping with an 'alternative' name")
            if not isinstance(kept.get("config"), dict):
                raise bad(f"{w}.config", "a mapping")
            gate = kept.get("gate")
            if isinstance(gate, bool) or not isinstance(gate, int | float) or not math.isfinite(gate):
                raise bad(f"{w}.gate", "a finite number")
            if not isinstance(kept.get("constant_scale"), bool):
                raise bad(f"{w}.constant_scale", "true or false")


def build(
    arch: dict[str, Any], state_dict: dict[str, torch.Tensor] | None = None, base_model: nn.Module | None = None,
) -> nn.Module:
    """Rebuild the plain materialised network from an architecture record (and weights).

    The base network comes from the model registry (``arch['base_model']``) or, for a user's own
    model, from ``base_model`` (a freshly constructed instance of the same class). Where the record says
    ``exposed_branches``, its residual blocks are exposed first (:func:`darc.blocks.expose_branches`), as they
    were when it was gated with ``slots="branch"``.
    """
    check_architecture(arch)
    base_rec = arch["base_model"]
    if base_model is None:
        if not base_rec.get("name"):
            raise ArchitectureError(
                f"the architecture's base model ({base_rec['class']}) is not a registered darc model: "
                "pass base_model=<a fresh instance of it> to build()"
            )
        from darc.models import create_model

        base_model = create_model(base_rec["name"], **base_rec["kwargs"])
    else:
        base_model = copy.deepcopy(base_model)
    got = _base_record(base_model)
    same = got["name"] == base_rec["name"] if base_rec.get("name") else got["class"] == base_rec["class"]
    if not same or (base_rec.get("name") and got["kwargs"] != base_rec["kwargs"]):
        raise ArchitectureError(
            f"this architecture file is for base model {base_rec['name'] or base_rec['class']} "
            f"{base_rec['kwargs']}, not {got['name'] or got['class']} {got['kwargs']}: use the matching base model"
        )
    if base_rec.get("exposed_branches"):
        base_model, _ = expose_branches(base_model, inplace=True)
    for slot in arch["slots"]:
        spec = SlotSpec.from_dict(slot)
        try:
            original = base_model.get_submodule(spec.name)
        except AttributeError:
            raise ArchitectureError(f"base model has no slot {spec.name!r}: wrong base model?") from None
        parts = []
        for kept in slot["kept"]:
            ref = CandidateRef(kept["alternative"], kept["config"])
            try:
                module = build_candidate(ref, spec, original, init=False)
            except (KeyError, TypeError, ValueError) as exc:  # an unknown alternative or config, wrong shapes
                msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
                raise ArchitectureError(f"slot {spec.name!r}: cannot rebuild {ref.label!r}: {msg}") from exc
            parts.append(Scaled(module, kept["gate"]) if kept["constant_scale"] else module)
        _install(base_model, spec, assemble_slot(spec, parts, slot.get("removed_as")))
    if state_dict is not None:
        load_weights(base_model, state_dict, "the given state dict")
    return base_model


def save_materialized(model: nn.Module, arch: dict[str, Any], out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``architecture.json`` and ``weights.pt`` (a plain state dict) atomically into ``out_dir``."""
    from darc.io import atomic_torch_save

    out = Path(out_dir)
    arch_path = atomic_write_json(arch, out / "architecture.json")
    weights_path = atomic_torch_save(model.state_dict(), out / "weights.pt")
    return arch_path, weights_path


def load_materialized(
    arch_path: str | os.PathLike, weights_path: str | os.PathLike | None = None, base_model: nn.Module | None = None,
) -> nn.Module:
    """Rebuild a materialised network from its files (weights loaded with ``weights_only=True``).

    A file that is not a well-formed architecture raises :class:`ArchitectureError`, weights of another
    network :class:`darc.io.CheckpointError`; each message is one line that names the file."""
    from darc.io import safe_torch_load

    arch_path = Path(arch_path)
    if not arch_path.exists():
        raise FileNotFoundError(f"no architecture file at {arch_path}: run darc search first, or check the path")
    try:
        arch = json.loads(arch_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArchitectureError(f"{arch_path} is not a JSON architecture file ({exc})") from None
    try:
        model = build(arch, None, base_model=base_model)
    except ArchitectureError as exc:
        raise ArchitectureError(f"{arch_path}: {exc}") from exc
    if weights_path is not None:
        load_weights(model, safe_torch_load(weights_path), weights_path)
    return model
