"""Real pixels for data tests: the CIFAR-10 and ImageNet sample images shipped in foolbox's wheel.

``foolbox==3.3.4``'s wheel holds ``foolbox/data/``: 20 CIFAR-10 test images
(``cifar10_{i}_{label}.png``), 20 ImageNet validation images (``imagenet_{i}_{label}.jpg``) and
20 Fashion-MNIST test images. The wheel is fetched once with ``pip download`` into
``$DARC_CACHE/foolbox`` (default ``~/.cache/darc/foolbox``) and only its data files are extracted;
nothing is installed. From them we build a tiny CIFAR python-batches folder and a tiny ImageFolder
tree, so the real loaders run on real images.
"""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

FOOLBOX = "foolbox==3.3.4"
WHEEL = "foolbox-3.3.4-py3-none-any.whl"
_NAME = re.compile(r"^(?P<kind>[A-Za-z0-9]+?)_(?P<i>\d+)_(?P<label>\d+)\.(png|jpg)$")


def cache_dir() -> Path:
    return Path(os.environ.get("DARC_CACHE", "~/.cache/darc")).expanduser() / "foolbox"


def foolbox_data() -> tuple[Path | None, str]:
    """The extracted ``foolbox/data`` folder, or ``(None, why not)``."""
    cache = cache_dir()
    data = cache / "foolbox" / "data"
    if data.is_dir() and any(data.iterdir()):
        return data, ""
    wheel = cache / WHEEL
    if not wheel.exists():
        cache.mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", FOOLBOX, "-d", str(cache)],
                check=True, capture_output=True, text=True, timeout=180,
            )
        except (subprocess.SubprocessError, OSError) as exc:
            err = getattr(exc, "stderr", "") or exc
            return None, f"could not fetch {FOOLBOX} with pip download (no network?): {str(err)[-300:]}"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(cache, [n for n in zf.namelist() if n.startswith("foolbox/data/")])
    return data, ""


def images(data: Path, kind: str) -> list[tuple[Path, int]]:
    """``(path, label)`` of the sample images of ``kind`` (cifar10, imagenet, fashionMNIST), in order."""
    out = []
    for p in sorted(data.iterdir()):
        m = _NAME.match(p.name)
        if m and m["kind"] == kind:
            out.append((int(m["i"]), p, int(m["label"])))
    return [(p, label) for _, p, label in sorted(out)]


def load_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8."""
    from PIL import Image

    with Image.open(path) as im:
        return np.array(im.convert("RGB"), dtype=np.uint8)


def make_cifar_batches(samples: list[tuple[Path, int]], root: Path) -> Path:
    """Write ``root/cifar-10-batches-py`` (data_batch_1..5, test_batch, batches.meta) from ``samples``.

    The train batches split ``samples`` five ways; the test batch holds all of them, in order.
    """
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    pix = np.stack([load_rgb(p).transpose(2, 0, 1).reshape(-1) for p, _ in samples])  # N, 3072 (CHW)
    labels = [label for _, label in samples]

    def write(name: str, idx: list[int]) -> None:
        batch = {"batch_label": name, "labels": [labels[i] for i in idx], "data": pix[idx],
                 "filenames": [samples[i][0].name for i in idx]}
        with open(folder / name, "wb") as fh:
            pickle.dump(batch, fh)

    n = len(samples)
    for b in range(5):
        write(f"data_batch_{b + 1}", list(range(b, n, 5)))
    write("test_batch", list(range(n)))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": names, "num_cases_per_batch": n // 5, "num_vis": 3072}, fh)
    return root


def make_imagefolder(samples: list[tuple[Path, int]], root: Path) -> Path:
    """``root/train/<class>/`` and ``root/val/<class>/`` with every sample (links, or copies)."""
    for split in ("train", "val"):
        for p, label in samples:
            d = root / split / f"n{label:08d}"
            d.mkdir(parents=True, exist_ok=True)
            target = d / p.name
            try:
                target.symlink_to(p)
            except OSError:
                target.write_bytes(p.read_bytes())
    return root
