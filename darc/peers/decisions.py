"""Random decisions with DARC's counts, and DARC's architecture from scratch: the two controls that ask
whether the search chose *which* slots to change well, and whether its weights are worth more than its
architecture.

A *decision* per slot is the candidate it keeps: ``None`` (dropped), ``original``, or an alternative
(:class:`darc.gates.CandidateRef`). :func:`draw_random_decisions` keeps DARC's multiset of decisions (so
the same number of slots are dropped, kept and replaced, by the same alternatives) and deals it to the
slots at random, each slot only getting a decision that applies to it. :func:`decided_network` builds that
network from the trained base the way a search starts (alternatives distilled block-wise on the slot's
inputs) and materialises it with each kept candidate's gate set to 1.
"""

from __future__ import annotations

import copy
import random
from typing import Any

import torch
from torch import nn

from darc.gates import CandidateRef, gate_model, gated_slots
from darc.materialize import build, materialize

Decision = CandidateRef | None  # None: the slot is dropped


def architecture_decisions(arch: dict[str, Any]) -> dict[str, Decision]:
    """Slot name -> the one candidate a materialised architecture keeps (``None`` where it is dropped).

    Refuses a slot that keeps several candidates (a mixture): searches with ``single_candidate`` give one."""
    out: dict[str, Decision] = {}
    for slot in arch["slots"]:
        kept = slot["kept"]
        if len(kept) > 1:
            raise ValueError(f"slot {slot['name']!r} keeps {len(kept)} candidates; random decisions need one per "
                             "slot (search with search.single_candidate: true)")
        out[slot["name"]] = CandidateRef(kept[0]["alternative"], kept[0]["config"]) if kept else None
    return out


def keeps_base_architecture(arch: dict[str, Any]) -> bool:
    """Whether a materialised architecture is the base's: every slot keeps its original, alone."""
    return all(len(slot["kept"]) == 1 and slot["kept"][0]["alternative"] == "original" for slot in arch["slots"])


def _label(decision: Decision) -> str | None:
    return None if decision is None else decision.label


def draw_random_decisions(
    decisions: dict[str, Decision], allowed: dict[str, set[str]], seed: int, *, tries: int = 1000,
) -> dict[str, Decision]:
    """DARC's decisions dealt to the slots at random (seeded): the same multiset, each slot getting one it
    can take (``allowed``: slot -> labels of the candidates that apply to it; dropping always applies).
    Raises if no such deal is found in ``tries`` shuffles."""
    names = list(decisions)
    pool = list(decisions.values())
    rng = random.Random(seed)
    for _ in range(tries):
        rng.shuffle(pool)
        if all(d is None or d.label in allowed[n] for n, d in zip(names, pool)):
            return dict(zip(names, pool))
    raise ValueError(f"no random deal of DARC's decisions fits the slots in {tries} tries")


def decision_counts(decisions: dict[str, Decision]) -> dict[str, int]:
    """How many slots are dropped, keep the original, and take each alternative (by label)."""
    counts: dict[str, int] = {}
    for d in decisions.values():
        key = "dropped" if d is None else d.label
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def gate_for_decisions(
    base: nn.Module, decisions: dict[str, Decision], *, slots: Any, example_input: tuple[int, ...],
    calibration: torch.Tensor | None, distill_steps: int, distill_lr: float,
) -> nn.Module:
    """``base`` gated with the original and every alternative ``decisions`` use, the alternatives distilled
    block-wise as before a search (so a kept alternative starts where DARC's did)."""
    refs = {d.label: d for d in decisions.values() if d is not None and d.alternative != "original"}
    candidates = ["original", *[refs[label].to_dict() for label in sorted(refs)]]
    return gate_model(base, slots, candidates, example_input=example_input, calibration=calibration,
                      distill_steps=distill_steps, distill_lr=distill_lr)


def allowed_labels(gated: nn.Module) -> dict[str, set[str]]:
    """Slot -> labels of the candidates gating built for it (the ones that apply)."""
    return {n: set(s.labels) for n, s in gated_slots(gated).items()}


@torch.no_grad()
def materialize_decisions(gated: nn.Module, decisions: dict[str, Decision]) -> tuple[nn.Module, dict[str, Any]]:
    """The plain network in which every slot of ``gated`` keeps its decided candidate at gate 1 (nothing
    where it is dropped); returns it and its architecture record."""
    gated = copy.deepcopy(gated)
    for name, slot in gated_slots(gated).items():
        want = _label(decisions[name])
        slot.gate.zero_()
        if want is not None:
            if want not in slot.labels:
                raise ValueError(f"slot {name!r} cannot take {want!r} (not applicable there)")
            slot.gate[slot.labels.index(want)] = 1.0
    return materialize(gated.eval())


def reinitialised(arch: dict[str, Any], seed: int, base_model: nn.Module | None = None) -> nn.Module:
    """The architecture ``arch`` with fresh weights: the base network's own initialisation (seeded) and
    each kept alternative built untrained, so only the architecture is inherited from the search."""
    torch.manual_seed(seed)
    random.seed(seed)
    return build(copy.deepcopy(arch), None, base_model=base_model)
