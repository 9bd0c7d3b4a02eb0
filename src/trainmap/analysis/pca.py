"""PCA of per-example losses along one training run (Hu et al. 2025, blog post).

At every checkpoint the losses on a fixed subset of ``n`` validation examples
form an ``n``-vector: a cheap fingerprint of the function the network
implements. PCA over the sequence of vectors gives a low-dimensional
trajectory; where the trajectory turns, the network has started to learn a
different part of the data. The blog post claims that for grokking the turn
coincides with the sharp drop of the validation loss.

Two definitions make that claim testable:

* **Turn** (:func:`turning_angles`). With ``p_t`` the 2-D trajectory and a
  window of ``w`` checkpoints, the direction coming in is ``p_t - p_{t-w}`` and
  the direction going out is ``p_{t+w} - p_t``; the turning angle at ``t`` is
  the angle between them (0 = straight on, 180 degrees = reversal). Using
  displacements over ``w`` checkpoints is the same as smoothing the velocity
  with a box filter of width ``w``. Where either displacement is shorter than
  ``min_step`` times the trajectory's extent (the norm of its bounding box)
  the angle is undefined (NaN): a converged run jitters in place, and the
  direction of a jitter is noise. The turn is the checkpoint of the largest
  defined angle. Around a reversal several checkpoints within ``w`` of the
  apex see (nearly) the same angle; among angles within ``TIE_DEGREES`` of the
  largest, the turn is the one whose shorter displacement is longest: the
  apex, where the trajectory moves away fastest on both sides.
* **Fastest drop** (:func:`fastest_drop`). The slope of the validation loss per
  epoch over the same window, ``(L_{t+w} - L_{t-w}) / (e_{t+w} - e_{t-w})``;
  the fastest drop is the checkpoint of the most negative slope.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

from trainmap.errors import TrainmapError
from trainmap.tables import (
    DIVERGED,
    EPOCH,
    EVAL_ACC,
    EVAL_LOSS,
    RUN,
    STEP,
    TRAIN_ACC,
    TRAIN_LOSS,
    example_loss_columns,
)

#: The two events of :func:`run_trajectory` (column ``event``).
TURN_EVENT, DROP_EVENT = "sharpest PCA turn", "fastest validation-loss drop"
#: Columns carried from the metrics table into the trajectory table.
CURVE_COLUMNS: tuple[str, ...] = (STEP, EPOCH, TRAIN_LOSS, TRAIN_ACC, EVAL_LOSS, EVAL_ACC)


def run_rows(table: pd.DataFrame, run: int, source: str = "metrics table") -> pd.DataFrame:
    """The rows of one run, sorted by step; a diverged or missing run is an error."""
    rows = table[table[RUN] == run].sort_values(STEP, kind="stable").reset_index(drop=True)
    if rows.empty:
        runs = sorted(table[RUN].unique().tolist())
        raise TrainmapError(f"run {run} is not in {source} (runs there: {runs})")
    if DIVERGED in rows and rows[DIVERGED].any():
        raise TrainmapError(f"run {run} of {source} diverged; pick another run (config blog.run)")
    return rows


def example_losses(rows: pd.DataFrame, examples: int, source: str = "metrics table") -> np.ndarray:
    """The ``(checkpoints, examples)`` matrix of the first ``examples`` per-example losses."""
    columns = example_loss_columns(rows)
    if len(columns) < examples:
        raise TrainmapError(
            f"{source} has {len(columns)} example_loss_<i> column(s), "
            f"config blog.examples asks for {examples}"
        )
    losses = rows[columns[:examples]].to_numpy(dtype=np.float64)
    if not np.isfinite(losses).all():
        raise TrainmapError(f"{source} has non-finite per-example losses")
    return losses


@dataclass
class LossTrajectory:
    """The PCA of one run's per-example loss vectors.

    Attributes:
        coordinates: ``(checkpoints, components)`` projections onto the components.
        explained_variance_ratio: fraction of the total variance per component.
    """

    coordinates: np.ndarray
    explained_variance_ratio: np.ndarray


def loss_pca(losses: np.ndarray, components: int) -> LossTrajectory:
    """PCA (centred, unscaled: all columns are losses in nats) of ``(checkpoints, n)`` losses."""
    components = min(components, *losses.shape)
    pca = PCA(n_components=components, svd_solver="full")
    coordinates = pca.fit_transform(losses)
    return LossTrajectory(coordinates, pca.explained_variance_ratio_)


def _check_window(length: int, window: int) -> None:
    if window < 1 or length < 2 * window + 1:
        raise TrainmapError(
            f"config blog.turn_window = {window} needs 1 <= window and "
            f"at least {2 * window + 1} checkpoints; the run has {length}"
        )


#: Angles this close (degrees) to the largest count as ties in :func:`sharpest_turn`.
TIE_DEGREES = 0.5


def _legs(points: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Displacements into and out of each inner point over ``window`` checkpoints."""
    inner = slice(window, len(points) - window)
    return points[inner] - points[: len(points) - 2 * window], points[2 * window :] - points[inner]


def turning_angles(points: np.ndarray, window: int, min_step: float) -> np.ndarray:
    """Turning angle in degrees at each point of a 2-D trajectory (NaN where undefined).

    See the module docstring; the first and last ``window`` points are NaN.
    """
    _check_window(len(points), window)
    extent = float(np.linalg.norm(np.ptp(points, axis=0)))
    angles = np.full(len(points), np.nan)
    inner = slice(window, len(points) - window)
    incoming, outgoing = _legs(points, window)
    norm_in = np.linalg.norm(incoming, axis=1)
    norm_out = np.linalg.norm(outgoing, axis=1)
    defined = np.minimum(norm_in, norm_out) > min_step * extent
    with np.errstate(invalid="ignore", divide="ignore"):
        cosine = np.einsum("ij,ij->i", incoming, outgoing) / (norm_in * norm_out)
    inner_angles = np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))
    angles[inner] = np.where(defined, inner_angles, np.nan)
    return angles


