"""The training recipe as one dataclass (:class:`TrainConfig`), readable from a config mapping."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from darc.train.distill import Distill


@dataclass
class TrainConfig:
    """Everything that defines a training run (model and data aside).

    ``batch_size`` is per process (torchvision's convention: under DDP the global batch is
    ``batch_size * world_size``); ``lr`` is used as given. ``milestones`` and ``warmup_epochs`` are in
    epochs; the schedule is applied per iteration. ``amp`` (autocast to ``amp_dtype``) and
    ``channels_last`` act on any device; on CPU, bfloat16 pays only where the CPU has AVX512-BF16 or AMX
    (:func:`darc.train.trainer.cpu_amp_is_native`; elsewhere a warning says so).
    ``checkpoint_every_steps`` adds mid-epoch checkpoints; ``max_steps_per_epoch`` caps an epoch
    (smoke runs). ``distill`` (``{alpha, temperature}``, :class:`darc.train.distill.Distill`) mixes logit
    distillation from a teacher given to :func:`darc.train.fit` into the loss; ``rewind_base`` is what
    schedule ``rewind`` replays (the base's recipe and steps per epoch, filled in by
    :func:`darc.recipe.post_base_recipe`, not written by hand).
    """

    epochs: int = 1
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    no_wd_on_bn_bias: bool = False
    optimizer: str = "sgd"
    schedule: str = "step"
    milestones: tuple[int, ...] = field(default_factory=tuple)
    gamma: float = 0.1
    warmup_epochs: float = 0.0
    mixup_alpha: float = 0.0
    label_smoothing: float = 0.0
    amp: bool = False
    amp_dtype: str = "bfloat16"
    channels_last: bool = False
    seed: int = 0
    deterministic: bool = False
    workers: int = 0
    test_batch_size: int | None = None
    checkpoint_every_steps: int | None = None
    max_steps_per_epoch: int | None = None
    eval_every: int = 1
    evaluate: bool = True  # False: no validation / test evaluation at all (a stage whose network is not measured)
    log_every: int = 50
    ddp_find_unused_parameters: bool = False
    distill: Distill = field(default_factory=Distill)
    rewind_base: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.milestones = tuple(int(m) for m in self.milestones)
        self.distill = Distill.from_value(self.distill)
        if self.epochs < 0 or self.batch_size < 1:
            raise ValueError(f"epochs must be >= 0 and batch_size >= 1, got {self.epochs}, {self.batch_size}")
        if self.amp_dtype not in ("bfloat16", "float16"):
            raise ValueError(f"amp_dtype must be 'bfloat16' or 'float16', got {self.amp_dtype!r}")
        if self.checkpoint_every_steps is not None and self.checkpoint_every_steps < 1:
            raise ValueError("checkpoint_every_steps must be >= 1 (or None for epoch ends only)")
        if self.eval_every < 1:
            raise ValueError("eval_every must be >= 1")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Build from a mapping (e.g. a YAML ``train:`` section); unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown TrainConfig keys {unknown}; known: {sorted(names)}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (lists, not tuples): JSON- and ``weights_only``-safe."""
        d = dataclasses.asdict(self)
        d["milestones"] = list(self.milestones)
        return d
