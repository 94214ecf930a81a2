"""What every built-in model shares: the residual-block contract and the slot listing.

Block contract (the DARC core relies on it, and nothing here knows about gates):

- every residual block is a :class:`ResidualBlock` with submodules ``branch`` (an ``nn.Sequential``
  of Conv2d / BatchNorm2d / ReLU / Dropout layers only, so it can be narrowed layer by layer) and
  ``shortcut`` (``nn.Identity`` when it is the identity);
- anything the branch and the shortcut share (a WRN block's pre-activation) belongs to the block;
- ``block.branch = None`` is allowed and makes the block compute only its shortcut path: this is
  how a dropped branch is materialised, at zero overhead.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from darc.slots import SlotSpec, describe_slots

BRANCH_LAYER_TYPES: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Dropout)


class ResidualBlock(nn.Module):
    """Marker base class: a block with a ``branch`` (possibly None) and a ``shortcut``."""

    branch: nn.Module | None
    shortcut: nn.Module


def _branch_slots(model: nn.Module) -> list[str]:
    return [
        f"{name}.branch"
        for name, m in model.named_modules()
        if isinstance(m, ResidualBlock) and m.branch is not None
    ]


def _conv_slots(model: nn.Module) -> list[str]:
    return [
        f"{branch}.{name}"
        for branch in _branch_slots(model)
        for name, m in model.get_submodule(branch).named_modules()
        if isinstance(m, nn.Conv2d)
    ]


SLOT_LEVELS: dict[str, Callable[[nn.Module], list[str]]] = {"branch": _branch_slots, "conv": _conv_slots}


class SlotsMixin:
    """Slot listing for built-in models; the model sets ``input_shape`` = (C, H, W)."""

    input_shape: tuple[int, int, int]

    def slot_names(self, level: str = "branch") -> list[str]:
        """Module names of the slots at ``level``: "branch" (residual branches) or "conv"
        (every Conv2d inside a branch), in forward order; usable with ``get_submodule``."""
        try:
            lister = SLOT_LEVELS[level]
        except KeyError:
            raise ValueError(f"slot level must be one of {sorted(SLOT_LEVELS)}, got {level!r}") from None
        return lister(self)  # type: ignore[arg-type]

    def slots(self, level: str = "branch") -> list[SlotSpec]:
        """The slots at ``level`` with their input/output shapes (one forward pass at input_shape)."""
        return describe_slots(self, self.slot_names(level), self.input_shape, kind=level)  # type: ignore[arg-type]
