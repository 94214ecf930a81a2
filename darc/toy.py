"""Toy problems with a known answer, for checking that the search does what the method claims.

:func:`toy_net` builds a small residual network whose block bodies are whole-module slots
(``blocks.<i>.body``: conv3x3-BN-ReLU-conv3x3-BN). Each body can be made

* ``"half"``: it uses only half of its inner channels, so ``narrow(ratio=0.5)``, seeded from the
  largest-norm channels, is an **exact** cheaper copy: the search should *replace* it;
* ``"zero"``: its output is zero, so it contributes nothing: the search should *drop* it;
* ``"full"``: it uses all of its inner channels with spread-out weights, so no cheaper candidate imitates
  it, and its output is large: the search should *keep* the original.

:func:`toy_search` fits the gated network to the base network's outputs (squared error, stem and head
frozen) with the library's own search pieces: :func:`darc.search.gate_for_search` settings, the search
optimiser groups, the proximal gate step, the warm-up and the one-candidate option of a
:class:`darc.search.SearchConfig`. One "epoch" is ``steps_per_epoch`` steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from darc.compressor import Compressor
from darc.costs import CostContext, architecture_cost, assign_costs
from darc.gates import gate_model, gated_slots
from darc.search import SearchConfig, search_optimizer

BODY_KINDS = ("half", "zero", "full")


class ToyBlock(nn.Module):
    """``relu(x + body(x))`` with a whole-module slot ``body``."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


