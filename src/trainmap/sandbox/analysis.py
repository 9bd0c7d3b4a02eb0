"""Loss drops, loss spikes, activation sparsity and ablation summaries (numpy/pandas only).

The rules, stated once here and in the figure captions:

* **Loss drop**: smooth log(train loss) with a centred moving average of ``window``
  epochs; the per-epoch decrease rate is r_t = -(s_t - s_{t-1}). A drop is a maximal run
  of epochs with r_t > ``min_rate`` over which s falls by at least ``min_depth`` in all;
  it starts at the run's first epoch - 1 and ends at its last epoch.
* **Loss spike**: epoch t with train loss >= ``ratio`` x the minimum over the previous
  ``window`` epochs and at least ``min_jump`` above it. Consecutive spike epochs form
  one spike; its *peak* is the largest loss, *before* is the epoch just before the rise.
* **Activation sparsity** at epsilon: share of MLP activations with |a| < epsilon.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from trainmap.errors import TrainmapError


@dataclass(frozen=True)
class Event:
    """An interval of epochs: a loss drop (start, end) or a spike (before, peak)."""

    start: int
    end: int


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) indices of maximal runs of True in ``mask``."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1, strict=True))


def loss_drops(
    loss: np.ndarray, window: int = 5, min_rate: float = 0.01, min_depth: float = 0.2
) -> list[Event]:
    """The loss drops of one curve (``loss[e]`` = train loss after epoch e).

    Parameters
    ----------
    loss
        The train loss per epoch.
    window, min_rate, min_depth
        The rule of the module docstring: smoothing window (epochs), least decrease
        rate of the smoothed log loss per epoch, least total fall of it.
    """
    loss = np.asarray(loss, dtype=float)
    if loss.ndim != 1 or len(loss) < 3:
        raise TrainmapError("sandbox loss_drops: need a 1-D loss curve of at least 3 epochs")
    if not np.all(np.isfinite(loss)):
        return []
    logs = np.log(np.maximum(loss, 1e-12))
    pad = window // 2
    padded = np.pad(logs, pad, mode="edge")
    smooth = np.convolve(padded, np.ones(window) / window, mode="valid")[: len(loss)]
    rate = -np.diff(smooth)
    return [
        Event(int(a), int(b) + 1)
        for a, b in _runs(rate > min_rate)
        if smooth[a] - smooth[b + 1] >= min_depth
    ]


def loss_spikes(
    loss: np.ndarray, window: int = 10, ratio: float = 2.0, min_jump: float = 0.05
) -> list[Event]:
    """The loss spikes of one curve: ``Event(before, peak)`` per spike.

    Parameters
    ----------
    loss
        The train loss per epoch.
    window, ratio, min_jump
        The rule of the module docstring: the loss is at least ``ratio`` times, and
        at least ``min_jump`` above, its minimum over the previous ``window`` epochs.
    """
    loss = np.asarray(loss, dtype=float)
    finite = np.where(np.isfinite(loss), loss, np.inf)
    floor = np.array(
        [finite[max(0, t - window) : t].min() if t else np.inf for t in range(len(loss))]
    )
    spiking = (finite >= ratio * floor) & (finite - floor >= min_jump) & np.isfinite(finite)
    events = []
    for first, last in _runs(spiking):
        peak = first + int(np.argmax(finite[first : last + 1]))
        events.append(Event(max(first - 1, 0), peak))
    return events


def activation_sparsity(activations: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """Share of entries of ``activations`` with |a| < eps, for each eps."""
    magnitudes = np.sort(np.abs(np.asarray(activations, dtype=float)).ravel())
    return np.searchsorted(magnitudes, np.asarray(eps, dtype=float), side="left") / magnitudes.size


@dataclass(frozen=True)
class SparsityGroup:
    """The logs of the jobs of one width d and their runs' sparsity curves (runs, eps)."""

    log: pd.DataFrame
    curves: np.ndarray


def final_rows(log: pd.DataFrame) -> pd.DataFrame:
    """The last logged epoch of every run."""
    return log[log["epoch"] == log["epoch"].max()]


