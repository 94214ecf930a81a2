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
    n_val: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form."""
        d = asdict(self)
        d["input_shape"] = list(self.input_shape)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d


@dataclass
class DatasetBundle:
    """A train split, a test split, an optional validation split and their :class:`DatasetMeta`.

    ``val`` (when asked for) is held out of the training set, without augmentation: no training step
    sees it, and operating points are chosen on it.
    """

    train: Dataset
    test: Dataset
    meta: DatasetMeta
    val: Dataset | None = None


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


def dataset_targets(ds: Dataset) -> torch.Tensor:
    """Class labels of ``ds`` (through ``Subset`` and ``.base`` wrappers; read one by one otherwise)."""
    if isinstance(ds, Subset):
        return dataset_targets(ds.dataset)[torch.as_tensor(ds.indices, dtype=torch.long)]
    for holder in (ds, getattr(ds, "base", None)):
        targets = getattr(holder, "targets", None)
        if targets is not None:
            return torch.as_tensor(targets, dtype=torch.long)
    return torch.tensor([int(ds[i][1]) for i in range(len(ds))], dtype=torch.long)  # type: ignore[arg-type]


def stratified_split(targets: torch.Tensor, k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(held_out, rest)``: ``k`` indices drawn per class in proportion to its size (largest
    remainder), with a generator seeded by ``seed``; both sorted."""
    n = len(targets)
    if not 0 < k < n:
        raise ValueError(f"a validation split of {k} images needs 0 < k < {n} (the training set's size)")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    classes, counts = torch.unique(targets, return_counts=True)
    exact = counts.double() * k / n
    take = exact.floor().long()
    short = k - int(take.sum())
    take[torch.argsort(exact - take.double(), descending=True, stable=True)[:short]] += 1
    held = [perm[targets[perm] == c][: int(t)] for c, t in zip(classes.tolist(), take)]
    held_out = torch.cat(held).sort().values
    mask = torch.ones(n, dtype=torch.bool)
    mask[held_out] = False
    return held_out, mask.nonzero().flatten()


def _take(ds: Dataset, k: int | None, seed: int) -> Dataset:
    idx = subset_indices(len(ds), k, seed)  # type: ignore[arg-type]
    return ds if idx is None else Subset(ds, idx.tolist())


def get_dataset(
    name: str,
    root: str | None = None,
    train_transform: bool = True,
    subset: tuple[int | None, int | None] | None = None,
    seed: int = 0,
    val_size: int | None = None,
    **kw: Any,
) -> DatasetBundle:
    """Build the dataset registered as ``name``.

    Args:
        name: a registered name (:func:`list_datasets`).
        root: where the files are; each dataset documents its default.
        train_transform: augment the train split (random crop + flip); False gives the test transform.
        subset: ``(n_train, n_test)``, either None for the whole split: a subset picked with a
            generator seeded by ``seed`` (the same indices on every call).
        seed: seeds the subset choice, the validation split and the per-sample augmentation stream.
        val_size: hold out this many training images as ``bundle.val`` (stratified by class, drawn with
            ``seed``, without augmentation) before the training subset is drawn from the rest.
        **kw: dataset-specific options (``download`` for cifar10; shapes for synthetic).
    """
    bundle = DATASETS.create(name, root=root, train_transform=train_transform, seed=seed, **kw)
    if val_size:
        plain = DATASETS.create(name, root=root, train_transform=False, seed=seed, **kw) if train_transform else bundle
        held_out, rest = stratified_split(dataset_targets(bundle.train), int(val_size), seed)
        bundle.val = Subset(plain.train, held_out.tolist())
        bundle.train = Subset(bundle.train, rest.tolist())
    if subset is not None:
        n_train, n_test = subset
        bundle.train = _take(bundle.train, n_train, seed)
        bundle.test = _take(bundle.test, n_test, seed + 1)
    bundle.meta = replace(bundle.meta, n_train=len(bundle.train), n_test=len(bundle.test),  # type: ignore[arg-type]
                          n_val=len(bundle.val) if bundle.val is not None else 0)  # type: ignore[arg-type]
    return bundle
