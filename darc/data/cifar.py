"""CIFAR-10 from the standard python-batches layout (``cifar-10-batches-py/``).

Decoded once into uint8 tensors; augmentation (random crop 32, padding 4, horizontal flip) runs on
tensors with per-sample seeds (see :mod:`darc.data.tensor`).
"""

from __future__ import annotations

import os
import pickle
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from darc.data.base import DATASETS, DatasetBundle, DatasetMeta, DatasetNotFoundError
from darc.data.tensor import CropFlip, TensorImageDataset

# torchvision.datasets.CIFAR10's archive and its official checksum.
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE = "cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def default_root() -> Path:
    """``$DARC_DATA_ROOT`` or ``~/.cache/darc/data``: where ``download=True`` puts the archive."""
    return Path(os.environ.get("DARC_DATA_ROOT", "~/.cache/darc/data")).expanduser()


def _batch_dir(root: Path) -> Path | None:
    for d in (root / FOLDER, root):
        if all((d / f).is_file() for f in (*TRAIN_BATCHES, TEST_BATCH)):
            return d
    return None


def _not_found(root: Path) -> DatasetNotFoundError:
    return DatasetNotFoundError(
        f"CIFAR-10 not found (searched {root / FOLDER} and {root} for data_batch_1..5 and test_batch). "
        f"Download the python version ({URL}), extract it and pass the folder holding {FOLDER}/ as "
        "root=... (config key `data_root`), or set the config key `download: true` where "
        "the network allows it."
    )


def load_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch: uint8 images (N, 3, 32, 32) and int64 labels (N,)."""
    with open(path, "rb") as fh:
        d = pickle.load(fh, encoding="latin1")
    labels = d.get("labels", d.get("fine_labels"))
    data = np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    return data, np.asarray(labels, dtype=np.int64)


@lru_cache(maxsize=2)
def _load(folder: str) -> dict[str, torch.Tensor]:
    out = {}
    for split, names in (("train", TRAIN_BATCHES), ("test", (TEST_BATCH,))):
        parts = [load_batch(Path(folder) / n) for n in names]
        out[f"{split}_images"] = torch.from_numpy(np.concatenate([p[0] for p in parts]))
        out[f"{split}_labels"] = torch.from_numpy(np.concatenate([p[1] for p in parts]))
    return out


def _download(root: Path) -> None:
    from torchvision.datasets.utils import download_and_extract_archive

    download_and_extract_archive(URL, str(root), filename=ARCHIVE, md5=ARCHIVE_MD5)


@DATASETS.register("cifar10")
def cifar10(
    root: str | None = None, train_transform: bool = True, seed: int = 0, download: bool = False,
    padding: int = 4,
) -> DatasetBundle:
    """CIFAR-10; train augmentation: random crop 32 with ``padding`` + horizontal flip."""
    base = Path(root).expanduser() if root is not None else default_root()
    folder = _batch_dir(base)
    if folder is None and download:
        _download(base)
        folder = _batch_dir(base)
    if folder is None:
        raise _not_found(base)
    t = _load(str(folder.resolve()))
    aug = CropFlip(32, padding) if train_transform else None
    train = TensorImageDataset(t["train_images"], t["train_labels"], MEAN, STD, aug, seed)
    test = TensorImageDataset(t["test_images"], t["test_labels"], MEAN, STD, None, seed)
    meta = DatasetMeta(
        name="cifar10", num_classes=10, input_shape=(3, 32, 32), mean=MEAN, std=STD,
        stand_in=False, source=str(folder),
    )
    return DatasetBundle(train, test, meta)
