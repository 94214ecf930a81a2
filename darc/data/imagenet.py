"""ImageNet (ILSVRC-2012) as an ImageFolder tree: ``root/train/<wnid>/*.JPEG``, ``root/val/<wnid>/*``.

Train: RandomResizedCrop(224) + horizontal flip; test: Resize(256) + CenterCrop(224). Random
choices are seeded per (seed, epoch, sample) (:class:`darc.data.tensor.SeededTransformDataset`).
"""

from __future__ import annotations

from pathlib import Path

from torchvision import datasets, transforms

from darc.data.base import DATASETS, DatasetBundle, DatasetMeta, DatasetNotFoundError
from darc.data.tensor import SeededTransformDataset

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _has_classes(d: Path) -> bool:
    return d.is_dir() and any(p.is_dir() for p in d.iterdir())


@DATASETS.register("imagenet")
def imagenet(
    root: str | None = None, train_transform: bool = True, seed: int = 0, crop: int = 224, resize: int = 256
) -> DatasetBundle:
    """ImageNet from an ImageFolder tree (``root/train`` and ``root/val``, one folder per class)."""
    base = Path(root).expanduser() if root is not None else None
    if base is None or not (_has_classes(base / "train") and _has_classes(base / "val")):
        where = f"{base / 'train'} and {base / 'val'}" if base is not None else "nothing (no root given)"
        raise DatasetNotFoundError(
            f"ImageNet not found (searched {where}). Obtain ILSVRC-2012 from https://image-net.org, "
            "arrange it as root/train/<class>/*.JPEG and root/val/<class>/*.JPEG (the validation "
            "images sorted into class folders, e.g. with the common valprep.sh), and pass root=... "
            "(config key `data_root`)."
        )
    norm = transforms.Normalize(MEAN, STD)
    test_tf = transforms.Compose(
        [transforms.Resize(resize), transforms.CenterCrop(crop), transforms.ToTensor(), norm]
    )
    augment = [transforms.RandomResizedCrop(crop), transforms.RandomHorizontalFlip()]
    train_tf = transforms.Compose([*augment, transforms.ToTensor(), norm]) if train_transform else test_tf
    train_folder = datasets.ImageFolder(str(base / "train"))
    test_folder = datasets.ImageFolder(str(base / "val"))
    if train_folder.classes != test_folder.classes:
        raise ValueError(
            f"ImageNet class folders differ between {base / 'train'} ({len(train_folder.classes)}) and "
            f"{base / 'val'} ({len(test_folder.classes)}): both need the same class folders"
        )
    meta = DatasetMeta(
        name="imagenet", num_classes=len(train_folder.classes), input_shape=(3, crop, crop), mean=MEAN,
        std=STD, stand_in=False, source=str(base),
    )
    train = SeededTransformDataset(train_folder, train_tf, seed)
    test = SeededTransformDataset(test_folder, test_tf, seed)
    return DatasetBundle(train, test, meta)
