"""Datasets (a registry) and loaders.

``get_dataset(name, root=None, train_transform=True, subset=None, seed=0, **kw)`` returns a
:class:`DatasetBundle` (train, test, meta, optional val); ``make_loaders`` builds resumable DataLoaders.
Registered: ``fashion-mnist`` (default-scale stand-in), ``cifar10``, ``imagenet``, ``synthetic``.
"""

from darc.data import cifar, fashion_mnist, imagenet, synthetic  # noqa: F401  (registration)
from darc.data.base import (
    DATASETS,
    DatasetBundle,
    DatasetMeta,
    DatasetNotFoundError,
    dataset_targets,
    get_dataset,
    list_datasets,
    stratified_split,
    subset_indices,
)
from darc.data.loaders import ResumableSampler, ShardSampler, make_eval_loader, make_loaders, prepare_epoch
from darc.data.tensor import CropFlip, SeededTransformDataset, TensorImageDataset, sample_seed, set_epoch

__all__ = [
    "DATASETS",
    "CropFlip",
    "DatasetBundle",
    "DatasetMeta",
    "DatasetNotFoundError",
    "ResumableSampler",
    "SeededTransformDataset",
    "ShardSampler",
    "TensorImageDataset",
    "dataset_targets",
    "get_dataset",
    "list_datasets",
    "make_eval_loader",
    "make_loaders",
    "prepare_epoch",
    "sample_seed",
    "set_epoch",
    "stratified_split",
    "subset_indices",
]
