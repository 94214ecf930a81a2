"""darc.data: real Fashion-MNIST, CIFAR-10 / ImageNet loaders on real pixels, determinism, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from data_fixtures import foolbox_data, images, load_rgb, make_cifar_batches, make_imagefolder

from darc.data import (
    DatasetNotFoundError,
    ResumableSampler,
    ShardSampler,
    TensorImageDataset,
    get_dataset,
    list_datasets,
    make_loaders,
    prepare_epoch,
    subset_indices,
)
from darc.data.tensor import CropFlip, sample_hashes


@pytest.fixture(scope="module")
def fb_data():
    data, why = foolbox_data()
    if data is None:
        pytest.skip(why)
    return data


@pytest.fixture(scope="module")
def fashion():
    try:
        return get_dataset("fashion-mnist")
    except DatasetNotFoundError as exc:
        pytest.skip(f"Fashion-MNIST not installed: {exc}")


def test_registry_lists_all():
    assert {"fashion-mnist", "cifar10", "imagenet", "synthetic"} <= set(list_datasets())


def test_fashion_mnist_real(fashion):
    b = fashion
    assert (len(b.train), len(b.test)) == (60000, 10000)
    assert b.meta.num_classes == 10 and b.meta.input_shape == (1, 28, 28) and b.meta.stand_in
    assert (b.meta.n_train, b.meta.n_test) == (60000, 10000)
    json.dumps(b.meta.to_dict())
    x, y = b.train[0]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and isinstance(y, int)
    for ds in (b.train, b.test):
        t = ds.targets
        assert t.min() == 0 and t.max() == 9
        assert torch.bincount(t).tolist() == [len(ds) // 10] * 10  # balanced classes
    # normalisation: the test split is roughly standardised
    xs = torch.stack([b.test[i][0] for i in range(0, 10000, 10)])
    assert abs(xs.mean().item()) < 0.1 and abs(xs.std().item() - 1) < 0.1


def test_fashion_mnist_matches_foolbox_pngs(fashion, fb_data):
    """foolbox's fashionMNIST_{i}_{label}.png are the first test images: pixels and labels must match."""
    samples = images(fb_data, "fashionMNIST")
    assert len(samples) == 20
    for i, (path, label) in enumerate(samples):
        png = torch.from_numpy(load_rgb(path)[..., 0])
        assert torch.equal(fashion.test.raw(i)[0], png), path.name
        assert int(fashion.test.targets[i]) == label


def test_missing_cifar_error(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        get_dataset("cifar10", root=str(tmp_path / "nowhere"))
    msg = str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    assert str(tmp_path / "nowhere") in msg and "cifar-10-batches-py" in msg
    assert "root" in msg and "download: true" in msg and "cifar-10-python.tar.gz" in msg


def test_missing_fashion_and_imagenet_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist") as err:
        get_dataset("fashion-mnist", root=str(tmp_path))
    assert str(tmp_path) in str(err.value) and "`data_root`" in str(err.value)
    with pytest.raises(DatasetNotFoundError, match="ImageFolder|root/train") as err:
        get_dataset("imagenet", root=str(tmp_path))
    assert str(tmp_path / "train") in str(err.value)


def test_subset_is_deterministic():
    a, b, c = subset_indices(1000, 50, 3), subset_indices(1000, 50, 3), subset_indices(1000, 50, 4)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert len(set(a.tolist())) == 50
    assert subset_indices(10, None, 0) is None and subset_indices(10, 20, 0) is None
    kw = {"n_train": 100, "n_test": 40}
    s1 = get_dataset("synthetic", subset=(30, 10), seed=5, **kw)
    s2 = get_dataset("synthetic", subset=(30, 10), seed=5, **kw)
    assert (len(s1.train), len(s1.test), s1.meta.n_train, s1.meta.n_test) == (30, 10, 30, 10)
    assert s1.train.indices == s2.train.indices and s1.test.indices == s2.test.indices


def test_synthetic_is_deterministic_and_shaped():
    kw = {"input_shape": (2, 5, 7), "num_classes": 3, "n_train": 40, "n_test": 20}
    a, b = get_dataset("synthetic", seed=1, **kw), get_dataset("synthetic", seed=1, **kw)
    c = get_dataset("synthetic", seed=2, **kw)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.targets, b.test.targets)
    assert not torch.equal(a.train.x, c.train.x)
    assert a.train.x.shape == (40, 2, 5, 7) and a.meta.input_shape == (2, 5, 7) and a.meta.stand_in
    assert int(a.train.targets.max()) < 3


def _uint8_set(n=40, c=1, hw=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, c, hw, hw), dtype=torch.uint8, generator=g)
    return x, torch.randint(0, 3, (n,), generator=g)


def test_cropflip_is_a_padded_window():
    x, _ = _uint8_set()
    aug = CropFlip(12, 2)
    h = sample_hashes(7, 1, range(len(x)))
    out = aug(x, h)
    padded = F.pad(x, (2, 2, 2, 2))
    flips = 0
    for i in range(len(x)):
        top, left = int(h[i] % np.uint64(5)), int((h[i] >> np.uint64(16)) % np.uint64(5))
        win = padded[i, :, top : top + 12, left : left + 12]
        flip = bool((h[i] >> np.uint64(40)) & np.uint64(1))
        flips += flip
        assert torch.equal(out[i], win.flip(-1) if flip else win)
    assert 5 < flips < 35


