"""What a stage reads from an experiment mapping: its device, thread count, data and networks.

The stages (:mod:`darc.experiment`, :mod:`darc.peers.stages`, :mod:`darc.bench_stage`) all start here, so an
experiment's keys are read in one place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from darc.data import DatasetBundle, get_dataset
from darc.io import load_weights, safe_torch_load
from darc.models import create_model
from darc.train import WEIGHTS
from darc.train.rng import seed_everything


def set_threads(exp: dict[str, Any]) -> int:
    """Apply the experiment's thread count (if set); return the count in force."""
    if exp.get("threads"):
        torch.set_num_threads(int(exp["threads"]))
    return torch.get_num_threads()


def experiment_device(exp: dict[str, Any]) -> str:
    """The device every stage of the experiment runs and measures on: its ``device`` key, else ``cpu``
    (never an implicit GPU, so the default scale is the same CPU run on every machine)."""
    return str(exp.get("device") or "cpu")


def data_seed(exp: dict[str, Any]) -> int:
    """The seed of the experiment's subset and validation split: ``data_seed`` where set (a shared base),
    else the run's ``seed``."""
    return int(exp["data_seed"] if exp.get("data_seed") is not None else exp.get("seed", 0))


def load_data(exp: dict[str, Any]) -> DatasetBundle:
    """The experiment's dataset (validation split, subset and seed applied)."""
    kw = {"download": True} if exp.get("download") else {}
    subset = tuple(exp["subset"]) if exp.get("subset") else None
    return get_dataset(exp["dataset"], root=exp.get("data_root"), subset=subset, seed=data_seed(exp),
                       val_size=exp.get("validation"), **kw)


def base_model(exp: dict[str, Any], data: DatasetBundle) -> nn.Module:
    """A fresh base network, initialised from the experiment's seed; input channels, size and class count
    default to the dataset's."""
    c, h, _ = data.meta.input_shape
    kw = {"in_chans": c, "input_size": h, "num_classes": data.meta.num_classes, **exp.get("model_kwargs", {})}
    seed_everything(int(exp.get("seed", 0)))
    return create_model(exp["model"], **kw)


def load_base(exp: dict[str, Any], base_dir: str | Path) -> nn.Module:
    """The trained base network of a ``train_base`` run directory."""
    model = base_model(exp, load_data(exp))
    load_weights(model, safe_torch_load(Path(base_dir) / WEIGHTS), Path(base_dir) / WEIGHTS)
    return model
