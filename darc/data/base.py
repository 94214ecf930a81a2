"""What every dataset returns (:class:`DatasetBundle`), the dataset registry and :func:`get_dataset`.

A dataset factory is one decorated function::

    @DATASETS.register("name")
    def name(root, train_transform, seed, **kw) -> DatasetBundle: ...

``get_dataset`` calls it and then, where asked, keeps a seeded subset (reduced scales).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch
from torch.utils.data import Dataset, Subset

from darc.registry import Registry


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are missing; the message says where we looked and how to provide them."""


@dataclass(frozen=True)
class DatasetMeta:
    """Facts about a dataset that models, tables and provenance need.

    ``stand_in`` is True where the dataset stands in for one of the paper's (CIFAR-10, ImageNet):
    Fashion-MNIST at the default scale, synthetic tensors in tests.
    """

    name: str
    num_classes: int
    input_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    stand_in: bool
    source: str
    n_train: int = 0
    n_test: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d


@dataclass
class DatasetBundle:
    """A train split, a test split and their :class:`DatasetMeta`."""

    train: Dataset
    test: Dataset
    meta: DatasetMeta


DATASETS: Registry[DatasetBundle] = Registry("dataset")


def list_datasets(pattern: str = "*") -> list[str]:
    """Names of the registered datasets."""
    return DATASETS.list(pattern)


def subset_indices(n: int, k: int | None, seed: int) -> torch.Tensor | None:
    """``k`` of ``range(n)`` picked with a seeded generator (sorted), or None for all of them."""
    if k is None or k >= n:
        return None
    if k <= 0:
        raise ValueError(f"subset size must be positive, got {k}")
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=g)[:k].sort().values


def _take(ds: Dataset, k: int | None, seed: int) -> Dataset:
    idx = subset_indices(len(ds), k, seed)  # type: ignore[arg-type]
    return ds if idx is None else Subset(ds, idx.tolist())


def get_dataset(
    name: str,
    root: str | None = None,
    train_transform: bool = True,
    subset: tuple[int | None, int | None] | None = None,
    seed: int = 0,
    **kw: Any,
) -> DatasetBundle:
    """Build the dataset registered as ``name``.

    Args:
        name: a registered name (:func:`list_datasets`).
        root: where the files are; each dataset documents its default.
        train_transform: augment the train split (random crop + flip); False gives the test transform.
        subset: ``(n_train, n_test)``, either None for the whole split: a subset picked with a
            generator seeded by ``seed`` (the same indices on every call).
        seed: seeds the subset choice and the per-sample augmentation stream.
        **kw: dataset-specific options (``download`` for cifar10; shapes for synthetic).
    """
    bundle = DATASETS.create(name, root=root, train_transform=train_transform, seed=seed, **kw)
    if subset is not None:
        n_train, n_test = subset
        bundle.train = _take(bundle.train, n_train, seed)
        bundle.test = _take(bundle.test, n_test, seed + 1)
    bundle.meta = replace(bundle.meta, n_train=len(bundle.train), n_test=len(bundle.test))  # type: ignore[arg-type]
    return bundle
