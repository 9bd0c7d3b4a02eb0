"""ResNet for small images (CIFAR style): a 3×3 stem, no max-pool, four stages.

``ResNet(widths=(64, 128, 256, 512), blocks=(2, 2, 2, 2))`` is ResNet18 as
trained on CIFAR-100 by Hu et al. (2023), table 7 (He et al. 2016 with the
usual CIFAR stem). ``batch_norm=False`` and ``residual=False`` give the
destabilized model of their figure 4: every batch norm becomes the identity
(the convolutions keep ``bias=False``, as in ResNet18) and the blocks lose
their shortcut, projection convolutions included. Fewer and narrower stages
give the small stand-in model of the default config.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn


def _norm(channels: int, batch_norm: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if batch_norm else nn.Identity()


class BasicBlock(nn.Module):
    """Two 3×3 convolutions; ``relu(F(x) + shortcut(x))``, or ``relu(F(x))`` without residual."""

    def __init__(
        self, c_in: int, c_out: int, stride: int, batch_norm: bool, residual: bool
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, padding=1, bias=False)
        self.bn1 = _norm(c_out, batch_norm)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, padding=1, bias=False)
        self.bn2 = _norm(c_out, batch_norm)
        self.residual = residual
        self.shortcut = nn.Identity()
        if residual and (stride != 1 or c_in != c_out):  # project x to the new shape
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), _norm(c_out, batch_norm)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        if self.residual:
            out = out + self.shortcut(x)
        return F.relu(out)


class ResNet(nn.Module):
    """Stem conv → stages of :class:`BasicBlock` (stride 2 from the second) → global pool → linear.

    Parameters
    ----------
    in_channels, n_classes
        Image channels and number of classes.
    widths, blocks
        Channels and number of blocks of each stage; ResNet18 is
        ``(64, 128, 256, 512)`` and ``(2, 2, 2, 2)``.
    batch_norm, residual
        ``False`` removes batch normalization / residual connections.
    """

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        widths: Sequence[int] = (64, 128, 256, 512),
        blocks: Sequence[int] = (2, 2, 2, 2),
        batch_norm: bool = True,
        residual: bool = True,
    ) -> None:
        super().__init__()
        if len(widths) != len(blocks):
            raise ValueError(f"widths {list(widths)} and blocks {list(blocks)} differ in length")
        self.stem = nn.Conv2d(in_channels, widths[0], 3, 1, padding=1, bias=False)
        self.bn = _norm(widths[0], batch_norm)
        layers, c_in = [], widths[0]
        for i, (c_out, n) in enumerate(zip(widths, blocks, strict=True)):
            for j in range(n):
                stride = 2 if i > 0 and j == 0 else 1
                layers.append(BasicBlock(c_in, c_out, stride, batch_norm, residual))
                c_in = c_out
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(c_in, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.layers(F.relu(self.bn(self.stem(x))))
        return self.fc(x.mean((-2, -1)))
