"""The Torch-Pruning peer: structured channel pruning of a trained base network to a measured cost.

Method (Torch-Pruning 1.6, ``import torch_pruning as tp``):

- a deep copy of the base network is pruned with :class:`tp.pruner.BasePruner` and
  :class:`tp.importance.GroupMagnitudeImportance` with ``p=1``: every dependency group (the channels
  that must go together, e.g. all layers feeding one residual addition) is scored by the mean L1 norm
  of its coupled weights, and the weakest channels of each group (local pruning, the default) or of
  the whole network (``global_pruning=True``) are removed;
- or, for network slimming (``pruner="bn_scale"``), with :class:`tp.pruner.BNScalePruner` and
  :class:`tp.importance.BNScaleImportance`: channels ranked by their BatchNorm scale |gamma|, after a
  training phase with the L1 sparsity term on those scales (:func:`bn_sparsity_penalty`);
- the final classifier (the last ``nn.Linear``) keeps its outputs; its inputs shrink with the last
  feature group;
- pruning is iterative: ``steps`` equal steps of channel ratio ``max_ratio / steps`` each; after every
  step the caller's ``measure`` is evaluated on the pruned copy in eval mode, and pruning stops at the
  first step whose measured value is ``<= target``. If no step reaches the target, the most pruned
  model is returned with ``reached=False``.

``measure`` can be any function of the model; :func:`param_bytes_measure`, :func:`macs_measure` and
:func:`latency_measure` give the three costs DARC's bench reports, computed with the bench's own code.

A pruned network is saved as a plain state dict plus a JSON "shape record" (the channel counts of every
Conv / BatchNorm / Linear layer), so it can be reloaded with ``torch.load(..., weights_only=True)``:
:func:`load_pruned` rebuilds the base architecture, re-creates the layers at the recorded widths and
loads the weights strictly.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch_pruning as tp
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd

from darc.bench.latency import measure_latency
from darc.bench.macs import count_macs
from darc.bench.memory import param_bytes
from darc.io import atomic_torch_save, atomic_write_json, load_weights, safe_torch_load
from darc.registry import Registry

Measure = Callable[[nn.Module], float]

RECORD_FORMAT = "darc-tp-pruned-v1"
RECORD_NAME = "pruned_record.json"
WEIGHTS_NAME = "pruned_weights.pt"


@dataclass
class PruneResult:
    """The outcome of :func:`prune_to_target`.

    ``model`` is the pruned copy (eval mode), ``measured`` the measure of ``model``, ``steps_taken`` the
    number of pruning steps applied (0 if the unpruned copy already met the target), ``ratio`` the
    channel ratio scheduled at that step, and ``trace`` one ``{"step", "ratio", "measured"}`` per
    evaluated step, step 0 (the unpruned copy) first. ``sub_steps``: where the refinement found the target
    inside the crossing step, how many of its sub-steps ``model`` took (then ``steps_taken - 1`` whole
    steps plus these; the trace's sub-steps have fractional ``step``), else 0.
    """

    model: nn.Module
    measured: float
    target: float
    reached: bool
    steps_taken: int
    ratio: float
    trace: list[dict[str, float]] = field(default_factory=list)
    sub_steps: int = 0

    def summary(self) -> dict[str, Any]:
        """The JSON-able fields (everything but the model)."""
        return {
            "measured": self.measured,
            "target": self.target,
            "reached": self.reached,
            "steps_taken": self.steps_taken,
            "sub_steps": self.sub_steps,
            "ratio": self.ratio,
            "trace": [dict(t) for t in self.trace],
        }


# ---------------------------------------------------------------------------------------------------
# pruning


def _classifier(model: nn.Module) -> nn.Linear | None:
    """The output layer: the last ``nn.Linear`` in module order (None if the model has none)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return linears[-1] if linears else None


def _output_shape(model: nn.Module, example_input: torch.Tensor) -> torch.Size:
    with torch.no_grad():
        return model(example_input).shape


#: Torch-Pruning pruners by name: ``fn(model, example_input, **kwargs) -> pruner``, the kwargs being
#: BasePruner's (``global_pruning``, ``pruning_ratio``, ``max_pruning_ratio``, ``iterative_steps``,
#: ``ignored_layers``). ``group_l1``: group L1 magnitude; ``bn_scale``: network slimming's BN-scale ranking.
PRUNERS: Registry[Any] = Registry("pruner")


@PRUNERS.register("group_l1")
def _group_l1(model: nn.Module, example_input: torch.Tensor, **kwargs: Any) -> Any:
    return tp.pruner.BasePruner(model, example_input, importance=tp.importance.GroupMagnitudeImportance(p=1),
                                **kwargs)


@PRUNERS.register("bn_scale")
def _bn_scale(model: nn.Module, example_input: torch.Tensor, **kwargs: Any) -> Any:
    return tp.pruner.BNScalePruner(model, example_input, importance=tp.importance.BNScaleImportance(), **kwargs)


#: What each pruner records as its method.
PRUNER_NAMES = {"group_l1": ("torch_pruning.pruner.BasePruner", "GroupMagnitudeImportance(p=1)"),
                "bn_scale": ("torch_pruning.pruner.BNScalePruner", "BNScaleImportance()")}


def bn_sparsity_penalty(model: nn.Module, reg: float) -> Callable[[nn.Module], torch.Tensor]:
    """Network slimming's sparsity term, ``reg * sum |gamma|`` over the affine BatchNorm scales of ``model``
    outside its classifier, as an ``extra_loss`` for :func:`darc.train.fit`. Its gradient,
    ``reg * sign(gamma)``, is what ``BNScalePruner.regularize`` adds (``group_lasso=False``)."""
    scales = [m.weight for m in model.modules() if isinstance(m, _BatchNorm) and m.affine]
    if not scales:
        raise ValueError("BN-scale pruning needs BatchNorm layers with affine scales; the model has none")

    def penalty(_: nn.Module) -> torch.Tensor:
        return reg * sum(w.abs().sum() for w in scales)

    return penalty


def prune_to_target(
    model: nn.Module,
    example_input: torch.Tensor,
    measure: Measure,
    target: float,
    *,
    max_ratio: float = 0.9,
    steps: int = 40,
    ignored: Callable[[str, nn.Module], bool] | None = None,
    global_pruning: bool = False,
    pruner: str = "group_l1",
    refine_steps: int = 0,
) -> PruneResult:
    """Prune a deep copy of ``model`` step by step until ``measure(copy) <= target``.

    ``example_input`` (batch included) is used to trace the dependency graph. The schedule is
    ``steps`` equal steps up to channel ratio ``max_ratio``; ``measure`` is called on the unpruned copy
    and after every step, always in eval mode, and pruning stops at the first value ``<= target``.
    With ``refine_steps`` > 0 the step that crossed the target is redone in that many equal sub-steps (the
    same pruner on a ``steps * refine_steps`` schedule from the unpruned network, so each layer's width at a
    sub-step lies between its widths before and after the whole step), and the first sub-step at or below
    the target is kept; where none is, the whole step's network is. One of 40 steps moved
    latency by 10-25 % in the default run, more than the 5 % a latency match allows.
    ``ignored(name, module)`` marks further layers whose output channels must be kept (their whole
    dependency group is then left alone); the last ``nn.Linear`` is always kept. ``pruner``: a name in
    :data:`PRUNERS`. Never raises for an
    unreachable target: the result then has ``reached=False`` and the most pruned model.
    """
    if not 0.0 < max_ratio < 1.0:
        raise ValueError(f"max_ratio must be in (0, 1), got {max_ratio}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if refine_steps < 0:
        raise ValueError(f"refine_steps must be >= 0, got {refine_steps}")

    pruned = copy.deepcopy(model)
    pruned.eval()
    out_shape = _output_shape(pruned, example_input)

    def ignored_layers(net: nn.Module) -> list[nn.Module]:
        layers: list[nn.Module] = []
        head = _classifier(net)
        if head is not None:
            layers.append(head)
        if ignored is not None:
            layers += [m for name, m in net.named_modules() if name and ignored(name, m)]
        return layers

    def evaluate(net: nn.Module, step: float, ratio: float) -> float:
        net.eval()
        value = float(measure(net))
        trace.append({"step": step, "ratio": ratio, "measured": value})
        return value

    def create(net: nn.Module, share: float, n: int) -> Any:
        return PRUNERS.create(pruner, net, example_input, global_pruning=global_pruning, pruning_ratio=share,
                              max_pruning_ratio=share, iterative_steps=n, ignored_layers=ignored_layers(net))

    trace: list[dict[str, float]] = []
    value = evaluate(pruned, 0, 0.0)
    step, ratio, sub_steps = 0, 0.0, 0
    if value > target:
        # Tracing needs autograd (tp follows grad_fn); record the flags to give them back afterwards.
        grad_flags = {name: p.requires_grad for name, p in pruned.named_parameters()}
        for p in pruned.parameters():
            p.requires_grad_(True)
        with torch.enable_grad():
            start = copy.deepcopy(pruned) if refine_steps else None
            tp_pruner = create(pruned, max_ratio, steps)
            for step in range(1, steps + 1):
                tp_pruner.step()
                ratio = float(tp_pruner.per_step_pruning_ratio[step])
                value = evaluate(pruned, step, ratio)
                if value <= target:
                    break
            del tp_pruner
            if start is not None and value <= target and step >= 1:
                # Redo the crossing step on the same pruner's finer schedule from the unpruned network. Torch-Pruning
                # sizes every layer from its original width at each step's ratio (rounding down), so after
                # (step - 1) * refine_steps fine steps each layer has its width before the crossing step, and
                # every sub-step's widths lie between that and the whole step's. (Pruning the network before the
                # step by a small share instead rounds every layer down by a channel at its first sub-step.)
                fine = create(start, max_ratio, steps * refine_steps)
                for _ in range((step - 1) * refine_steps):
                    fine.step()
                for j in range(1, refine_steps):  # the last sub-step is the whole step, already measured
                    fine.step()
                    sub_ratio = float(fine.per_step_pruning_ratio[(step - 1) * refine_steps + j])
                    sub_value = evaluate(start, step - 1 + j / refine_steps, sub_ratio)
                    if sub_value <= target:
                        pruned, value, ratio, sub_steps = start, sub_value, sub_ratio, j
                        break
                del fine
        for name, p in pruned.named_parameters():
            p.requires_grad_(grad_flags.get(name, True))

    pruned.eval()
    new_shape = _output_shape(pruned, example_input)
    if new_shape != out_shape:
        raise RuntimeError(f"pruning changed the output shape from {tuple(out_shape)} to {tuple(new_shape)}")
    return PruneResult(
        model=pruned,
        measured=value,
        target=float(target),
        reached=value <= target,
        steps_taken=step,
        ratio=ratio,
        trace=trace,
        sub_steps=sub_steps,
    )


# ---------------------------------------------------------------------------------------------------
# measures


def param_bytes_measure() -> Measure:
    """Bytes of parameters and buffers, as :func:`darc.bench.memory.param_bytes` reports them."""

    def measure(model: nn.Module) -> float:
        return float(param_bytes(model))

    return measure


def macs_measure(input_shape: Sequence[int]) -> Measure:
    """MACs of one forward at batch 1 on ``input_shape`` (C, H, W), as :func:`darc.bench.macs.count_macs`."""
    shape = tuple(int(s) for s in input_shape)

    def measure(model: nn.Module) -> float:
        return float(count_macs(model, shape, 1))

    return measure


def latency_measure(
    input_shape: Sequence[int],
    batch_size: int,
    *,
    threads: int | None,
    device: str | torch.device = "cpu",
    min_run_time: float = 0.2,
    warmup: int = 3,
) -> Measure:
    """Median seconds of a forward pass with the bench's timing protocol
    (:func:`darc.bench.latency.measure_latency`, ``blocked_autorange``)."""
    shape = tuple(int(s) for s in input_shape)

    def measure(model: nn.Module) -> float:
        return measure_latency(
            model, shape, batch_size, device=device, threads=threads, min_run_time=min_run_time, warmup=warmup
        ).median_s

    return measure


# ---------------------------------------------------------------------------------------------------
# saving and loading


def _layer_shape(module: nn.Module) -> dict[str, Any] | None:
    """The width-defining arguments of a Conv / BatchNorm / Linear layer (None for other modules)."""
    if isinstance(module, _ConvNd):
        return {
            "type": type(module).__name__,
            "in_channels": module.in_channels,
            "out_channels": module.out_channels,
            "groups": module.groups,
        }
    if isinstance(module, _BatchNorm):
        return {"type": type(module).__name__, "num_features": module.num_features}
    if isinstance(module, nn.Linear):
        return {"type": type(module).__name__, "in_features": module.in_features, "out_features": module.out_features}
    return None


def shape_record(model: nn.Module) -> dict[str, Any]:
    """The JSON-able shape record of ``model``: the widths of every Conv / BatchNorm / Linear layer, the
    shape of every state-dict tensor, and ``model_name`` / ``model_kwargs`` where the model has them."""
    record: dict[str, Any] = {
        "format": RECORD_FORMAT,
        "layers": {name: s for name, m in model.named_modules() if (s := _layer_shape(m)) is not None},
        "tensors": {k: list(v.shape) for k, v in model.state_dict().items()},
    }
    for attr in ("model_name", "model_kwargs"):
        if hasattr(model, attr):
            record[attr] = getattr(model, attr)
    return record


def _resized(old: nn.Module, spec: dict[str, Any]) -> nn.Module:
    """A fresh copy of layer ``old`` (same class and hyper-parameters) at the widths in ``spec``."""
    if spec["type"] != type(old).__name__:
        raise ValueError(f"the record has a {spec['type']} where the base network has a {type(old).__name__}")
    ref = next(iter(old.parameters()), None)
    if ref is None:
        ref = next(iter(old.buffers()), None)
    factory = {} if ref is None else {"device": ref.device, "dtype": ref.dtype}
    if isinstance(old, _ConvNd):
        return type(old)(
            spec["in_channels"],
            spec["out_channels"],
            old.kernel_size,
            stride=old.stride,
            padding=old.padding,
            dilation=old.dilation,
            groups=spec["groups"],
            bias=old.bias is not None,
            padding_mode=old.padding_mode,
            **factory,
        )
    if isinstance(old, _BatchNorm):
        return type(old)(
            spec["num_features"],
            eps=old.eps,
            momentum=old.momentum,
            affine=old.affine,
            track_running_stats=old.track_running_stats,
            **factory,
        )
    if isinstance(old, nn.Linear):
        return type(old)(spec["in_features"], spec["out_features"], bias=old.bias is not None, **factory)
    raise ValueError(f"cannot resize a {type(old).__name__}")


def load_pruned(
    base_builder: Callable[[], nn.Module], record: dict[str, Any], state_dict: dict[str, torch.Tensor]
) -> nn.Module:
    """Rebuild a pruned network: ``base_builder()``, its Conv / BatchNorm / Linear layers re-created at
    the widths in ``record``, then ``state_dict`` loaded strictly. Returned in eval mode."""
    if record.get("format") != RECORD_FORMAT:
        raise ValueError(f"not a pruned-model record (format {record.get('format')!r}, expected {RECORD_FORMAT!r})")
    model = base_builder()
    for name, spec in record["layers"].items():
        try:
            old = model.get_submodule(name)
        except AttributeError:
            raise ValueError(f"the record names a layer {name!r} that the base network does not have") from None
        if _layer_shape(old) == spec:
            continue
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, _resized(old, spec))
    want = record.get("tensors")
    if want is not None:
        have = {k: list(v.shape) for k, v in model.state_dict().items()}
        bad = [k for k in want if have.get(k) != want[k]] + [k for k in have if k not in want]
        if bad:
            raise ValueError(
                f"{len(bad)} tensors of the rebuilt network do not match the record (e.g. {bad[0]!r}); "
                "the base builder makes another architecture, or a layer type the record cannot resize was pruned"
            )
    load_weights(model, state_dict, "the pruned state dict")
    return model.eval()


def save_pruned(result_or_model: PruneResult | nn.Module, out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """Write ``out_dir/pruned_record.json`` (shape record, plus the :class:`PruneResult` summary if one is
    given) and ``out_dir/pruned_weights.pt`` (a plain state dict), atomically. Returns both paths."""
    if isinstance(result_or_model, PruneResult):
        model, extra = result_or_model.model, {"prune": result_or_model.summary()}
    else:
        model, extra = result_or_model, {}
    out = Path(out_dir)
    record = {**shape_record(model), **extra}
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    weights_path = atomic_torch_save(state, out / WEIGHTS_NAME)
    record_path = atomic_write_json(record, out / RECORD_NAME)
    return record_path, weights_path


def load_pruned_dir(
    base_builder: Callable[[], nn.Module], out_dir: str | os.PathLike, map_location: str | torch.device = "cpu"
) -> nn.Module:
    """Load what :func:`save_pruned` wrote to ``out_dir`` (weights with ``weights_only=True``)."""
    out = Path(out_dir)
    record = json.loads((out / RECORD_NAME).read_text(encoding="utf-8"))
    state = safe_torch_load(out / WEIGHTS_NAME, map_location=map_location)
    return load_pruned(base_builder, record, state)