class ToyNet(nn.Module):
    """stem -> residual blocks -> the flattened feature map (the regression target keeps every position and
    channel, so a candidate must reproduce its slot's function, not only a pooled summary of it)."""

    def __init__(self, width: int, blocks: int, in_chans: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_chans, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.blocks = nn.Sequential(*[ToyBlock(width) for _ in range(blocks)])
        self.head = nn.Flatten()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


@torch.no_grad()
def _shape_body(body: nn.Sequential, kind: str, gen: torch.Generator) -> None:
    conv1, bn1, _, conv2, bn2 = body
    width = conv1.out_channels
    for bn in (bn1, bn2):
        bn.weight.fill_(1.0)
        bn.bias.zero_()
    conv1.weight.copy_(torch.randn(conv1.weight.shape, generator=gen) * (2.0 / (9 * width)) ** 0.5)
    conv2.weight.copy_(torch.randn(conv2.weight.shape, generator=gen) * (2.0 / (9 * width)) ** 0.5)
    if kind == "half":  # the second half of the inner channels is unused: exactly zero in and out
        conv1.weight[width // 2:] = 0.0
        conv2.weight[:, width // 2:] = 0.0
        bn2.weight.fill_(1.5)
    elif kind == "zero":
        bn2.weight.zero_()
    elif kind == "full":
        bn2.weight.fill_(3.0)
    else:
        raise ValueError(f"body kind must be one of {BODY_KINDS}, got {kind!r}")


def toy_inputs(n: int = 512, size: int = 16, seed: int = 1) -> torch.Tensor:
    """``n`` Gaussian images of 3 x ``size`` x ``size``."""
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def toy_net(kinds: Sequence[str], width: int = 32, seed: int = 0) -> ToyNet:
    """A :class:`ToyNet` whose block ``i`` has a body of kind ``kinds[i]`` (see the module docstring), its
    BN statistics set to the population statistics of :func:`toy_inputs`; returned in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = ToyNet(width, len(kinds))
    for block, kind in zip(net.blocks, kinds):
        _shape_body(block.body, kind, gen)
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the passes below
    with torch.no_grad():
        net.train()
        for batch in toy_inputs().split(128):
            net(batch)
    for bn in bns:
        bn.momentum = 0.1
    return net.eval()


TOY_SLOTS = "blocks.*.body"
#: The toy's candidates: the original, two narrower copies, a depthwise-separable body.
TOY_CANDIDATES: tuple[Any, ...] = ("original", {"alternative": "narrow", "ratio": 0.5},
                                   {"alternative": "narrow", "ratio": 0.25}, "dwsep")


def toy_search(
    base: nn.Module, cfg: SearchConfig, *, inputs: torch.Tensor | None = None, steps_per_epoch: int = 100,
    batch_size: int = 64, candidates: Sequence[Any] = TOY_CANDIDATES, seed: int = 0,
    start_gates: dict[str, Sequence[float]] | None = None,
) -> dict[str, Any]:
    """Search ``base``'s body slots at ``cfg.lam`` on the toy regression; return what happened.

    The target is the base network's output in eval mode (BN statistics of the inputs' population); stem
    and head are frozen (and kept in eval mode). ``cfg.train`` supplies lr, momentum, weight decay and the
    epoch count, ``cfg.weights`` whether the weights learn beside the gates; costs are parameter bytes.
    ``start_gates`` (slot -> one gate per candidate, e.g. another lambda's ``search_gates``) replaces the gates'
    initial values: a warm start. Returns the per-slot ``kept`` labels, ``decisions`` counts,
    ``rel_mse`` (the gated network's squared error over the variance of the target, in eval mode after the
    search and ``cfg.handoff``), ``rel_mse_drop_all`` (the same with every body dropped), the parameter
    reduction of the materialised network, the normalised architecture cost and ``search_gates``, every
    gate at the end of the search (before the one-candidate rule and the handoff).
    """
    x = toy_inputs() if inputs is None else inputs
    base = base.eval()
    with torch.no_grad():
        targets = base(x)
    calib = x[: max(cfg.calibration_samples, 1)]
    torch.manual_seed(seed)
    gated = gate_model(base, TOY_SLOTS, list(candidates), calibration=calib, original_gate=cfg.original_gate,
                       alternative_gate=cfg.alternative_gate, gate_init=cfg.gate_init,
                       original_share=cfg.original_share, distill_steps=cfg.distill_steps,
                       distill_lr=cfg.distill_lr, example_input=tuple(x.shape[1:]))
    assign_costs(gated, base, "params", CostContext(tuple(x.shape[1:])))
    if start_gates is not None:
        with torch.no_grad():
            for name, slot in gated_slots(gated).items():
                slot.gate.copy_(torch.as_tensor(list(start_gates[name]), dtype=slot.gate.dtype))
    for name, p in gated.named_parameters():
        if name.startswith(("stem.", "head.")):
            p.requires_grad_(False)
    compressor = Compressor.from_gated(gated, lam=cfg.lam, calibration=calib, weights=cfg.weights,
                                       handoff=cfg.handoff, single_candidate=cfg.single_candidate,
                                       nonnegative=cfg.nonnegative, cost_model="params")
    optimizer = search_optimizer(gated, cfg)
    gen = torch.Generator().manual_seed(seed)
    for epochs, step_hook in [(cfg.warmup_epochs, None), (cfg.train.epochs, compressor.step)]:
        for _ in range(epochs * steps_per_epoch):
            idx = torch.randint(0, len(x), (batch_size,), generator=gen)
            gated.train()
            gated.stem.eval()
            optimizer.zero_grad(set_to_none=True)
            loss = (gated(x[idx]) - targets[idx]).pow(2).mean()
            if not loss.requires_grad:  # every gate zero with frozen weights: nothing left to learn
                continue
            loss.backward()
            optimizer.step()
            if step_hook is not None:
                step_hook(optimizer)
    if compressor.steps == 0:  # every step skipped: the gates are where the search left them all the same
        compressor.mark_searched(1)
    search_gates = {n: s.gate.detach().tolist() for n, s in gated_slots(gated).items()}
    result = compressor.compress()
    with torch.no_grad():
        var = targets.var().item()
        rel_mse = (gated(x) - targets).pow(2).mean().item() / var
        rel_drop = (_drop_all(base)(x) - targets).pow(2).mean().item() / var
    plain, kept = result.model, result.report["kept"]
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    return {
        "kept": kept, "decisions": result.report["decisions"], "rel_mse": rel_mse, "rel_mse_drop_all": rel_drop,
        "param_reduction": count(base) / count(plain), "arch_cost": architecture_cost(gated),
        "gates": {n: dict(zip(s.labels, s.gate.tolist())) for n, s in gated_slots(gated).items()},
        "distill_error": {n: dict(zip(s.labels, s.distill_error)) for n, s in gated_slots(gated).items()},
        "search_gates": search_gates, "config": replace(cfg).to_dict(),
    }


def _drop_all(base: nn.Module) -> nn.Module:
    import copy

    net = copy.deepcopy(base)
    for block in net.blocks:
        with torch.no_grad():
            block.body[-1].weight.zero_()
            block.body[-1].bias.zero_()
    return net
