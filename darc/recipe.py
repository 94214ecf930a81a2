"""The post-compression recipe: what every method that trains after the base gets, from one config section.

An experiment's ``finetune:`` section is a training recipe (:class:`darc.train.TrainConfig` keys) plus:

* ``distill: {alpha, temperature}``: logit distillation from the trained base (:mod:`darc.train.distill`);
  ``alpha`` 0 (the default) is plain cross-entropy;
* ``schedule: rewind``: learning-rate rewinding, the base's schedule replayed over the fine-tune's steps
  (:func:`darc.train.optim.rewind`); ``cosine`` with ``warmup_epochs`` and a large ``lr`` is the other
  usual choice;
* ``budget``: the images every method sees after the base, as a fraction of the base's training images
  (search and fine-tune together for DARC; null: the fine-tune's ``epochs`` / ``max_steps_per_epoch`` as
  written). DARC's fine-tune gets what its search left of it; every peer gets the same total;
* ``reference_recipes``: further recipes (each a partial ``finetune`` section merged onto this one) the
  equal-budget reference is also fine-tuned with; it reports the one with the best validation accuracy, so
  no recipe weakens the yardstick DARC is judged against.

Budgets are counted in training images, so a capped epoch (``max_steps_per_epoch``) counts for what it saw.
Every function here takes the experiment (typed, :class:`darc.spec.Experiment`, or its mapping: these
functions merge its raw training sections) and the number of training images.
"""

from __future__ import annotations

import copy
import math
from dataclasses import replace
from typing import Any

from darc.spec import ExperimentLike, as_mapping
from darc.train.config import TrainConfig
from darc.train.distill import Distill

#: Keys of the ``finetune:`` section that are not :class:`TrainConfig` fields.
RECIPE_KEYS = ("budget", "reference_recipes")


def train_section(exp: ExperimentLike, *path: str) -> TrainConfig:
    """The :class:`TrainConfig` of the experiment's section at ``path`` (e.g. ``"search", "train"``): the
    section merged onto the experiment's ``train:`` (a key it leaves out takes the base recipe's value, never a
    dataclass default), or ``train:`` itself where the section is missing; the recipe-only keys
    (:data:`RECIPE_KEYS`) left out."""
    from darc.config import deep_merge

    exp = as_mapping(exp)
    node: Any = exp
    for key in path:
        node = (node or {}).get(key, {})
    base = exp.get("train", {}) or {}
    merged = base if tuple(path) == ("train",) else deep_merge(base, node or {})
    return TrainConfig.from_dict({k: v for k, v in merged.items() if k not in RECIPE_KEYS})


