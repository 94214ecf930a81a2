"""DataLoaders whose order is a pure function of (seed, epoch), and that can start part-way.

:class:`ResumableSampler` is a ``DistributedSampler`` (one replica by default) that can skip the
first samples of an epoch, so a run resumed after ``k`` steps of epoch ``e`` draws exactly the
batches ``k, k+1, ...`` that an uninterrupted run draws, without loading the skipped ones.
:func:`prepare_epoch` sets the epoch and the start on a loader before it is iterated.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from darc.data.base import DatasetBundle
from darc.data.tensor import set_epoch


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` that can begin an epoch at ``start`` (a sample offset on this rank)."""

    def __init__(
        self, dataset: Dataset, *, num_replicas: int = 1, rank: int = 0, shuffle: bool = True, seed: int = 0
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed)
        self.start = 0

    def set_start(self, start: int) -> None:
        """Skip the first ``start`` indices of this rank's share of the epoch."""
        if not 0 <= start <= self.num_samples:
            raise ValueError(f"start {start} outside [0, {self.num_samples}]")
        self.start = start

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(super().__iter__(), self.start, None)

    def __len__(self) -> int:
        return self.num_samples - self.start


class ShardSampler(Sampler[int]):
    """Every ``world_size``-th index from ``rank``, in order, without padding (for evaluation)."""

    def __init__(self, n: int, rank: int = 0, world_size: int = 1) -> None:
        self.n, self.rank, self.world_size = n, rank, world_size

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.n, self.world_size))

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.world_size))


def _rank_world(distributed: bool, rank: int | None, world_size: int | None) -> tuple[int, int]:
    if not distributed:
        return 0, 1
    if rank is None or world_size is None:
        if not dist.is_available() or not dist.is_initialized():
            raise RuntimeError("distributed=True needs an initialised process group (or rank and world_size)")
        return dist.get_rank(), dist.get_world_size()
    return rank, world_size


def make_loaders(
    bundle: DatasetBundle,
    batch_size: int,
    workers: int = 0,
    distributed: bool = False,
    seed: int = 0,
    *,
    test_batch_size: int | None = None,
    pin_memory: bool | None = None,
    rank: int | None = None,
    world_size: int | None = None,
) -> tuple[DataLoader, DataLoader]:
    """Train and test loaders for ``bundle``.

    The train loader shuffles with a :class:`ResumableSampler` (``seed + epoch``; sharded across
    ranks when ``distributed``) and drops the last incomplete batch; ``batch_size`` is per process.
    The test loader keeps order and, when distributed, gives each rank a disjoint shard
    (:class:`ShardSampler`) so metrics summed over ranks count every test sample once.
    """
    r, w = _rank_world(distributed, rank, world_size)
    pin = torch.cuda.is_available() if pin_memory is None else pin_memory
    common = {"num_workers": workers, "pin_memory": pin, "persistent_workers": False}
    # Own generators: creating an iterator must not draw from the global RNG (resume-exactness).
    train = DataLoader(
        bundle.train, batch_size=batch_size, drop_last=True,
        sampler=ResumableSampler(bundle.train, num_replicas=w, rank=r, seed=seed),
        generator=torch.Generator().manual_seed(seed), **common,  # type: ignore[arg-type]
    )
    test = make_eval_loader(bundle.test, test_batch_size or batch_size, workers, seed=seed + 1, pin_memory=pin,
                            rank=r, world_size=w)
    return train, test


def make_eval_loader(
    ds: Dataset, batch_size: int, workers: int = 0, *, seed: int = 0, pin_memory: bool | None = None,
    rank: int = 0, world_size: int = 1,
) -> DataLoader:
    """An ordered evaluation loader; with ``world_size > 1`` each rank gets a disjoint shard."""
    pin = torch.cuda.is_available() if pin_memory is None else pin_memory
    return DataLoader(
        ds, batch_size=batch_size, shuffle=False, num_workers=workers, pin_memory=pin, persistent_workers=False,
        sampler=ShardSampler(len(ds), rank, world_size) if world_size > 1 else None,  # type: ignore[arg-type]
        generator=torch.Generator().manual_seed(seed),
    )


def prepare_epoch(loader: DataLoader, epoch: int, start_step: int = 0) -> bool:
    """Set ``epoch`` on the loader's sampler and dataset and, where it can, start at ``start_step``.

    Returns True when the sampler skips the first ``start_step`` batches itself
    (:class:`ResumableSampler`); False when the caller must skip them by iterating.
    """
    sampler = loader.sampler
    set_epoch(loader.dataset, epoch)
    if isinstance(sampler, ResumableSampler):
        sampler.set_epoch(epoch)
        sampler.set_start(start_step * (loader.batch_size or 1))
        return True
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)  # type: ignore[union-attr]
    return start_step == 0