#: Log columns that, with the seed and the length, fix a run: its data, model and optimiser.
RUN_SETTINGS = (
    "seq_len",
    "k",
    "p",
    "n",
    "n_test",
    "disjoint_test",
    "d",
    "hidden",
    "batch_size",
    "lr",
    "mlp_discount",
    "weight_decay",
)


def with_shared_runs(ablation: pd.DataFrame, other: pd.DataFrame, key: str) -> pd.DataFrame:
    """An ablation's logs, with the runs of ``other`` that are its own runs at another
    value of ``key``.

    A seed fixes a run's initial weights, data and batch order, so a run of another
    experiment with the ablation's seed, length and every setting but ``key`` is the run
    the ablation would train at that value, up to floating-point rounding: a batched job
    rounds differently with more members, and over many epochs that can change whether a
    run escapes its saddle. The default config trains the default value's runs once, in
    ``base``, and every grid reads them from there. They are added only when they cover
    every seed of the ablation, so that each value has the same seeds.
    """
    fixed = [c for c in RUN_SETTINGS if c != key]
    if not set(fixed) <= set(ablation.columns) & set(other.columns):
        return ablation  # logs that do not record their settings share nothing
    settings = ablation[fixed].drop_duplicates()
    if len(settings) != 1 or other["epoch"].max() != ablation["epoch"].max():
        return ablation
    shared = other.merge(settings, on=fixed)
    shared = shared[shared["seed"].isin(ablation["seed"]) & ~shared[key].isin(ablation[key])]
    if set(shared["seed"]) != set(ablation["seed"]):
        return ablation
    if "run" in shared:
        shared = shared.assign(run=shared["run"] + ablation["run"].max() + 1)
    return pd.concat([ablation, shared], ignore_index=True)


@dataclass(frozen=True)
class AblationTest:
    """Whether final accuracy depends on an ablated hyperparameter (see ``ablation_test``)."""

    name: str
    statistic: float
    pvalue: float
    unpaired_pvalue: float


def ablation_test(accuracy: pd.DataFrame) -> AblationTest:
    """Test final accuracy (rows: seeds, columns: values) for a dependence on the value.

    The runs are blocked by seed: a seed fixes the initial weights, the data and the
    batch order at every value (the paper's figure 6 design), so a seed that starts well
    succeeds at most values. A Friedman test (a Wilcoxon signed-rank test for two values)
    compares the values within seeds, removing that shared luck; the Kruskal-Wallis
    p-value, which ignores the pairing, comes with it. Every seed's accuracy unchanged
    across the values gives p = 1.
    """
    from scipy.stats import friedmanchisquare, kruskal, wilcoxon

    if accuracy.shape[1] < 2 or len(accuracy) < 2:
        raise TrainmapError(
            f"ablation test: {accuracy.shape[1]} value(s) over {len(accuracy)} seed(s)"
        )
    if (accuracy.nunique(axis=1) == 1).all():
        return AblationTest("none", 0.0, 1.0, 1.0)
    columns = [accuracy[value].to_numpy() for value in accuracy]
    two = len(columns) == 2
    paired = wilcoxon(*columns) if two else friedmanchisquare(*columns)
    unpaired = kruskal(*columns).pvalue if np.ptp(accuracy.to_numpy()) else 1.0
    return AblationTest(
        "Wilcoxon signed-rank" if two else "Friedman",
        float(paired.statistic),
        float(paired.pvalue),
        float(unpaired),
    )


def grid_summary(log: pd.DataFrame, key: str) -> pd.DataFrame:
    """Final test accuracy against hyperparameter ``key``, one row per value.

    Per value: the mean and std over seeds, the number of runs, and the accuracy of
    the lowest seed (``one_seed``, the one-seed curve of figure 6).
    """
    if key not in log:
        raise TrainmapError(f"sandbox grid_summary: log has no column {key!r}")
    last = final_rows(log)
    first_seed = last["seed"].min()
    out = last.groupby(key)["test_acc"].agg(mean="mean", std="std", runs="count")
    out["one_seed"] = last[last["seed"] == first_seed].groupby(key)["test_acc"].mean()
    return out.reset_index()
