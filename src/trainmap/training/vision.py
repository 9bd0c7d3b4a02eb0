"""Image classification: MNIST, CIFAR-100 and the scikit-learn digits stand-in.

Hu et al. (2023), tables 7 and 8: an MLP on MNIST and ResNet18 on CIFAR-100,
both read with ``torchvision.datasets`` from a data folder (config key
``data.root``). Nothing here downloads unless asked: :func:`download` is what
the ``download_data`` rule runs where there is a network, and :func:`load`
stops with a :class:`~trainmap.errors.TrainmapError` naming the missing files
otherwise. The ``digits`` data set (scikit-learn's 1797 8×8 digits, shipped
with the package) is the stand-in that the default config trains on a CPU.

Every data set becomes float images ``(N, C, H, W)`` in [0, 1], optionally
standardised per channel with the training images' mean and standard
deviation. Augmentation (random crop of a zero-padded image and horizontal
flip, table 7) is :class:`RandomCropFlip`, drawn from the trainer's per-seed
generator, so runs keep their own augmentation streams.

Tasks (``task:`` in a setting): ``image_mlp`` (MNIST, table 8) and
``image_resnet`` (CIFAR-100 with and without batch norm and residual
connections, table 7). Their ``data:`` keys are those of :func:`load` plus
``normalize`` and ``augment``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from urllib.error import URLError

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainmap.errors import TrainmapError
from trainmap.training.data import TaskData, generator
from trainmap.training.models import MLP
from trainmap.training.resnet import ResNet
from trainmap.training.tasks import Task, register_task

#: Image shape ``(C, H, W)`` and number of classes of each data set.
SHAPES: dict[str, tuple[tuple[int, int, int], int]] = {
    "mnist": ((1, 28, 28), 10),
    "cifar100": ((3, 32, 32), 100),
    "digits": ((1, 8, 8), 10),
}


def torchvision_dataset(dataset: str) -> type:
    """torchvision's class of ``dataset`` (``mnist`` or ``cifar100``).

    Imported here, not at the top: torchvision pulls in torch's compiler stack,
    a second or two that every job on the other tasks would pay for nothing.
    """
    from torchvision.datasets import CIFAR100, MNIST

    classes = {"mnist": MNIST, "cifar100": CIFAR100}
    if dataset not in classes:
        raise TrainmapError(
            f"data.dataset {dataset!r} is not downloadable; choose mnist or cifar100"
        )
    return classes[dataset]


def data_files(dataset: str, root: str | Path) -> list[Path]:
    """The files torchvision reads for ``dataset`` under ``root`` (what to download or place)."""
    root = Path(root)
    source = torchvision_dataset(dataset)
    if dataset == "mnist":
        names = [os.path.splitext(name)[0] for name, _ in source.resources]  # without .gz
        return [root / "MNIST" / "raw" / name for name in names]
    names = [n for n, _ in source.train_list + source.test_list] + [source.meta["filename"]]
    return [root / source.base_folder / name for name in names]


def _missing_message(dataset: str, root: Path, missing: list[Path]) -> str:
    return (
        f"data set {dataset!r} not found under data.root = {str(root)!r}: missing "
        + ", ".join(map(str, missing))
        + ". Run `snakemake --cores 1 download_data` (with the same --configfile) on a "
        "machine with a network, or put the files there yourself"
    )


def download(dataset: str, root: str | Path) -> list[Path]:
    """Download ``dataset`` into ``root`` with torchvision, unless its files are there already.

    Returns the data set's files. Files already in place are checked (CIFAR-100
    by checksum) and kept, so copying them in by hand works too.
    """
    root = Path(root)
    files = data_files(dataset, root)
    try:
        for train in (True, False):
            torchvision_dataset(dataset)(root, train=train, download=True)
    except (URLError, RuntimeError, OSError) as error:
        missing = [f for f in files if not f.exists()]
        raise TrainmapError(
            f"cannot download {dataset!r} into {root} ({error}); "
            + (_missing_message(dataset, root, missing) if missing else "files present but corrupt")
        ) from error
    return files


def _torchvision_images(dataset: str, root: Path, train: bool) -> tuple[Tensor, Tensor]:
    """Images ``(N, C, H, W)`` in [0, 1] and labels, read by torchvision from ``root``."""
    missing = [f for f in data_files(dataset, root) if not f.exists()]
    if missing:
        raise TrainmapError(_missing_message(dataset, root, missing))
    try:
        ds = torchvision_dataset(dataset)(root, train=train, download=False)
    except RuntimeError as error:  # CIFAR-100's checksums
        raise TrainmapError(
            f"data set {dataset!r} under data.root = {str(root)!r} is corrupt ({error}); "
            "delete its files and run `snakemake --cores 1 download_data` again"
        ) from error
    images = torch.as_tensor(ds.data)
    images = images.unsqueeze(1) if images.dim() == 3 else images.permute(0, 3, 1, 2)  # NHWC
    return images.float() / 255, torch.as_tensor(ds.targets, dtype=torch.long)


def _digits(eval_fraction: float, seed: int) -> TaskData:
    """scikit-learn's 8×8 digits as ``(N, 1, 8, 8)`` images in [0, 1], randomly split."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.as_tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16
    labels = torch.as_tensor(digits.target, dtype=torch.long)
    order = torch.randperm(len(labels), generator=generator(seed))
    n_eval = round(eval_fraction * len(labels))
    test, train = order[:n_eval], order[n_eval:]
    return TaskData(images[train], labels[train], images[test], labels[test])


