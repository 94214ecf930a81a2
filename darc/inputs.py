"""What a stage builds from its typed experiment (:class:`darc.spec.Experiment`): its thread count, data and
networks.

The stages (:mod:`darc.experiment`, :mod:`darc.peers.stages`, :mod:`darc.bench_stage`) all start here. Each
function also takes a raw experiment mapping, which it validates into an :class:`~darc.spec.Experiment` first.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from darc.data import DatasetBundle, get_dataset
from darc.io import load_weights, safe_torch_load
from darc.models import create_model
from darc.spec import Experiment, ExperimentLike
from darc.train import WEIGHTS
from darc.train.rng import seed_everything


def set_threads(exp: ExperimentLike) -> int:
    """Apply the experiment's thread count (if set); return the count in force."""
    exp = Experiment.of(exp)
    if exp.threads:
        torch.set_num_threads(int(exp.threads))
    return torch.get_num_threads()


def experiment_device(exp: ExperimentLike) -> str:
    """The device every stage of the experiment runs and measures on: its ``device`` key, else ``cpu``
    (never an implicit GPU, so the default scale is the same CPU run on every machine)."""
    return Experiment.of(exp).device


def data_seed(exp: ExperimentLike) -> int:
    """The seed of the experiment's subset and validation split: ``data_seed`` where set (a shared base),
    else the run's ``seed``."""
    return Experiment.of(exp).data_seed


def load_data(exp: ExperimentLike) -> DatasetBundle:
    """The experiment's dataset (validation split, subset and seed applied)."""
    exp = Experiment.of(exp)
    kw = {"download": True} if exp.download else {}
    return get_dataset(exp.dataset, root=exp.data_root, subset=exp.subset, seed=exp.data_seed,
                       val_size=exp.validation, **kw)


def base_model(exp: ExperimentLike, data: DatasetBundle) -> nn.Module:
    """A fresh base network, initialised from the experiment's seed; input channels, size and class count
    default to the dataset's."""
    exp = Experiment.of(exp)
    c, h, _ = data.meta.input_shape
    kw = {"in_chans": c, "input_size": h, "num_classes": data.meta.num_classes, **exp.model_kwargs}
    seed_everything(exp.seed)
    return create_model(exp.model, **kw)


def load_base(exp: ExperimentLike, base_dir: str | Path) -> nn.Module:
    """The trained base network of a ``train_base`` run directory."""
    model = base_model(exp, load_data(exp))
    load_weights(model, safe_torch_load(Path(base_dir) / WEIGHTS), Path(base_dir) / WEIGHTS)
    return model