def loss_slopes(epochs: np.ndarray, loss: np.ndarray, window: int) -> np.ndarray:
    """Central-difference slope of ``loss`` per epoch over ``window`` checkpoints each side."""
    _check_window(len(loss), window)
    slopes = np.full(len(loss), np.nan)
    span = epochs[2 * window :] - epochs[: len(epochs) - 2 * window]
    slopes[window : len(loss) - window] = (
        loss[2 * window :] - loss[: len(loss) - 2 * window]
    ) / span
    return slopes


def fastest_drop(epochs: np.ndarray, loss: np.ndarray, window: int) -> int | None:
    """Index of the checkpoint where ``loss`` falls fastest per epoch (None if it never falls)."""
    slopes = loss_slopes(epochs, loss, window)
    drop = int(np.nanargmin(slopes))
    return drop if slopes[drop] < 0 else None


def sharpest_turn(points: np.ndarray, window: int, min_step: float) -> int:
    """Index of the checkpoint where the 2-D trajectory turns most sharply."""
    angles = turning_angles(points, window, min_step)
    if np.isnan(angles).all():
        raise TrainmapError(
            "the PCA trajectory never moves more than config blog.turn_min_step "
            f"= {min_step} of its extent within blog.turn_window = {window} checkpoints"
        )
    ties = np.flatnonzero(angles >= np.nanmax(angles) - TIE_DEGREES)
    incoming, outgoing = _legs(points, window)
    shorter_leg = np.minimum(np.linalg.norm(incoming, axis=1), np.linalg.norm(outgoing, axis=1))
    return int(ties[np.argmax(shorter_leg[ties - window])])


def run_trajectory(
    table: pd.DataFrame,
    run: int,
    examples: int,
    components: int,
    window: int,
    min_step: float,
    source: str = "metrics table",
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """PCA of one run's per-example losses, with its turn and fastest validation-loss drop.

    Returns:
        trajectory: one row per checkpoint: step, epoch, losses and accuracies,
            ``subset_loss`` (mean over the subset), ``pc1..pcm``, ``turning_angle``
            (degrees) and ``eval_loss_slope`` (per epoch).
        variance: ``component``, ``explained_variance_ratio``, ``cumulative``.
        events: the turn and the fastest drop: ``event``, ``step``, ``epoch``,
            ``checkpoint`` (index in the run), ``value`` (angle in degrees or slope
            per epoch); the drop's row is NaN if the validation loss never falls.
    """
    rows = run_rows(table, run, source)
    missing = [c for c in CURVE_COLUMNS if c not in rows]
    if missing:
        raise TrainmapError(f"{source} lacks column(s) {missing}")
    losses = example_losses(rows, examples, source)
    pca = loss_pca(losses, components)
    if pca.coordinates.shape[1] < 2:
        raise TrainmapError(f"{source}: PCA needs at least 2 checkpoints and 2 examples")
    epochs = rows[EPOCH].to_numpy(dtype=np.float64)
    eval_loss = rows[EVAL_LOSS].to_numpy(dtype=np.float64)

    trajectory = rows[list(CURVE_COLUMNS)].copy()
    trajectory.insert(0, RUN, run)
    trajectory["subset_loss"] = losses.mean(axis=1)
    for i in range(pca.coordinates.shape[1]):
        trajectory[f"pc{i + 1}"] = pca.coordinates[:, i]
    angles = turning_angles(pca.coordinates[:, :2], window, min_step)
    slopes = loss_slopes(epochs, eval_loss, window)
    trajectory["turning_angle"] = angles
    trajectory["eval_loss_slope"] = slopes

    variance = _variance_table(pca.explained_variance_ratio)
    events = _event_table(
        rows, epochs, eval_loss, pca.coordinates[:, :2], angles, slopes, window, min_step
    )
    return trajectory, variance, events


def _variance_table(ratio: np.ndarray) -> pd.DataFrame:
    """Explained variance ratio per component, and cumulated."""
    return pd.DataFrame(
        {
            "component": np.arange(1, len(ratio) + 1),
            "explained_variance_ratio": ratio,
            "cumulative": np.cumsum(ratio),
        }
    )


def _event_table(
    rows: pd.DataFrame,
    epochs: np.ndarray,
    eval_loss: np.ndarray,
    points: np.ndarray,
    angles: np.ndarray,
    slopes: np.ndarray,
    window: int,
    min_step: float,
) -> pd.DataFrame:
    """The turn of the trajectory ``points`` and the fastest drop, one row each."""
    turn = sharpest_turn(points, window, min_step)
    drop = fastest_drop(epochs, eval_loss, window)
    at = [turn, turn if drop is None else drop]
    events = pd.DataFrame(
        {
            "event": [TURN_EVENT, DROP_EVENT],
            STEP: rows[STEP].to_numpy()[at],
            EPOCH: epochs[at],
            "checkpoint": at,
            "value": [angles[turn], slopes[at[1]]],
        }
    )
    if drop is None:  # the validation loss never falls: no drop to compare with
        events.loc[1, [STEP, EPOCH, "checkpoint", "value"]] = np.nan
    return events
