"""Fashion-MNIST from its idx files (the Debian package ``dataset-fashion-mnist``, or a given root).

The default scale's stand-in for CIFAR-10: real images, 60,000 train / 10,000 test, 1x28x28.
Files are parsed with numpy once per process and kept in memory as uint8 tensors.
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from darc.data.base import DATASETS, DatasetBundle, DatasetMeta, DatasetNotFoundError
from darc.data.tensor import CropFlip, TensorImageDataset

DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
MEAN, STD = (0.2860,), (0.3530,)
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot")


def read_idx(path: str | Path) -> np.ndarray:
    """Parse an idx file (gzipped or not) into a numpy array of its declared shape (uint8 data only)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path} is not an idx file (bad magic number)")
    if raw[2] != 0x08:
        raise ValueError(f"{path}: only unsigned-byte idx files are supported (type code {raw[2]:#x})")
    ndim = raw[3]
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims} but holds {data.size} bytes (truncated file?)")
    return data.reshape(dims)


def _candidates(root: str | Path | None) -> list[Path]:
    if root is None:
        return [DEFAULT_ROOT]
    root = Path(root).expanduser()
    return [root, root / "fashion-mnist", root / "FashionMNIST" / "raw"]


def _find(dirs: list[Path], stem: str) -> Path | None:
    for d in dirs:
        for name in (stem + ".gz", stem):
            if (d / name).is_file():
                return d / name
    return None


def locate(root: str | Path | None = None) -> dict[str, Path]:
    """The four idx files, or a :class:`DatasetNotFoundError` saying how to get them."""
    dirs = _candidates(root)
    for d in dirs:
        found = {k: _find([d], stem) for k, stem in FILES.items()}
        if all(found.values()):
            return found  # type: ignore[return-value]
    searched = ", ".join(str(d) for d in dirs)
    names = ", ".join(v + "[.gz]" for v in FILES.values())
    raise DatasetNotFoundError(
        f"Fashion-MNIST not found (searched {searched} for {names}). "
        "Install it with `apt-get install dataset-fashion-mnist` (files land in "
        f"{DEFAULT_ROOT}), or download the four idx .gz files from "
        "https://github.com/zalandoresearch/fashion-mnist and pass their folder as root=... "
        "(config key `data_root`)."
    )


@lru_cache(maxsize=4)
def _load(paths: tuple[tuple[str, str], ...]) -> dict[str, torch.Tensor]:
    p = dict(paths)
    out = {}
    for split in ("train", "test"):
        images = torch.from_numpy(read_idx(p[f"{split}_images"]).copy()).unsqueeze(1)  # N,1,28,28
        labels = torch.from_numpy(read_idx(p[f"{split}_labels"]).astype(np.int64))
        if len(images) != len(labels):
            raise ValueError(f"Fashion-MNIST {split}: {len(images)} images but {len(labels)} labels")
        out[f"{split}_images"], out[f"{split}_labels"] = images, labels
    return out


@DATASETS.register("fashion-mnist")
def fashion_mnist(
    root: str | None = None, train_transform: bool = True, seed: int = 0, padding: int = 2
) -> DatasetBundle:
    """Fashion-MNIST; train augmentation: random crop 28 with ``padding`` + horizontal flip."""
    files = locate(root)
    t = _load(tuple(sorted((k, str(v)) for k, v in files.items())))
    aug = CropFlip(28, padding) if train_transform else None
    train = TensorImageDataset(t["train_images"], t["train_labels"], MEAN, STD, aug, seed)
    test = TensorImageDataset(t["test_images"], t["test_labels"], MEAN, STD, None, seed)
    meta = DatasetMeta(
        name="fashion-mnist", num_classes=10, input_shape=(1, 28, 28), mean=MEAN, std=STD,
        stand_in=True, source=str(files["train_images"].parent), extra={"classes": list(CLASSES)},
    )
    return DatasetBundle(train, test, meta)


@DATASETS.register("fashion-mnist-rgb32")
def fashion_mnist_rgb32(
    root: str | None = None, train_transform: bool = True, seed: int = 0, padding: int = 4
) -> DatasetBundle:
    """Fashion-MNIST zero-padded to 32 x 32 and repeated to three channels: a stand-in with the input shape of
    ImageNet-style CNNs (torchvision's take RGB) at CIFAR's size. Train augmentation: random crop 32 with
    ``padding`` + horizontal flip."""
    files = locate(root)
    t = _load(tuple(sorted((k, str(v)) for k, v in files.items())))
    rgb = {k: torch.nn.functional.pad(v, (2, 2, 2, 2)).expand(-1, 3, -1, -1).contiguous()
           for k, v in t.items() if k.endswith("_images")}
    mean, std = MEAN * 3, STD * 3
    aug = CropFlip(32, padding) if train_transform else None
    train = TensorImageDataset(rgb["train_images"], t["train_labels"], mean, std, aug, seed)
    test = TensorImageDataset(rgb["test_images"], t["test_labels"], mean, std, None, seed)
    meta = DatasetMeta(
        name="fashion-mnist-rgb32", num_classes=10, input_shape=(3, 32, 32), mean=mean, std=std, stand_in=True,
        source=str(files["train_images"].parent), extra={"classes": list(CLASSES), "padded_from": 28},
    )
    return DatasetBundle(train, test, meta)
