"""The CIFAR ResNet, its destabilized variant, and the image tasks in the trainer."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch import nn

from trainmap import tables
from trainmap.training.resnet import BasicBlock, ResNet
from trainmap.training.tasks import get_task
from trainmap.training.trainer import train_seeds


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_resnet18_size_and_shapes():
    model = ResNet(3, 100)
    # CIFAR ResNet18: 11 173 962 parameters with 10 classes, + 90 · (512 + 1) for 100 classes
    assert n_params(model) == 11_173_962 + 90 * 513
    assert (
        sum(isinstance(m, nn.Conv2d) for m in model.modules()) == 1 + 16 + 3
    )  # stem, blocks, projections
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert model.stem.kernel_size == (3, 3) and model.stem.stride == (1, 1)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 100)


def test_destabilized_has_no_batch_norm_and_no_shortcuts():
    model = ResNet(3, 100, batch_norm=False, residual=False)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert not list(model.buffers())
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == 1 + 16  # no projections
    # removed: batch norm's gains and biases, and the three 1×1 projections with their norms
    bn = 2 * (64 + 4 * 64 + 4 * 128 + 4 * 256 + 4 * 512) + 2 * (128 + 256 + 512)
    projections = 64 * 128 + 128 * 256 + 256 * 512
    assert n_params(model) == n_params(ResNet(3, 100)) - bn - projections


@pytest.mark.parametrize("residual", [True, False])
def test_residual_connection(residual):
    """With conv2 zeroed (and no batch norm) a block is relu(x) with the shortcut, 0 without."""
    block = BasicBlock(4, 4, stride=1, batch_norm=False, residual=residual)
    nn.init.zeros_(block.conv2.weight)
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(block(x), torch.relu(x) if residual else torch.zeros_like(x))


def test_small_variant_on_8x8_digits():
    model = ResNet(1, 10, widths=(8, 16, 32, 64), blocks=(1, 1, 1, 1))
    assert model(torch.randn(3, 1, 8, 8)).shape == (3, 10)
    with pytest.raises(ValueError, match="differ in length"):
        ResNet(1, 10, widths=(8, 16), blocks=(1,))


def test_metrics_see_every_conv_and_linear_layer_and_no_batch_norm():
    task = get_task(
        "image_resnet",
        {"widths": [4, 8], "blocks": [1, 1], "batch_norm": True, "residual": True},
        {"dataset": "digits", "seed": 0},
    )
    model = task.build_model()
    params = {k: torch.stack([v, 2 * v]) for k, v in model.named_parameters()}  # two "seeds"
    weights, biases = task.metric_tensors(model, params)
    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert len(weights) == len(layers) == 1 + 2 * 2 + 1 + 1  # stem, 2 blocks, projection, fc
    for w, layer in zip(weights, layers, strict=True):
        out_channels = layer.weight.shape[0]
        assert w.shape == (2, out_channels, layer.weight[0].numel())
        torch.testing.assert_close(w[1], 2 * layer.weight.detach().reshape(out_channels, -1))
    assert [b.shape for b in biases] == [(2, 10)]  # fc only: batch norm excluded


def setting(model: dict, augment: dict | None = None, epochs: int = 2) -> dict:
    data = {"dataset": "digits", "seed": 0, "normalize": True}
    if augment:
        data["augment"] = augment
    return {
        "task": "image_resnet" if "widths" in model else "image_mlp",
        "model": model,
        "data": data,
        "optimizer": {"name": "adamw", "lr": 1e-3, "weight_decay": 1.0},
        "training": {
            "epochs": epochs,
            "batch_size": 256,
            "checkpoint_every": 1,
            "checkpoint_unit": "epoch",
            "eval_batch_size": 1024,
            "example_losses": 3,
            "resume_every": 100,
            "log_every_seconds": 60,
        },
    }


SMALL = {"widths": [4, 8], "blocks": [1, 1]}


@pytest.mark.parametrize(
    "model",
    [
        {**SMALL, "batch_norm": True, "residual": True},  # one model per seed (buffers)
        {**SMALL, "batch_norm": False, "residual": False},  # vmapped
    ],
)
def test_a_seed_trains_the_same_alone_or_with_others(model):
    """Batch norm's running statistics and the augmentation stream belong to each seed."""
    config = setting(model, augment={"crop_padding": 1, "flip": True})
    pair = train_seeds(config, [0, 1], device="cpu")
    alone = train_seeds(config, [1], device="cpu")
    assert len(pair) == 2 * 3 and pair[tables.STEP].tolist() == [0, 5, 10] * 2
    columns = [*tables.METRICS, tables.TRAIN_LOSS, tables.EVAL_ACC, "example_loss_0"]
    pd.testing.assert_frame_equal(
        pair[pair[tables.RUN] == 1][columns].reset_index(drop=True),
        alone[columns].reset_index(drop=True),
        rtol=1e-4,
    )
    assert not pair[list(tables.METRICS)].isna().any().any()


def test_mlp_stand_in_learns():
    table = train_seeds(setting({"hidden": [32]}, epochs=6), [0], device="cpu")
    assert table[tables.EVAL_ACC].iloc[0] < 0.3 < 0.6 < table[tables.EVAL_ACC].iloc[-1]