def load(
    dataset: str,
    seed: int,
    root: str | Path | None = None,
    eval_fraction: float = 0.3,
    normalize: bool = False,
) -> TaskData:
    """A data set as float images ``(N, C, H, W)`` and integer labels.

    Parameters
    ----------
    dataset
        ``mnist`` or ``cifar100`` (their standard train/test splits, read from
        ``root``), or ``digits`` (scikit-learn's digits, a random
        ``eval_fraction`` held out, fixed by ``seed``).
    seed
        Fixes the digits split (and, in the trainer, the subset of examples
        whose losses are recorded).
    root
        The data folder of ``mnist`` and ``cifar100`` (see :func:`data_files`).
    normalize
        Standardise each channel with the training images' mean and standard
        deviation (CIFAR-100: the usual ≈ (0.51, 0.49, 0.44) and (0.27, 0.26, 0.28)).
    """
    if dataset not in SHAPES:
        raise TrainmapError(f"data.dataset {dataset!r} is unknown; choose one of {list(SHAPES)}")
    if dataset == "digits":
        data = _digits(eval_fraction, seed)
    else:
        if root is None:
            raise TrainmapError(f"data.root: needed for data set {dataset!r} (the data folder)")
        root = Path(root)
        x_train, y_train = _torchvision_images(dataset, root, train=True)
        x_eval, y_eval = _torchvision_images(dataset, root, train=False)
        data = TaskData(x_train, y_train, x_eval, y_eval)
    if normalize:
        mean = data.x_train.mean((0, 2, 3), keepdim=True)[0]
        std = data.x_train.std((0, 2, 3), correction=0, keepdim=True)[0]
        data = TaskData(
            (data.x_train - mean) / std, data.y_train, (data.x_eval - mean) / std, data.y_eval
        )
    return data


class RandomCropFlip:
    """Random crop of the image zero-padded by ``crop_padding``, then a random horizontal flip.

    Acts on one seed's batch ``(B, C, H, W)`` (torchvision's ``RandomCrop(H,
    padding)`` and ``RandomHorizontalFlip()`` for every image at once); the
    random draws come from ``generator`` in a fixed order, so a (seed, step)
    always gets the same crops and flips.
    """

    def __init__(self, crop_padding: int = 4, flip: bool = True) -> None:
        self.padding, self.flip = crop_padding, flip

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        b, _, h, w = x.shape
        p = self.padding
        dy, dx = torch.randint(0, 2 * p + 1, (2, b, 1), generator=generator).to(x.device)
        flip = (torch.rand(b, generator=generator) < 0.5).to(x.device)
        if p:
            padded = F.pad(x, (p, p, p, p))
            rows = (dy + torch.arange(h, device=x.device))[:, :, None]  # (B, H, 1)
            cols = (dx + torch.arange(w, device=x.device))[:, None, :]  # (B, 1, W)
            batch = torch.arange(b, device=x.device)[:, None, None]
            x = padded[batch, :, rows, cols].permute(0, 3, 1, 2)  # (B, H, W, C) -> (B, C, H, W)
        if self.flip:
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        return x


class ImageTask(Task):
    """Image classification on a data set of :func:`load`; ``data.augment``: augmentation."""

    def __init__(self, model: dict, data: dict) -> None:
        super().__init__(model, data)
        augment = self.data.get("augment")
        self.augment = RandomCropFlip(**augment) if augment else None
        dataset = self.data.get("dataset")
        if dataset not in SHAPES:
            raise TrainmapError(
                f"data.dataset {dataset!r} is unknown; choose one of {list(SHAPES)}"
            )
        self.shape, self.n_classes = SHAPES[dataset]

    def build_data(self) -> TaskData:
        options = {k: v for k, v in self.data.items() if k != "augment"}
        return load(**options)


@register_task("image_mlp")
class ImageMLP(ImageTask):
    """An MLP on flattened images (MNIST: 784-800-10, Hu et al. table 8).

    ``model:`` ``hidden`` (widths of the hidden layers). Metrics: every
    layer's weight matrix and bias.
    """

    def build_model(self) -> nn.Module:
        return MLP(d_in=math.prod(self.shape), n_classes=self.n_classes, **self.model)


@register_task("image_resnet")
class ImageResNet(ImageTask):
    """A CIFAR-style :class:`~trainmap.training.resnet.ResNet` (CIFAR-100: ResNet18, table 7).

    ``model:`` ``widths``, ``blocks``, ``batch_norm``, ``residual``. Metrics:
    every convolution kernel as an ``out × in·kh·kw`` matrix and the final
    linear layer (its bias is the only bias; batch norm is excluded). With
    batch norm, each seed is its own model with its own running statistics
    (the trainer's one-model-per-seed path); without, seeds are vmapped.
    """

    def build_model(self) -> nn.Module:
        return ResNet(in_channels=self.shape[0], n_classes=self.n_classes, **self.model)
