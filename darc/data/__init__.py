"""Datasets (a registry) and loaders.

``get_dataset(name, root=None, train_transform=True, subset=None, seed=0, **kw)`` returns a
:class:`DatasetBundle` (train, test, meta); ``make_loaders`` builds resumable DataLoaders.
Registered: ``fashion-mnist`` (default-scale stand-in), ``cifar10``, ``imagenet``, ``synthetic``.
"""

from darc.data import cifar, fashion_mnist, imagenet, synthetic  # noqa: F401  (registration)
from darc.data.base import (
    DATASETS,
    DatasetBundle,
    DatasetMeta,
    DatasetNotFoundError,
    get_dataset,
    list_datasets,
    subset_indices,
)
from darc.data.loaders import ResumableSampler, ShardSampler, make_loaders, prepare_epoch
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
    "get_dataset",
    "list_datasets",
    "make_loaders",
    "prepare_epoch",
    "sample_seed",
    "set_epoch",
    "subset_indices",
]
