"""Cheaper alternatives for a slot, in a registry.

An alternative is registered with :func:`register_alternative` as a class with

* ``applicable(spec, original) -> str | None``: ``None`` if it can replace this slot, else the
  reason it cannot (used to skip it quietly in default candidate lists, or to refuse it loudly when
  the user asked for it on that slot);
* ``build(spec, original, init, **config) -> nn.Module``: a module with the slot's input and output
  shapes. ``original`` is the slot's original module, used for structure and, when ``init`` is true,
  for initialisation (``init=False`` is used when rebuilding from an architecture file, where the
  weights come from a state dict). ``calibration`` (a batch of the slot's real inputs) may be passed
  with ``init=True``;
* optionally ``options``: the names of the config keys ``build`` accepts. Without it they are read from
  ``build``'s signature (its keyword parameters; any key where it takes ``**config`` and names none).
  A config key that is not an option is refused (:func:`check_options`), so a typo is not silently ignored.

Users add their own the same way; see docs/extending.md.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import nn

from darc.blocks import has_block_adapter
from darc.registry import Registry
from darc.slots import SlotSpec


class Alternative(Protocol):
    def applicable(self, spec: SlotSpec, original: nn.Module) -> str | None: ...

    def build(self, spec: SlotSpec, original: nn.Module, init: bool, **config: Any) -> nn.Module: ...


ALTERNATIVES: Registry[Alternative] = Registry("alternative")


def register_alternative(name: str) -> Callable[[type], type]:
    """Class decorator registering an alternative (an instance is stored) under ``name``."""

    def deco(cls: type) -> type:
        ALTERNATIVES.register(name)(lambda: cls())
        return cls

    return deco


def get_alternative(name: str) -> Alternative:
    """The registered alternative called ``name``."""
    return ALTERNATIVES.create(name)


def list_alternatives() -> list[str]:
    return ALTERNATIVES.list()


#: ``build`` parameters that are not config options: the slot, the original, ``init``, and the calibration
#: batch :func:`darc.gates.gate_model` passes itself.
_NOT_OPTIONS = frozenset({"self", "spec", "original", "init", "calibration"})


def alternative_options(alt: Alternative) -> frozenset[str] | None:
    """The config keys ``alt`` accepts (its ``options``, else its ``build``'s keyword parameters), or None where
    its ``build`` takes any keyword (``**config``) and names no option."""
    declared = getattr(alt, "options", None)
    if declared is not None:
        return frozenset(declared)
    params = inspect.signature(alt.build).parameters.values()
    named = frozenset(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)) - _NOT_OPTIONS
    takes_any = any(p.kind == p.VAR_KEYWORD for p in params)
    return None if takes_any and not named else named


def check_options(name: str, config: dict[str, Any]) -> None:
    """Refuse config keys that alternative ``name`` does not know (a typo would silently use a default)."""
    known = alternative_options(get_alternative(name))
    unknown = sorted(set(config) - known) if known is not None else []
    if unknown:
        listed = ", ".join(sorted(known)) if known else "none"
        raise ValueError(f"alternative {name!r} has no option {', '.join(map(repr, unknown))} "
                         f"(its options: {listed}); fix the spelling")


_ELEMENTWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.SiLU, nn.GELU, nn.Dropout, nn.Identity, nn.Hardswish)

#: Parameter-free layers that work on any channel count, by class path (not imported): timm's stochastic depth
#: and DropBlock (identities in eval mode), which narrow keeps as they are.
_CHANNEL_AGNOSTIC = frozenset({"timm.layers.drop.DropPath", "timm.layers.drop.DropBlock2d"})


def _plain_sequential(module: nn.Module) -> bool:
    """An ``nn.Sequential`` (or a subclass such as torchvision's ``Conv2dNormActivation``) that runs its children
    in order: its ``forward`` is Sequential's own."""
    return isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward


def _layer_chain(module: nn.Module, prefix: str = "") -> list[nn.Module] | str:
    """The flat layer list of a Sequential made of Conv2d, BatchNorm2d and element-wise layers (nested plain
    Sequentials flattened), else the reason it is not one."""
    if not _plain_sequential(module):
        hint = ("; gate its residual branch instead (slots='branch', or darc.blocks.expose_branches)"
                if not prefix and has_block_adapter(module) else "")
        return f"{prefix or 'the slot'} is a {type(module).__name__}, not an nn.Sequential{hint}"
    flat: list[nn.Module] = []
    for name, child in module._modules.items():  # not named_children(): a layer used twice counts twice
        where = f"{prefix}.{name}" if prefix else name
        kind = type(child)
        if _plain_sequential(child):
            sub = _layer_chain(child, where)
            if isinstance(sub, str):
                return sub
            flat.extend(sub)
        elif (kind is nn.Conv2d or kind is nn.BatchNorm2d or isinstance(child, _ELEMENTWISE)
              or f"{kind.__module__}.{kind.__qualname__}" in _CHANNEL_AGNOSTIC):
            flat.append(child)
        elif isinstance(child, nn.Conv2d | nn.BatchNorm2d):
            base = "Conv2d" if isinstance(child, nn.Conv2d) else "BatchNorm2d"
            return (f"layer {where!r} is a {kind.__name__}, a {base} subclass that narrow would rebuild as a plain "
                    f"{base} (losing what it adds, e.g. the activation of timm's BatchNormAct2d)")
        else:
            return f"layer {where!r} is a {kind.__name__}, which narrow cannot cut channels through"
    return flat


def _layers(module: nn.Module) -> list[nn.Module] | None:
    """The flat layer list of a Sequential made of convs, BNs and element-wise ops, else ``None``."""
    chain = _layer_chain(module)
    return None if isinstance(chain, str) else chain


def _depthwise(conv: nn.Conv2d) -> bool:
    """One filter per channel: ``groups == in_channels == out_channels``."""
    return conv.groups > 1 and conv.groups == conv.in_channels == conv.out_channels


def _sliced_depthwise(layer: nn.Conv2d, keep: torch.Tensor, init: bool) -> nn.Conv2d:
    """Depthwise ``layer`` restricted to the channels ``keep``."""
    w = layer.weight.detach()
    conv = nn.Conv2d(len(keep), len(keep), layer.kernel_size, layer.stride, layer.padding, layer.dilation,
                     groups=len(keep), bias=layer.bias is not None, padding_mode=layer.padding_mode,
                     device=w.device, dtype=w.dtype)
    if init:
        with torch.no_grad():
            conv.weight.copy_(w[keep])
            if layer.bias is not None:
                conv.bias.copy_(layer.bias.detach()[keep])
    return conv


@register_alternative("original")
class Original:
    """The slot's own module, unchanged."""

    options = ()

    def applicable(self, spec: SlotSpec, original: nn.Module) -> str | None:
        return None

    def build(self, spec: SlotSpec, original: nn.Module, init: bool, **config: Any) -> nn.Module:
        return original if init else copy.deepcopy(original)


@register_alternative("identity")
class IdentityAlternative:
    """Skip the slot (output = input): only where input and output shapes match. No weights."""

    options = ()

    def applicable(self, spec: SlotSpec, original: nn.Module) -> str | None:
        if spec.kind == "branch":
            return "a residual branch is dropped by zeroing its gates, not replaced by identity"
        if not spec.shape_preserving:
            return f"input shape {spec.in_shape} differs from output shape {spec.out_shape}"
        return None

    def build(self, spec: SlotSpec, original: nn.Module, init: bool, **config: Any) -> nn.Module:
        return nn.Identity()


@register_alternative("narrow")
class Narrow:
    """The original with every inner width scaled by ``ratio`` (1/2, 1/4, ...).

    Works on Sequentials of Conv2d / BatchNorm2d / element-wise layers (nested Sequentials such as torchvision's
    ``Conv2dNormActivation`` are flattened) with at least two ungrouped convs: the output channels of every
    ungrouped conv but the last are cut to ``ceil(ratio * width)``, keeping the channels whose filters have the
    largest l2 norm (the following BNs, depthwise convs and conv are sliced to match). A depthwise conv
    (``groups == in_channels == out_channels``) keeps the channels its input kept; the last conv must be ungrouped.
    Subclasses of Conv2d / BatchNorm2d (timm's ``BatchNormAct2d``) and other layers (squeeze-excitation,
    anti-aliasing pools) are refused: a plain rebuild would silently change them.
    """

    options = ("ratio",)

    def applicable(self, spec: SlotSpec, original: nn.Module) -> str | None:
        layers = _layer_chain(original)
        if isinstance(layers, str):
            return f"narrow needs an nn.Sequential of Conv2d/BatchNorm2d/element-wise layers ({layers})"
        convs = [m for m in layers if isinstance(m, nn.Conv2d)]
        grouped = next((c for c in convs if c.groups != 1 and not _depthwise(c)), None)
        if grouped is not None:
            return f"narrow supports only ungrouped and depthwise convs, not {grouped} (groups={grouped.groups})"
        dense = [c for c in convs if not _depthwise(c)]
        if len(dense) < 2:
            return "narrow needs at least two non-depthwise convs (an inner width to cut)"
        if _depthwise(convs[-1]):
            return "narrow needs a non-depthwise last conv (it restores the slot's output width)"
        return None

    def build(self, spec: SlotSpec, original: nn.Module, init: bool, ratio: float = 0.5, **config: Any) -> nn.Module:
        reason = self.applicable(spec, original)
        if reason:
            raise ValueError(f"narrow cannot replace slot {spec.name!r}: {reason}")
        layers = [copy.deepcopy(m) for m in _layers(original)]  # type: ignore[union-attr]
        conv_idx = [i for i, m in enumerate(layers) if isinstance(m, nn.Conv2d)]
        keep: torch.Tensor | None = None  # channels kept at the current point of the chain
        out: list[nn.Module] = []
        for i, layer in enumerate(layers):
            if isinstance(layer, nn.Conv2d) and _depthwise(layer):  # follows the kept channels, chooses none
                out.append(layer if keep is None else _sliced_depthwise(layer, keep, init))
            elif isinstance(layer, nn.Conv2d):
                last = i == conv_idx[-1]
                w = layer.weight.detach()
                if keep is not None:
                    w = w[:, keep]
                if last:
                    new_keep = None
                    out_ch = layer.out_channels
                else:
                    out_ch = max(1, math.ceil(ratio * layer.out_channels))
                    norms = w.flatten(1).norm(dim=1)
                    new_keep = torch.sort(torch.topk(norms, out_ch).indices).values
                conv = nn.Conv2d(
                    w.shape[1], out_ch, layer.kernel_size, layer.stride, layer.padding,
                    layer.dilation, bias=layer.bias is not None, padding_mode=layer.padding_mode,
                    device=w.device, dtype=w.dtype,
                )
                if init:
                    with torch.no_grad():
                        conv.weight.copy_(w if new_keep is None else w[new_keep])
                        if layer.bias is not None:
                            b = layer.bias.detach()
                            conv.bias.copy_(b if new_keep is None else b[new_keep])
                keep = new_keep
                out.append(conv)
            elif isinstance(layer, nn.BatchNorm2d) and keep is not None:
                like = layer.weight if layer.weight is not None else layer.running_mean
                where = {} if like is None else {"device": like.device, "dtype": like.dtype}
                bn = nn.BatchNorm2d(len(keep), layer.eps, layer.momentum, layer.affine, layer.track_running_stats,
                                    **where)
                if init:
                    with torch.no_grad():
                        for name in ("weight", "bias", "running_mean", "running_var"):
                            src = getattr(layer, name)
                            if src is not None:
                                getattr(bn, name).copy_(src.detach()[keep])
                out.append(bn)
            else:
                out.append(layer)
        return nn.Sequential(*out)


@register_alternative("dwsep")
class DepthwiseSeparable:
    """Depthwise kxk conv (with the slot's stride) - BN - ReLU - pointwise 1x1 conv - BN.

    Built with fresh weights; :func:`darc.gates.gate_model` prepares it, like every alternative, by
    block-wise distillation (:func:`distill`) on the slot's real inputs. ``distill_steps`` > 0 here
    distils it once more at build time (kept for configs that relied on it).
    """

    options = ("kernel_size", "distill_steps", "distill_lr")

    def applicable(self, spec: SlotSpec, original: nn.Module) -> str | None:
        if len(spec.in_shape) != 3 or len(spec.out_shape) != 3:
            return "dwsep needs image-shaped (C, H, W) input and output"
        if math.ceil(spec.in_shape[1] / spec.stride) != spec.out_shape[1]:
            return f"spatial sizes {spec.in_shape[1:]} -> {spec.out_shape[1:]} are not a plain stride"
        return None

    def build(
        self, spec: SlotSpec, original: nn.Module, init: bool, kernel_size: int = 3,
        distill_steps: int = 0, distill_lr: float = 3e-2, calibration: torch.Tensor | None = None,
        **config: Any,
    ) -> nn.Module:
        reason = self.applicable(spec, original)
        if reason:
            raise ValueError(f"dwsep cannot replace slot {spec.name!r}: {reason}")
        cin, cout = spec.in_channels, spec.out_channels
        module = nn.Sequential(
            nn.Conv2d(cin, cin, kernel_size, spec.stride, kernel_size // 2, groups=cin, bias=False),
            nn.BatchNorm2d(cin),
            nn.ReLU(inplace=True),
            nn.Conv2d(cin, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
        param = next(original.parameters(), None)
        if param is not None:
            module.to(param.device, param.dtype if param.is_floating_point() else None)
        if init and distill_steps > 0:
            distill(module, original, spec, calibration, distill_steps, distill_lr)
        return module


def distill(
    student: nn.Module, teacher: nn.Module, spec: SlotSpec, inputs: torch.Tensor | None,
    steps: int, lr: float,
) -> float:
    """Block-wise distillation: train ``student`` to mimic ``teacher`` on ``inputs`` (the slot's real
    inputs; Gaussian noise when None); returns the relative error ``||student(x) - teacher(x)|| /
    ||teacher(x)||`` of the state it keeps.

    Both run in training mode, as in the search that follows (BN normalises by batch statistics); the
    teacher is a copy, so the network's own BN statistics are untouched. ``steps`` full-batch Adam steps
    on the normalised squared error; the best state seen is kept, the initial one included (a candidate
    that already equals the slot, such as a narrow copy of a branch using half its channels, stays exact).
    """
    param = next(student.parameters())
    if inputs is None:
        gen = torch.Generator().manual_seed(0)
        inputs = torch.randn(32, *spec.in_shape, generator=gen)
    inputs = inputs.detach().to(param.device, param.dtype)
    with torch.no_grad():
        target = copy.deepcopy(teacher).train()(inputs)
    scale = target.pow(2).mean().clamp_min(1e-12)
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    student.train()
    best_loss, best_state = math.inf, None
    for step in range(steps + 1):
        opt.zero_grad(set_to_none=True)
        loss = (student(inputs) - target).pow(2).mean() / scale
        if loss.item() < best_loss:
            best_loss, best_state = loss.item(), copy.deepcopy(student.state_dict())
        if step == steps:
            break
        loss.backward()
        opt.step()
    if best_state is not None:
        student.load_state_dict(best_state)
    return math.sqrt(best_loss) if math.isfinite(best_loss) else math.inf
