"""Synthetic, learnable tensors for tests: Gaussian clusters with class-dependent means."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from darc.data.base import DATASETS, DatasetBundle, DatasetMeta


class TensorPairs(Dataset):
    """(x, y) pairs held as tensors; no augmentation."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.targets = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.x[index], int(self.targets[index])


def make_clusters(
    n: int,
    input_shape: Sequence[int],
    num_classes: int,
    means: torch.Tensor,
    noise: float,
    g: torch.Generator,
) -> TensorPairs:
    """``n`` samples: label uniform, x = means[label] + noise * N(0, 1)."""
    y = torch.randint(0, num_classes, (n,), generator=g)
    x = means[y] + noise * torch.randn((n, *input_shape), generator=g)
    return TensorPairs(x, y)


@DATASETS.register("synthetic")
def synthetic(
    root: str | None = None,
    train_transform: bool = True,
    seed: int = 0,
    input_shape: Sequence[int] = (3, 8, 8),
    num_classes: int = 4,
    n_train: int = 256,
    n_test: int = 128,
    noise: float = 1.0,
) -> DatasetBundle:
    """Deterministic (given ``seed``) clusters; a tiny model separates them in a few steps."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3:
        raise ValueError(f"input_shape must be (C, H, W), got {shape}")
    g = torch.Generator().manual_seed(seed)
    means = torch.randn((num_classes, *shape), generator=g)
    train = make_clusters(n_train, shape, num_classes, means, noise, g)
    test = make_clusters(n_test, shape, num_classes, means, noise, g)
    meta = DatasetMeta(
        name="synthetic", num_classes=num_classes, input_shape=shape,  # type: ignore[arg-type]
        mean=(0.0,) * shape[0], std=(1.0,) * shape[0], stand_in=True, source=f"synthetic(seed={seed})",
    )
    return DatasetBundle(train, test, meta)