def test_augmentation_depends_only_on_seed_epoch_index():
    x, y = _uint8_set()
    ds = TensorImageDataset(x, y, (0.5,), (0.25,), CropFlip(12, 2), seed=3)
    ds.set_epoch(2)
    batch = ds.__getitems__([5, 1, 9])
    single = ds[1][0]
    assert torch.equal(batch[1][0], single)
    ds2 = TensorImageDataset(x, y, (0.5,), (0.25,), CropFlip(12, 2), seed=3)
    ds2.set_epoch(2)
    assert torch.equal(ds2[9][0], batch[2][0])
    ds2.set_epoch(3)
    assert any(not torch.equal(ds2[i][0], ds.__getitems__([i])[0][0]) for i in range(10))


def test_resumable_sampler_and_shards():
    ds = list(range(103))
    full = list(iter(ResumableSampler(ds, seed=4)))
    s = ResumableSampler(ds, seed=4)
    s.set_start(30)
    assert list(s) == full[30:] and len(s) == 73
    s.set_epoch(1)
    s.set_start(0)
    assert list(s) != full and sorted(s) == ds
    shards = [list(ShardSampler(103, r, 3)) for r in range(3)]
    assert sorted(sum(shards, [])) == ds and sum(len(ShardSampler(103, r, 3)) for r in range(3)) == 103


def test_make_loaders_resume_and_workers():
    b = get_dataset("synthetic", input_shape=(1, 4, 4), n_train=96, n_test=30)
    x8, y8 = _uint8_set(96, 1, 8, seed=1)
    b.train = TensorImageDataset(x8, y8, (0.5,), (0.25,), CropFlip(8, 2), seed=0)
    train, test = make_loaders(b, batch_size=16, seed=9)
    prepare_epoch(train, 1, 0)
    epoch = list(train)
    assert len(epoch) == 6 and epoch[0][0].shape == (16, 1, 8, 8)
    assert prepare_epoch(train, 1, 4)
    tail = list(train)
    assert len(tail) == 2 and all(torch.equal(a[0], b_[0]) for a, b_ in zip(epoch[4:], tail))
    assert sum(len(yb) for _, yb in test) == 30
    # the same batches with worker processes (augmentation does not depend on who loads)
    train2, _ = make_loaders(b, batch_size=16, seed=9, workers=2)
    prepare_epoch(train2, 1, 0)
    assert all(torch.equal(a[0], c[0]) and torch.equal(a[1], c[1]) for a, c in zip(epoch, train2))
    # distributed shards, with explicit rank / world size
    parts = [make_loaders(b, 16, distributed=True, rank=r, world_size=2, seed=9) for r in range(2)]
    for tr, _ in parts:
        prepare_epoch(tr, 0, 0)
    assert len(parts[0][0]) == 3
    assert sum(len(yb) for _, te in parts for _, yb in te) == 30


def test_cifar10_on_real_pixels(fb_data, tmp_path):
    samples = images(fb_data, "cifar10")
    assert len(samples) == 20
    root = make_cifar_batches(samples, tmp_path)
    b = get_dataset("cifar10", root=str(root))
    assert (len(b.train), len(b.test)) == (20, 20) and b.meta.num_classes == 10 and not b.meta.stand_in
    assert b.meta.input_shape == (3, 32, 32)
    for i, (path, label) in enumerate(samples):
        assert torch.equal(b.test.raw(i), torch.from_numpy(load_rgb(path)).permute(2, 0, 1)), path.name
        assert int(b.test.targets[i]) == label
    x, y = b.train[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and y == samples[0][1]
    # unaugmented test sample = normalised pixels
    mean, std = torch.tensor(b.meta.mean).view(3, 1, 1), torch.tensor(b.meta.std).view(3, 1, 1)
    assert torch.allclose(b.test[3][0] * std + mean, b.test.raw(3).float() / 255, atol=1e-6)
    train, _ = make_loaders(b, batch_size=8)
    prepare_epoch(train, 0, 0)
    xb, yb = next(iter(train))
    assert xb.shape == (8, 3, 32, 32) and yb.dtype == torch.int64


def test_imagenet_on_real_pixels(fb_data, tmp_path):
    samples = images(fb_data, "imagenet")
    assert len(samples) == 20
    root = make_imagefolder(samples, tmp_path / "imagenet")
    b = get_dataset("imagenet", root=str(root), subset=(6, 4))
    n_classes = len({label for _, label in samples})
    assert b.meta.num_classes == n_classes and b.meta.input_shape == (3, 224, 224)
    x, y = b.test[0]
    assert x.shape == (3, 224, 224) and x.dtype == torch.float32 and 0 <= y < n_classes
    assert torch.equal(b.test[1][0], b.test[1][0])
    train = b.train.dataset  # the SeededTransformDataset under the subset
    train.set_epoch(0)
    a0 = train[2][0]
    torch.manual_seed(123)  # the global RNG does not matter ...
    assert torch.equal(train[2][0], a0)
    train.set_epoch(1)  # ... the epoch does
    assert not torch.equal(train[2][0], a0)
    assert a0.shape == (3, 224, 224)


def test_fashion_mnist_rgb32_is_fashion_mnist_padded_and_repeated():
    from darc.data import get_dataset

    grey = get_dataset("fashion-mnist", train_transform=False, subset=(5, 5))
    rgb = get_dataset("fashion-mnist-rgb32", train_transform=False, subset=(5, 5))
    assert rgb.meta.input_shape == (3, 32, 32) and rgb.meta.stand_in
    x, y = rgb.train[0]
    g, gy = grey.train[0]
    assert y == gy and x.shape == (3, 32, 32)
    assert torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])
    assert torch.allclose(x[0, 2:30, 2:30], g[0])
