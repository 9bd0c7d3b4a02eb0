"""PCA of per-example losses, the turn and the fastest validation-loss drop.

The synthetic runs learn two halves of the data at different times, as in the
blog post's thought experiment: the loss vectors then span two directions, so
PCA must find two dominant components and the trajectory must turn where the
network switches from one half to the other.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trainmap.analysis.pca import (
    fastest_drop,
    loss_pca,
    run_trajectory,
    sharpest_turn,
    turning_angles,
)
from trainmap.errors import TrainmapError
from trainmap.tables import METRICS


def ramp(epochs: np.ndarray, start: float, end: float) -> np.ndarray:
    """1 before ``start``, falling linearly to 0 at ``end``, 0 after."""
    return np.clip((end - epochs) / (end - start), 0.0, 1.0)


def sigmoid_drop(epochs: np.ndarray, centre: float, width: float) -> np.ndarray:
    """1 long before ``centre``, 0 long after, steepest at ``centre``."""
    return 1.0 / (1.0 + np.exp((epochs - centre) / width))


def two_halves_table(
    progress_a: np.ndarray,
    progress_b: np.ndarray,
    epochs: np.ndarray,
    examples: int = 40,
    noise: float = 0.01,
    run: int = 0,
    seed: int = 0,
) -> pd.DataFrame:
    """A metrics table of one run learning half A by ``progress_a``, half B by ``progress_b``.

    Every column of the metrics contract is there; example i's loss is
    ``scale_i * progress(t) * 4 + noise``, so the loss vectors span two directions.
    """
    rng = np.random.default_rng(seed)
    half = examples // 2
    scale = rng.uniform(0.8, 1.2, examples)
    progress = np.concatenate(
        [
            np.repeat(progress_a[:, None], half, 1),
            np.repeat(progress_b[:, None], examples - half, 1),
        ],
        axis=1,
    )
    losses = 4.0 * progress * scale + noise * rng.standard_normal(progress.shape)
    losses = np.abs(losses)
    table = pd.DataFrame(
        {
            "run": run,
            "step": np.arange(len(epochs)) * 10,
            "epoch": epochs.astype(float),
            **{m: rng.standard_normal(len(epochs)) for m in METRICS},
            "train_loss": 4.0 * progress_a,
            "train_acc": 1.0 - progress_a,
            "eval_loss": losses.mean(axis=1),
            "eval_acc": 1.0 - progress.mean(axis=1),
            "diverged": False,
        }
    )
    for i in range(examples):
        table[f"example_loss_{i}"] = losses[:, i].astype(np.float32)
    return table


EPOCHS = np.arange(301.0)


@pytest.mark.parametrize("switch", [80, 150])
def test_two_halves_in_turn_give_two_components_and_the_turn_at_the_switch(switch):
    # Half A is learned until the switch, half B from the switch to epoch 200,
    # then nothing moves.
    table = two_halves_table(ramp(EPOCHS, 0, switch), ramp(EPOCHS, switch, 200), EPOCHS)
    trajectory, variance, events = run_trajectory(
        table, run=0, examples=40, components=5, window=5, min_step=0.01
    )
    ratio = variance["explained_variance_ratio"].to_numpy()
    assert ratio[:2].sum() > 0.99
    assert ratio[1] > 0.1  # the second half is a real direction, not noise
    assert ratio[2] < 0.005
    turn = events.set_index("event").loc["sharpest PCA turn"]
    assert turn["epoch"] == switch
    # The two directions are orthogonal in example space; PCA keeps that angle.
    assert turn["value"] == pytest.approx(90, abs=3)
    # The jitter after epoch 200 is not a turn.
    assert np.isnan(trajectory.loc[trajectory["epoch"] > 210, "turning_angle"]).all()


def test_overlapping_halves_turn_between_the_two_learning_times():
    # A is learned around epoch 100, B around epoch 160: the trajectory bends
    # from A's direction to B's halfway, where both are learned equally fast.
    table = two_halves_table(sigmoid_drop(EPOCHS, 100, 15), sigmoid_drop(EPOCHS, 160, 15), EPOCHS)
    _, variance, events = run_trajectory(
        table, run=0, examples=40, components=3, window=10, min_step=0.01
    )
    assert variance["explained_variance_ratio"].iloc[:2].sum() > 0.99
    assert events.set_index("event").loc["sharpest PCA turn", "epoch"] == pytest.approx(130, abs=6)


def test_explained_variance_agrees_with_numpy_svd():
    rng = np.random.default_rng(1)
    losses = rng.gamma(2.0, size=(50, 12)) @ rng.standard_normal((12, 12))
    pca = loss_pca(losses, components=12)
    singular = np.linalg.svd(losses - losses.mean(axis=0), compute_uv=False)
    np.testing.assert_allclose(pca.explained_variance_ratio, singular**2 / (singular**2).sum())
    # Projections onto all components keep the distances between checkpoints.
    d_pca = np.linalg.norm(pca.coordinates[0] - pca.coordinates[7])
    assert d_pca == pytest.approx(np.linalg.norm(losses[0] - losses[7]))


@pytest.mark.parametrize(
    ("second_leg", "angle"),
    [((1.0, 0.0), 0.0), ((0.0, 1.0), 90.0), ((-1.0, 1.0), 135.0), ((-1.0, 0.0), 180.0)],
)
def test_turning_angle_of_a_corner(second_leg, angle):
    t = np.arange(11.0)[:, None]
    leg_one = t * np.array([1.0, 0.0])
    leg_two = leg_one[-1] + t[1:] * np.array(second_leg)
    points = np.vstack([leg_one, leg_two])
    angles = turning_angles(points, window=3, min_step=0.01)
    assert angles[10] == pytest.approx(angle)
    assert np.isnan(angles[:3]).all() and np.isnan(angles[-3:]).all()
    if angle > 0:
        assert sharpest_turn(points, window=3, min_step=0.01) == 10


def test_fastest_drop_of_a_sigmoid_with_uneven_checkpoints():
    epochs = np.concatenate([np.arange(0.0, 100.0, 1.0), np.arange(100.0, 400.0, 3.0)])
    loss = 5.0 * sigmoid_drop(epochs, 217.0, 8.0) + 0.1
    assert epochs[fastest_drop(epochs, loss, window=2)] == pytest.approx(217.0, abs=3)
    # A loss that only rises has no drop.
    assert fastest_drop(epochs, 1.0 + np.square(epochs / 400.0), window=2) is None


def test_a_validation_loss_that_never_falls_has_no_drop():
    table = two_halves_table(ramp(EPOCHS, 0, 100), ramp(EPOCHS, 100, 200), EPOCHS, examples=8)
    table["eval_loss"] = 1.0 + table["epoch"] / 100.0
    _, _, events = run_trajectory(table, run=0, examples=8, components=2, window=3, min_step=0.01)
    drop = events.set_index("event").loc["fastest validation-loss drop"]
    assert np.isnan(drop["epoch"]) and np.isnan(drop["value"])
    assert events.set_index("event").loc["sharpest PCA turn", "epoch"] == 100


def test_bad_input_names_the_config_key_or_run():
    table = two_halves_table(ramp(EPOCHS, 0, 100), ramp(EPOCHS, 100, 200), EPOCHS, examples=8)
    with pytest.raises(TrainmapError, match="blog.examples asks for 9"):
        run_trajectory(table, run=0, examples=9, components=2, window=2, min_step=0.01)
    with pytest.raises(TrainmapError, match="run 3 is not in"):
        run_trajectory(table, run=3, examples=8, components=2, window=2, min_step=0.01)
    with pytest.raises(TrainmapError, match="blog.turn_window"):
        run_trajectory(table.head(10), run=0, examples=8, components=2, window=5, min_step=0.01)
    table.loc[table["epoch"] > 250, "diverged"] = True
    with pytest.raises(TrainmapError, match="run 0 .* diverged"):
        run_trajectory(table, run=0, examples=8, components=2, window=2, min_step=0.01)
