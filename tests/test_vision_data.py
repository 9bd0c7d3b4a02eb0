"""MNIST and CIFAR-100 through torchvision's real readers, on tiny files in the real formats."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.datasets import CIFAR100

from trainmap.errors import TrainmapError
from trainmap.training import vision


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file (LeCun's MNIST format): magic 0x08 (unsigned byte) + ndim, big-endian sizes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def mnist_root(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (12, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, 12),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (5, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, 5),
    }
    files = vision.data_files("mnist", tmp_path)
    assert sorted(f.name for f in files) == sorted(arrays)
    for f in files:
        write_idx(f, arrays[f.name])
    return tmp_path, arrays


def test_mnist_idx_files_load_through_torchvision(mnist_root):
    root, arrays = mnist_root
    data = vision.load("mnist", seed=0, root=root)
    assert data.x_train.shape == (12, 1, 28, 28) and data.x_eval.shape == (5, 1, 28, 28)
    np.testing.assert_allclose(
        data.x_train[:, 0].numpy(), arrays["train-images-idx3-ubyte"] / 255, rtol=1e-6
    )
    assert data.y_eval.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    assert vision.download("mnist", root) == vision.data_files("mnist", root)  # in place: kept


def test_mnist_mlp_task_reads_the_files(mnist_root):
    from trainmap.training.tasks import get_task

    task = get_task(
        "image_mlp", {"hidden": [7]}, {"dataset": "mnist", "root": str(mnist_root[0]), "seed": 0}
    )
    model = task.build_model()
    assert model(task.build_data().x_train).shape == (12, 10)
    assert [tuple(p.shape) for p in model.parameters()] == [(7, 784), (7,), (10, 7), (10,)]


def write_cifar100(root: Path, n_train: int, n_test: int) -> dict[str, dict]:
    """CIFAR-100's python version: pickled dicts with uint8 rows (1024 R, 1024 G, 1024 B)."""
    rng = np.random.default_rng(1)
    folder = root / CIFAR100.base_folder
    folder.mkdir(parents=True)
    batches = {}
    for name, n in (("train", n_train), ("test", n_test)):
        batches[name] = {
            "filenames": [f"img{i}.png" for i in range(n)],
            "fine_labels": rng.integers(0, 100, n).tolist(),
            "coarse_labels": rng.integers(0, 20, n).tolist(),
            "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        }
        with open(folder / name, "wb") as f:
            pickle.dump(batches[name], f)
    meta = {
        "fine_label_names": [f"c{i}" for i in range(100)],
        "coarse_label_names": list("abcdefghijklmnopqrst"),
    }
    with open(folder / "meta", "wb") as f:
        pickle.dump(meta, f)
    return batches


@pytest.fixture
def no_checksums(monkeypatch):
    """torchvision checks CIFAR-100's MD5 sums: tiny files need them switched off."""
    monkeypatch.setattr(CIFAR100, "train_list", [["train", None]])
    monkeypatch.setattr(CIFAR100, "test_list", [["test", None]])
    monkeypatch.setattr(CIFAR100, "meta", {**CIFAR100.meta, "md5": None})


def test_cifar100_batches_load_through_torchvision(tmp_path, no_checksums):
    batches = write_cifar100(tmp_path, 6, 4)
    assert sorted(vision.data_files("cifar100", tmp_path)) == sorted(
        tmp_path / CIFAR100.base_folder / n for n in ("train", "test", "meta")
    )
    data = vision.load("cifar100", seed=0, root=tmp_path)
    assert data.x_train.shape == (6, 3, 32, 32) and data.x_eval.shape == (4, 3, 32, 32)
    # pixel (c, h, w) of image i is byte c·1024 + h·32 + w of its row
    rows = batches["train"]["data"]
    for i, c, h, w in [(0, 0, 0, 0), (1, 1, 5, 7), (5, 2, 31, 30), (3, 2, 0, 31)]:
        assert data.x_train[i, c, h, w].item() == pytest.approx(
            rows[i, c * 1024 + h * 32 + w] / 255
        )
    assert data.y_eval.tolist() == batches["test"]["fine_labels"]
    assert vision.download("cifar100", tmp_path)  # files in place: no download attempted


def test_cifar100_with_wrong_checksums_is_corrupt(tmp_path):
    write_cifar100(tmp_path, 2, 2)
    with pytest.raises(TrainmapError, match="is corrupt.*download_data"):
        vision.load("cifar100", seed=0, root=tmp_path)


@pytest.mark.parametrize("dataset", ["mnist", "cifar100"])
def test_missing_files_are_named(tmp_path, dataset):
    with pytest.raises(TrainmapError) as error:
        vision.load(dataset, seed=0, root=tmp_path / "data")
    message = str(error.value)
    assert "download_data" in message and "data.root" in message
    for f in vision.data_files(dataset, tmp_path / "data"):
        assert str(f) in message


def test_normalize_standardises_each_channel_with_training_statistics(tmp_path, no_checksums):
    write_cifar100(tmp_path, 8, 3)
    raw = vision.load("cifar100", seed=0, root=tmp_path)
    data = vision.load("cifar100", seed=0, root=tmp_path, normalize=True)
    mean = data.x_train.mean((0, 2, 3))
    std = data.x_train.std((0, 2, 3), correction=0)
    torch.testing.assert_close(mean, torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(std, torch.ones(3), atol=1e-5, rtol=0)
    m = raw.x_train.mean((0, 2, 3))[:, None, None]
    s = raw.x_train.std((0, 2, 3), correction=0)[:, None, None]
    torch.testing.assert_close(data.x_eval, (raw.x_eval - m) / s)  # evaluation: training statistics


def test_digits_stand_in():
    data = vision.load("digits", seed=3, eval_fraction=0.25)
    assert data.x_train.shape[1:] == (1, 8, 8)
    assert len(data.x_train) + len(data.x_eval) == 1797 and len(data.x_eval) == round(0.25 * 1797)
    assert 0 <= data.x_train.min() and data.x_train.max() <= 1
    again, other = vision.load("digits", seed=3, eval_fraction=0.25), vision.load("digits", seed=4)
    assert torch.equal(again.x_eval, data.x_eval) and not torch.equal(other.y_train, data.y_train)


def test_random_crop_is_a_window_of_the_padded_image():
    x = torch.randn(16, 3, 6, 5)
    out = vision.RandomCropFlip(crop_padding=2, flip=False)(x, torch.Generator().manual_seed(0))
    padded = F.pad(x, (2, 2, 2, 2))
    offsets = set()
    for i in range(16):
        hits = [
            (dy, dx)
            for dy in range(5)
            for dx in range(5)
            if torch.equal(out[i], padded[i, :, dy : dy + 6, dx : dx + 5])
        ]
        assert hits, f"image {i} is no window of its padded image"
        offsets.add(hits[0])
    assert len(offsets) > 4  # offsets vary between images


def test_flip_and_reproducibility():
    x = torch.randn(32, 1, 4, 4)
    augment = vision.RandomCropFlip(crop_padding=0, flip=True)
    out = augment(x, torch.Generator().manual_seed(7))
    flipped = [torch.equal(o, xi.flip(-1)) for o, xi in zip(out, x, strict=True)]
    kept = [torch.equal(o, xi) for o, xi in zip(out, x, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True)) and 4 < sum(flipped) < 28
    assert torch.equal(out, augment(x, torch.Generator().manual_seed(7)))
    assert not torch.equal(out, augment(x, torch.Generator().manual_seed(8)))


@pytest.mark.parametrize("dataset", ["svhn", None])
def test_unknown_dataset(dataset):
    from trainmap.training.tasks import get_task

    with pytest.raises(TrainmapError, match="data.dataset"):
        get_task("image_resnet", {}, {"dataset": dataset, "seed": 0})