def images_per_epoch(cfg: TrainConfig, n_train: int) -> int:
    """Training images one epoch of ``cfg`` sees on ``n_train`` images (its ``max_steps_per_epoch`` cap)."""
    steps = max(1, n_train // cfg.batch_size)
    return min(steps, cfg.max_steps_per_epoch or steps) * cfg.batch_size


def base_images(exp: ExperimentLike, n_train: int) -> int:
    """Training images the base saw (its ``train:`` recipe)."""
    cfg = train_section(exp, "train")
    return cfg.epochs * images_per_epoch(cfg, n_train)


def darc_search_images(exp: ExperimentLike, n_train: int) -> int:
    """Training images DARC's search sees (its warm-up included)."""
    search = train_section(exp, "search", "train")
    epochs = int(as_mapping(exp).get("search", {}).get("warmup_epochs", 0)) + search.epochs
    return epochs * images_per_epoch(search, n_train)


def budget_fraction(exp: ExperimentLike) -> float | None:
    """The ``finetune.budget`` key: images after the base as a fraction of the base's (None: not set)."""
    value = (as_mapping(exp).get("finetune") or {}).get("budget")
    return None if value is None else float(value)


def steps_for_images(cfg: TrainConfig, images: int, n_train: int) -> TrainConfig:
    """``cfg`` with ``epochs`` and ``max_steps_per_epoch`` set so that it takes ``ceil(images / batch_size)``
    steps in all (at least one), spread over as few epochs as hold them (each epoch's steps rounded up, so
    the total may exceed it by less than one step per epoch)."""
    want = max(1, math.ceil(images / cfg.batch_size))
    full = max(1, n_train // cfg.batch_size)
    epochs = math.ceil(want / full)
    per_epoch = math.ceil(want / epochs)
    return replace(cfg, epochs=epochs, max_steps_per_epoch=None if per_epoch >= full else per_epoch)


def _with_rewind(cfg: TrainConfig, exp: ExperimentLike, n_train: int) -> TrainConfig:
    """Where ``cfg`` rewinds, the base's recipe and steps per epoch it replays; the learning rate is the base's."""
    if cfg.schedule != "rewind":
        return cfg
    base = train_section(exp, "train")
    steps = max(1, n_train // base.batch_size)
    steps = min(steps, base.max_steps_per_epoch or steps)
    return replace(cfg, lr=base.lr, rewind_base={"train": base.to_dict(), "steps_per_epoch": steps})


def _resolve(cfg: TrainConfig, exp: ExperimentLike, n_train: int, images: int | None) -> TrainConfig:
    cfg = cfg if images is None else steps_for_images(cfg, images, n_train)
    return _with_rewind(cfg, exp, n_train)


def darc_finetune_images(exp: ExperimentLike, n_train: int) -> int:
    """Training images DARC's fine-tune sees: what ``finetune.budget`` leaves after the search, or the
    section's epochs as written."""
    cfg = finetune_recipe(exp, n_train)
    return cfg.epochs * images_per_epoch(cfg, n_train)


def finetune_recipe(exp: ExperimentLike, n_train: int) -> TrainConfig:
    """DARC's fine-tune: the ``finetune:`` section, its steps set by ``budget`` (what the search left of
    it) where that is set, and the base's schedule where it rewinds."""
    cfg = train_section(exp, "finetune")
    fraction = budget_fraction(exp)
    if fraction is None:
        return _resolve(cfg, exp, n_train, None)
    left = round(fraction * base_images(exp, n_train)) - darc_search_images(exp, n_train)
    if left < cfg.batch_size:
        raise ValueError(f"finetune.budget {fraction} gives {round(fraction * base_images(exp, n_train))} images "
                         f"after the base, but the search alone takes {darc_search_images(exp, n_train)}: "
                         "raise the budget or shorten the search")
    return _resolve(cfg, exp, n_train, left)


def darc_images_after_base(exp: ExperimentLike, n_train: int) -> int:
    """Training images a DARC network sees after the base: search warm-up, search and fine-tune."""
    return darc_search_images(exp, n_train) + darc_finetune_images(exp, n_train)


def peer_recipe(exp: ExperimentLike, n_train: int) -> TrainConfig:
    """The recipe of a peer derived from the trained base (random decisions, a pruned network): the
    fine-tune recipe for as many images as DARC's search plus fine-tune saw."""
    return _resolve(train_section(exp, "finetune"), exp, n_train, darc_images_after_base(exp, n_train))


def sparsity_recipe(exp: ExperimentLike, n_train: int) -> TrainConfig:
    """The sparsity phase of the BN-scale (network slimming) peer: the fine-tune recipe without distillation
    (the phase stands where DARC's search does, which learns from the labels) for DARC's search images; its
    pruned network is then fine-tuned for DARC's fine-tune images (:func:`pruned_finetune_recipe`)."""
    cfg = replace(train_section(exp, "finetune"), distill=Distill())
    return _resolve(cfg, exp, n_train, darc_search_images(exp, n_train))


def pruned_finetune_recipe(exp: ExperimentLike, n_train: int, pruner: str) -> TrainConfig:
    """What a pruned network is fine-tuned with: :func:`peer_recipe` after plain pruning of the base; after a
    BN-scale sparsity phase (which used DARC's search images), the recipe for DARC's fine-tune images."""
    if pruner != "bn_scale":
        return peer_recipe(exp, n_train)
    return _resolve(train_section(exp, "finetune"), exp, n_train, darc_finetune_images(exp, n_train))


def scratch_recipe(exp: ExperimentLike, n_train: int) -> TrainConfig:
    """DARC's architecture trained from scratch: the base recipe for the base's images plus DARC's after the
    base (whole epochs, rounded up), with the post-compression recipe's distillation from the trained base."""
    cfg = train_section(exp, "train")
    extra = -(-darc_images_after_base(exp, n_train) // images_per_epoch(cfg, n_train))
    return replace(cfg, epochs=cfg.epochs + extra, distill=finetune_recipe(exp, n_train).distill)


def reference_recipes(exp: ExperimentLike, n_train: int) -> dict[str, TrainConfig]:
    """The recipes the equal-budget reference is fine-tuned with, by name: ``configured`` (DARC's
    :func:`finetune_recipe`) and ``alt<i>`` for each ``finetune.reference_recipes`` entry merged onto the
    section (same budget rules)."""
    from darc.config import deep_merge

    exp = as_mapping(exp)
    section = copy.deepcopy(exp.get("finetune") or exp.get("train", {}))
    out = {"configured": finetune_recipe(exp, n_train)}
    for i, over in enumerate(section.pop("reference_recipes", None) or []):
        out[f"alt{i}"] = finetune_recipe({**exp, "finetune": deep_merge(section, over)}, n_train)
    return out


#: The columns :func:`recipe_record` writes (every fine-tuned result, bench row and points-table row has them).
RECIPE_COLUMNS = ("recipe_distill_alpha", "recipe_distill_temperature", "recipe_schedule", "recipe_lr",
                  "recipe_images_after_base", "recipe_fraction_of_base")


def recipe_record(cfg: TrainConfig, exp: ExperimentLike, n_train: int, images_after_base: int) -> dict[str, Any]:
    """The columns every result carries about the recipe it was trained with after the base."""
    base = base_images(exp, n_train)
    return {
        "recipe_distill_alpha": cfg.distill.alpha,
        "recipe_distill_temperature": cfg.distill.temperature if cfg.distill.active else None,
        "recipe_schedule": cfg.schedule + (f"+warmup{cfg.warmup_epochs:g}" if cfg.warmup_epochs else ""),
        "recipe_lr": cfg.lr,
        "recipe_images_after_base": int(images_after_base),
        "recipe_fraction_of_base": images_after_base / base if base else None,
    }
