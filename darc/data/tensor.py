"""In-memory image datasets whose augmentation is a pure function of (seed, epoch, index).

Every random choice a sample's augmentation makes comes from a hash of (seed, epoch, index)
(:func:`sample_hashes`; :func:`sample_seed` seeds torch's RNG from it for torchvision transforms).
So a sample looks the same whatever worker loads it, in whatever order, on whatever rank, and
whatever was loaded before: a run resumed mid-epoch sees exactly the tensors an uninterrupted one
would have. Datasets that take an epoch have ``set_epoch``; :func:`set_epoch`
finds them through ``Subset`` wrappers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

_MASK64 = (1 << 64) - 1


def sample_hashes(seed: int, epoch: int, indices: Sequence[int] | np.ndarray) -> np.ndarray:
    """64-bit hashes (uint64) of (seed, epoch, index), one per index: splitmix64, vectorised."""
    with np.errstate(over="ignore"):
        def mix(x: np.ndarray) -> np.ndarray:
            x = x + np.uint64(0x9E3779B97F4A7C15)
            x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            return x ^ (x >> np.uint64(31))

        head = mix(mix(np.array([seed & _MASK64], dtype=np.uint64)) ^ np.uint64(epoch & _MASK64))
        return mix(head ^ np.asarray(indices, dtype=np.int64).astype(np.uint64))


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for one sample's augmentation in one epoch (for ``torch.manual_seed``)."""
    return int(sample_hashes(seed, epoch, [index])[0] >> np.uint64(1))


def set_epoch(ds: Any, epoch: int) -> None:
    """Call ``set_epoch`` on ``ds`` or on the dataset(s) it wraps (Subset, ConcatDataset)."""
    if hasattr(ds, "set_epoch"):
        ds.set_epoch(epoch)
    elif hasattr(ds, "dataset"):
        set_epoch(ds.dataset, epoch)
    elif hasattr(ds, "datasets"):
        for d in ds.datasets:
            set_epoch(d, epoch)


class CropFlip:
    """Zero-pad by ``padding``, crop back to ``size`` at a random place, flip left-right with p=0.5.

    The same as torchvision's ``RandomCrop(size, padding)`` + ``RandomHorizontalFlip()`` on a PIL
    image (black padding), vectorised over a uint8 (B, C, H, W) batch. The random choices of sample
    ``i`` come from the bits of ``hashes[i]`` (offset, offset, flip), not from a global RNG.
    """

    def __init__(self, size: int, padding: int, flip: bool = True) -> None:
        self.size, self.padding, self.flip = size, padding, flip

    def __call__(self, x: torch.Tensor, hashes: np.ndarray) -> torch.Tensor:
        b, c = x.shape[:2]
        p, s = self.padding, self.size
        if p:
            x = F.pad(x, (p, p, p, p))
        h, w = x.shape[-2:]
        top = torch.from_numpy((hashes % np.uint64(h - s + 1)).astype(np.int64))
        left = torch.from_numpy(((hashes >> np.uint64(16)) % np.uint64(w - s + 1)).astype(np.int64))
        ar = torch.arange(s)
        rows = top[:, None] + ar  # B, s
        cols = left[:, None] + ar
        if self.flip:
            flip = torch.from_numpy(((hashes >> np.uint64(40)) & np.uint64(1)).astype(bool))
            cols = torch.where(flip[:, None], cols.flip(1), cols)
        x = x.gather(2, rows[:, None, :, None].expand(b, c, s, w))
        return x.gather(3, cols[:, None, None, :].expand(b, c, s, s))

    def __repr__(self) -> str:
        return f"CropFlip(size={self.size}, padding={self.padding}, flip={self.flip})"


class TensorImageDataset(Dataset):
    """Images held as one uint8 (N, C, H, W) tensor, normalised per sample, optionally augmented."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        mean: Sequence[float],
        std: Sequence[float],
        augment: CropFlip | None = None,
        seed: int = 0,
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.targets = images, labels.long()
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.augment, self.seed, self.epoch = augment, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.images)

    def raw(self, index: int) -> torch.Tensor:
        """The stored uint8 image, before augmentation and normalisation."""
        return self.images[index]

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, int]]:
        """A whole batch at once (DataLoader calls this): one vectorised crop/flip and normalise."""
        x = self.images[indices]
        if self.augment is not None:
            x = self.augment(x, sample_hashes(self.seed, self.epoch, indices))
        x = (x.float().div_(255.0) - self.mean) / self.std
        return list(zip(x.unbind(0), self.targets[indices].tolist(), strict=True))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.__getitems__([index])[0]


class SeededTransformDataset(Dataset):
    """Apply a torchvision ``transform`` to ``base[index][0]`` with torch's RNG seeded per sample.

    The global RNG is forked around the transform, so loading touches no other random stream.
    """

    def __init__(self, base: Dataset, transform: Callable[[Any], torch.Tensor], seed: int = 0) -> None:
        self.base, self.transform, self.seed, self.epoch = base, transform, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        img, target = self.base[index]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(sample_seed(self.seed, self.epoch, index))
            x = self.transform(img)
        return x, int(target)
