"""Slots: the sub-modules whose output DARC may replace, and their shapes.

A slot is described by a :class:`SlotSpec`. Built-in models name their slots
(``model.slot_names(level)``); any other model names them by module path or by a
selector. Shapes are recorded by one forward pass with hooks, so nothing here
knows about particular architectures (or about gates).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass

import torch
from torch import nn

SLOT_KINDS = ("branch", "conv", "module")


@dataclass(frozen=True)
class SlotSpec:
    """What a candidate for a slot must match: its input and output shapes (batch excluded)."""

    name: str
    kind: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]

    @property
    def in_channels(self) -> int:
        return self.in_shape[0]

    @property
    def out_channels(self) -> int:
        return self.out_shape[0]

    @property
    def stride(self) -> int:
        """Spatial down-sampling factor (1 for non-spatial slots)."""
        if len(self.in_shape) < 2 or len(self.out_shape) < 2:
            return 1
        return max(1, round(self.in_shape[-1] / self.out_shape[-1]))

    @property
    def shape_preserving(self) -> bool:
        return self.in_shape == self.out_shape

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SlotSpec:
        return cls(d["name"], d["kind"], tuple(d["in_shape"]), tuple(d["out_shape"]))


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """``*`` matches within one dotted name part, ``**`` across parts, ``?`` one character."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^.]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^.]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def select_modules(model: nn.Module, selector: str | Sequence[str] | Callable[[str, nn.Module], bool]) -> list[str]:
    """Module names chosen by names / glob patterns or a predicate ``(name, module) -> bool``.

    In patterns ``*`` stays within one part of a dotted name (``layer1.*`` is ``layer1.0``,
    ``layer1.1``, not ``layer1.0.conv1``) and ``**`` crosses parts.
    """
    names = [n for n, _ in model.named_modules() if n]
    if callable(selector):
        modules = dict(model.named_modules())
        return [n for n in names if selector(n, modules[n])]
    patterns = [selector] if isinstance(selector, str) else list(selector)
    chosen: list[str] = []
    for pat in patterns:
        rx = _glob_regex(pat)
        hits = [n for n in names if rx.match(n)]
        if not hits:
            raise KeyError(
                f"slot selector {pat!r} matches no module of {type(model).__name__}; "
                f"module names look like {names[:5]}... (see model.named_modules())"
            )
        chosen.extend(h for h in hits if h not in chosen)
    return chosen


@torch.no_grad()
def capture_io(
    model: nn.Module, names: Iterable[str], example_input: torch.Tensor | tuple[int, ...],
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The first (input, output) of each named sub-module in one eval-mode forward pass.

    ``example_input`` is a tensor (batch included) or a shape without batch (zeros are used).
    """
    names = list(names)
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        raise KeyError(f"no module named {missing} in {type(model).__name__}")
    if not isinstance(example_input, torch.Tensor):
        param = next(model.parameters(), None)
        floating = param is not None and param.is_floating_point()
        example_input = torch.zeros(2, *example_input, device=param.device if param is not None else "cpu",
                                    dtype=param.dtype if floating else None)
    seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def hook(n: str):
        def record(mod: nn.Module, inp: tuple, out: object) -> None:
            if n not in seen:
                if not inp or not isinstance(inp[0], torch.Tensor) or not isinstance(out, torch.Tensor):
                    raise TypeError(f"slot {n!r} must take and return a single tensor")
                seen[n] = (inp[0].detach().clone(), out.detach())
        return record

    handles = [modules[n].register_forward_hook(hook(n)) for n in names]
    was_training = model.training
    model.eval()
    try:
        model(example_input)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    unused = [n for n in names if n not in seen]
    if unused:
        raise RuntimeError(f"modules {unused} were not called in the forward pass; they cannot be slots")
    return seen


def describe_slots(
    model: nn.Module,
    names: Iterable[str],
    example_input: torch.Tensor | tuple[int, ...],
    kind: str = "module",
) -> list[SlotSpec]:
    """Record the input/output shapes of the named sub-modules with one forward pass.

    ``example_input`` is a tensor (batch included) or a shape without batch.
    """
    if kind not in SLOT_KINDS:
        raise ValueError(f"slot kind must be one of {SLOT_KINDS}, got {kind!r}")
    names = list(names)
    io = capture_io(model, names, example_input)
    return [SlotSpec(n, kind, tuple(io[n][0].shape[1:]), tuple(io[n][1].shape[1:])) for n in names]


#: How a slot that loses every candidate is removed, by slot kind where the kind decides it: a built-in
#: residual branch leaves its block's shortcut; a built-in conv slot lies inside such a branch, so zeros are
#: safe. A whole-module slot ("module") is probed instead (:func:`module_removal`).
REMOVAL_BY_KIND: dict[str, str] = {"branch": "shortcut", "conv": "zero"}

#: Every removal mode: ``shortcut`` (the block keeps only its shortcut), ``zero`` (the slot outputs zeros: the
#: network's output still depends on its input), ``identity`` (the slot passes its input on) and ``refuse`` (it
#: cannot be removed: materialisation refuses).
REMOVAL_MODES = ("shortcut", "zero", "identity", "refuse")


def default_removal(kind: str) -> str:
    """The removal of a slot of ``kind`` when nothing was probed (files written before removals were probed)."""
    return REMOVAL_BY_KIND.get(kind, "zero")


def _tensors(obj: object) -> list[torch.Tensor]:
    """The tensors in a (nested) tuple / list / dict output, in order."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    items = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, list | tuple) else ()
    return [t for item in items for t in _tensors(item)]


def _probe_batch(model: nn.Module, input_shape: tuple[int, ...]) -> torch.Tensor:
    """Two different random inputs (a private generator: the global RNG is untouched), on the model's device
    and in its floating dtype."""
    param = next((p for p in model.parameters() if p.is_floating_point()), None)
    x = torch.randn(2, *input_shape, generator=torch.Generator().manual_seed(0))
    return x if param is None else x.to(param.device, param.dtype)


@torch.no_grad()
def output_depends_on_input(model: nn.Module, input_shape: tuple[int, ...], zeroed: Iterable[str] = ()) -> bool:
    """Whether ``model``'s output (eval mode) differs for two random inputs of ``input_shape`` (no batch) while
    the sub-modules named in ``zeroed`` output zeros: False means that the output has become a constant."""
    modules = dict(model.named_modules())
    handles = [modules[n].register_forward_hook(lambda m, i, out: torch.zeros_like(out)) for n in zeroed]
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        outs = _tensors(model(_probe_batch(model, input_shape)))
    finally:
        for m, training in modes.items():
            m.training = training
        for h in handles:
            h.remove()
    return any(not torch.equal(t[0], t[1]) for t in outs if t.dim() > 0 and t.shape[0] == 2)


def module_removal(model: nn.Module, spec: SlotSpec, input_shape: tuple[int, ...]) -> str:
    """How whole-module slot ``spec`` of ``model`` is removed: ``zero`` where the network's output still depends
    on its input with zeros in the slot's place (a residual or parallel branch), else ``identity`` where the
    slot's input and output shapes match (a whole block), else ``refuse``."""
    if output_depends_on_input(model, input_shape, [spec.name]):
        return "zero"
    return "identity" if spec.shape_preserving else "refuse"
