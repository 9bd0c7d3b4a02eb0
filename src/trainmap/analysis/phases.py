"""Phases of one run (Hu et al. 2025, blog post): memorisation, generalisation, HMM states.

A grokking run first memorises its train set, then, much later, generalises. The
blog post compares three views of that: the epochs where accuracies cross thresholds
(:func:`phase_events`), the hidden states of the HMM decoded on the run
(:func:`state_phases`), and the sharpest turn of the PCA trajectory against the
fastest drop of the validation loss (:func:`turn_comparison`).

The fidelity report tests the blog's two claims against chance over every run of the
setting, not one run: the turn falls inside the generalisation window
(:func:`turn_tests`), and the states change at memorisation and at generalisation
and form three phases (:func:`phase_tests`).
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from scipy.special import comb

from trainmap.analysis.hmm import STATE
from trainmap.analysis.pca import (
    DROP_EVENT,
    TURN_EVENT,
    example_losses,
    loss_pca,
    sharpest_turn,
    turning_angles,
)
from trainmap.errors import TrainmapError
from trainmap.tables import DIVERGED, EPOCH, EVAL_ACC, RUN, STEP, TRAIN_ACC

#: The events of :func:`phase_events` (column ``event``), in order.
MEMORISED, GENERALISING, GENERALISED = "memorised", "generalisation starts", "generalised"


def event_epochs(events: pd.DataFrame) -> dict[str, float]:
    """Epoch of each event of an events table (columns ``event`` and ``epoch``)."""
    return dict(zip(events["event"], events[EPOCH], strict=True))


def run_states(states: pd.DataFrame, rows: pd.DataFrame, run: int) -> pd.DataFrame:
    """The run's curve rows with the decoded ``state`` of each checkpoint joined on step.

    Parameters
    ----------
    states
        The decoded states of the HMM fit (columns ``run``, ``step``, ``state``).
    rows
        One run's rows of the metrics table.
    run
        The run they belong to.
    """
    if STATE not in states.columns:
        raise TrainmapError(f"the decoded states lack column {STATE!r}; they have {list(states)}")
    decoded = states.loc[states[RUN] == run, [STEP, STATE]]
    if decoded.empty:
        raise TrainmapError(
            f"run {run} has no decoded states (dropped from the HMM fit?); pick another blog.run"
        )
    joined = rows.merge(decoded, on=STEP, how="inner", validate="one_to_one")
    if len(joined) != len(rows):
        raise TrainmapError(
            f"run {run}: {len(rows) - len(joined)} checkpoint(s) of the metrics table "
            "have no decoded state; rebuild the HMM"
        )
    return joined


def segments(curve: pd.DataFrame) -> pd.DataFrame:
    """Contiguous stretches of one state: state, first and last epoch, checkpoints.

    ``curve`` is one run's rows (sorted by step) with a ``state`` column.
    """
    block = (curve[STATE] != curve[STATE].shift()).cumsum()
    grouped = curve.groupby(block)
    return pd.DataFrame(
        {
            STATE: grouped[STATE].first().to_numpy(),
            "first_epoch": grouped[EPOCH].first().to_numpy(),
            "last_epoch": grouped[EPOCH].last().to_numpy(),
            "checkpoints": grouped.size().to_numpy(),
        }
    )


def first_epoch(rows: pd.DataFrame, column: str, threshold: float) -> float:
    """The first epoch where ``column`` reaches ``threshold`` (NaN if never)."""
    reached = rows.loc[rows[column] >= threshold, EPOCH]
    return float(reached.iloc[0]) if len(reached) else float("nan")


def phase_events(
    rows: pd.DataFrame, memorised_acc: float, generalising_acc: float, converged_acc: float
) -> pd.DataFrame:
    """Memorisation and generalisation of one run as epochs: ``event``, ``epoch``, ``rule``.

    Parameters
    ----------
    rows
        One run's rows of the metrics table, sorted by step.
    memorised_acc
        Train accuracy at which the run has memorised its train set.
    generalising_acc
        Validation accuracy at which generalisation has started.
    converged_acc
        Validation accuracy at which the run has generalised (the setting's
        convergence threshold).
    """
    return pd.DataFrame(
        [
            (
                MEMORISED,
                first_epoch(rows, TRAIN_ACC, memorised_acc),
                f"train accuracy first ≥ {memorised_acc:g}",
            ),
            (
                GENERALISING,
                first_epoch(rows, EVAL_ACC, generalising_acc),
                f"validation accuracy first ≥ {generalising_acc:g}",
            ),
            (
                GENERALISED,
                first_epoch(rows, EVAL_ACC, converged_acc),
                f"validation accuracy first ≥ {converged_acc:g} (convergence threshold)",
            ),
        ],
        columns=["event", EPOCH, "rule"],
    )


def phase_of(epochs: pd.Series, events: pd.DataFrame) -> pd.Series:
    """Grokking phase of each epoch: before memorised, before generalised, after."""
    at = event_epochs(events)
    memorised = np.nan_to_num(at[MEMORISED], nan=np.inf)
    generalised = np.nan_to_num(at[GENERALISED], nan=np.inf)
    return pd.Series(
        np.where(
            epochs < memorised,
            "memorisation",
            np.where(epochs < generalised, "generalisation", "convergence"),
        ),
        index=epochs.index,
    )


def state_phases(curve: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Per state visited by the run: first and last epoch, visits, and the phases it covers."""
    phases = phase_of(curve[EPOCH], events)
    visits = segments(curve).groupby(STATE).size()
    share = pd.crosstab(curve[STATE], phases, normalize="index")
    table = curve.groupby(STATE).agg(
        first_epoch=(EPOCH, "first"),
        last_epoch=(EPOCH, "last"),
        checkpoints=(EPOCH, "size"),
        train_acc_first=(TRAIN_ACC, "first"),
        train_acc_last=(TRAIN_ACC, "last"),
        eval_acc_first=(EVAL_ACC, "first"),
        eval_acc_last=(EVAL_ACC, "last"),
    )
    table["visits"] = visits
    table["phases"] = [
        ", ".join(f"{p} {share.loc[s, p]:.0%}" for p in share.columns if share.loc[s, p] > 0)
        for s in table.index
    ]
    return table.sort_values("first_epoch").reset_index()


def turn_comparison(pca_events: pd.DataFrame, span: float, tolerance: float) -> pd.DataFrame:
    """The turn and the fastest drop side by side, with the gap and whether they coincide.

    Parameters
    ----------
    pca_events
        The events of :func:`trainmap.analysis.pca.run_trajectory`.
    span
        The run's length in epochs.
    tolerance
        The largest gap, as a share of ``span``, at which the two coincide.
    """
    at = event_epochs(pca_events)
    gap = at[TURN_EVENT] - at[DROP_EVENT]
    return pd.DataFrame(
        {
            "turn_epoch": [at[TURN_EVENT]],
            "fastest_drop_epoch": [at[DROP_EVENT]],
            "gap_epochs": [gap],
            "tolerance_epochs": [tolerance * span],
            "coincide": [bool(abs(gap) <= tolerance * span)],
        }
    )


# ---- against chance, over every run of a setting ---------------------------------------
#
# Each test below asks of every run whether an event falls where the blog post says
# (a "hit"), and of each run the chance of a hit if the event were placed at random
# (``chance``). The statistic is the number of runs that hit; under the null the runs
# hit independently with their own chances, so the count is Poisson-binomial and its
# upper tail is the exact p-value (:func:`chance_pvalue`).


def chance_pvalue(hits: np.ndarray, chances: np.ndarray) -> float:
    """P(at least ``hits.sum()`` hits) when run i hits with probability ``chances[i]``.

    The exact upper tail of the Poisson-binomial distribution (a convolution over runs);
    1.0 for no runs.
    """
    hits = np.asarray(hits, dtype=bool)
    chances = np.clip(np.asarray(chances, dtype=float), 0.0, 1.0)
    if hits.shape != chances.shape:
        raise TrainmapError(f"chance test: {hits.shape} hits for {chances.shape} chances")
    counts = np.array([1.0])
    for p in chances:
        counts = np.append(counts * (1 - p), 0.0) + np.append(0.0, counts * p)
    return float(min(1.0, counts[int(hits.sum()) :].sum()))


def _window(positions: np.ndarray, centre: float, tolerance: int) -> np.ndarray:
    """Which ``positions`` lie within ``tolerance`` of ``centre`` (none if it is NaN)."""
    if not np.isfinite(centre):
        return np.zeros(len(positions), dtype=bool)
    return np.abs(positions - centre) <= tolerance


def chance_all_hit(slots: int, changes: int, windows: list[np.ndarray]) -> float:
    """Chance that ``changes`` slots drawn at random without replacement from ``slots``
    hit every window (boolean masks over the slots), by inclusion-exclusion."""
    total = comb(slots, changes, exact=True)
    if changes == 0 or total == 0:
        return 0.0
    chance = 0.0
    for size in range(len(windows) + 1):
        for missed in combinations(windows, size):
            covered = np.logical_or.reduce(missed) if missed else np.zeros(slots, dtype=bool)
            chance += (-1) ** size * comb(slots - int(covered.sum()), changes, exact=True) / total
    return float(chance)


def change_point_hits(
    states: np.ndarray, memorised: int | None, generalised: int | None, tolerance: int
) -> tuple[bool, float, np.ndarray]:
    """Does one run's state sequence change near memorisation and near generalisation?

    Parameters
    ----------
    states
        The run's decoded state at each checkpoint, in order.
    memorised, generalised
        The checkpoint (index) of each event, None if the run never reaches it.
    tolerance
        A change at checkpoint t (``states[t] != states[t - 1]``) meets an event at
        checkpoint e when ``|t - e| <= tolerance``.

    Returns
    -------
    hit, chance, changes
        Whether a change meets each event; the chance of that with the run's number of
        changes placed at random among its ``len(states) - 1`` slots; the change
        checkpoints.
    """
    states = np.asarray(states)
    slots = np.arange(1, len(states))
    changes = slots[states[1:] != states[:-1]]
    if memorised is None or generalised is None:
        return False, 0.0, changes
    windows = [_window(slots, float(e), tolerance) for e in (memorised, generalised)]
    hit = all(w[changes - 1].any() for w in windows)
    return hit, chance_all_hit(len(slots), len(changes), windows), changes


def three_phase_hits(
    states: np.ndarray, memorised: int | None, generalised: int | None
) -> tuple[bool, float]:
    """Do the three phases of one run have three different states?

    The three-phase structure: the most frequent state before memorisation, between
    memorisation and generalisation, and from generalisation on are three different
    states (the first in state order wins a tie). The chance is the share of all
    boundary pairs ``0 < i < j < len(states)`` that give three different states: the
    same statement with the memorisation and generalisation checkpoints placed at
    random.
    """
    states = np.asarray(states)
    n = len(states)
    if memorised is None or generalised is None or not 0 < memorised < generalised < n:
        return False, 0.0
    k = int(states.max()) + 1
    counts = np.vstack([np.zeros(k), np.cumsum(np.eye(k)[states], axis=0)])
    i, j = np.triu_indices(n, k=1)
    keep = i > 0
    i, j = i[keep], j[keep]
    first = np.argmax(counts[i], axis=1)
    middle = np.argmax(counts[j] - counts[i], axis=1)
    last = np.argmax(counts[n] - counts[j], axis=1)
    distinct = (first != middle) & (middle != last) & (first != last)
    hit = bool(distinct[(i == memorised) & (j == generalised)][0])
    return hit, float(distinct.mean())


def turn_hits(
    eligible: np.ndarray, turn: int, start: int | None, end: int | None
) -> tuple[bool, float]:
    """Does one run's PCA turn fall inside its generalisation window?

    The window runs from the checkpoint where generalisation starts to the one where the
    run has generalised, both included. The chance is the share of the checkpoints
    where a turn is defined (``eligible``, a boolean mask) that lie in the window: a turn
    placed at random among them.
    """
    if start is None or end is None:
        return False, 0.0
    inside = np.zeros(len(eligible), dtype=bool)
    inside[start : end + 1] = True
    return bool(inside[turn]), float(inside[eligible].sum() / max(eligible.sum(), 1))


def first_checkpoint(values: np.ndarray, threshold: float) -> int | None:
    """Index of the first value at or above ``threshold`` (None if never)."""
    reached = np.flatnonzero(np.asarray(values) >= threshold)
    return int(reached[0]) if len(reached) else None


def _epoch_at(epochs: np.ndarray, index: int | None) -> float:
    return float(epochs[index]) if index is not None else float("nan")


def phase_tests(
    states: pd.DataFrame,
    metrics: pd.DataFrame,
    memorised_acc: float,
    converged_acc: float,
    tolerance: int,
) -> pd.DataFrame:
    """Per run of a setting: do its HMM states change at memorisation and generalisation,
    and do its three phases have three different states? With each chance.

    Memorisation is the first checkpoint with train accuracy ≥ ``memorised_acc``;
    generalisation the first with validation accuracy ≥ ``converged_acc`` (the
    setting's convergence threshold). Columns: ``run``, ``checkpoints``, ``changes``,
    ``memorised``, ``generalised`` (epochs), ``change_hit``, ``change_chance``
    (:func:`change_point_hits`), ``three_phase_hit``, ``three_phase_chance``
    (:func:`three_phase_hits`). Runs without decoded states (diverged) are left out.
    """
    rows = []
    decoded = states[[RUN, STEP, STATE]]
    for run, curve in metrics.sort_values([RUN, STEP], kind="stable").groupby(RUN, sort=True):
        joined = curve.merge(decoded[decoded[RUN] == run], on=[RUN, STEP], how="inner")
        if joined.empty:
            continue
        sequence = joined[STATE].to_numpy()
        epochs = joined[EPOCH].to_numpy(dtype=float)
        memorised = first_checkpoint(joined[TRAIN_ACC].to_numpy(), memorised_acc)
        generalised = first_checkpoint(joined[EVAL_ACC].to_numpy(), converged_acc)
        change_hit, change_chance, changes = change_point_hits(
            sequence, memorised, generalised, tolerance
        )
        phase_hit, phase_chance = three_phase_hits(sequence, memorised, generalised)
        rows.append(
            {
                RUN: run,
                "checkpoints": len(sequence),
                "changes": len(changes),
                "memorised": _epoch_at(epochs, memorised),
                "generalised": _epoch_at(epochs, generalised),
                "change_hit": change_hit,
                "change_chance": change_chance,
                "three_phase_hit": phase_hit,
                "three_phase_chance": phase_chance,
            }
        )
    return pd.DataFrame(rows)


def turn_tests(
    table: pd.DataFrame,
    examples: int,
    window: int,
    min_step: float,
    generalising_acc: float,
    converged_acc: float,
    source: str = "metrics table",
) -> pd.DataFrame:
    """Per run of a setting: does the sharpest turn of its PCA trajectory fall inside its
    generalisation window? With the chance of a turn placed at random.

    Each run gets its own PCA, as the blog's run does
    (:func:`trainmap.analysis.pca.sharpest_turn`). The generalisation window runs
    from the first checkpoint with validation accuracy ≥ ``generalising_acc``
    (generalisation starts) to the first with validation accuracy ≥ ``converged_acc``
    (generalised), both included; a run that never reaches either has no window and
    cannot hit. Diverged runs are left out. Columns: ``run``, ``turn``,
    ``generalisation_starts``, ``generalised`` (epochs), ``hit``, ``chance``
    (:func:`turn_hits`).
    """
    rows = []
    for run, curve in table.sort_values([RUN, STEP], kind="stable").groupby(RUN, sort=True):
        if DIVERGED in curve and curve[DIVERGED].any():
            continue
        points = loss_pca(example_losses(curve, examples, source), 2).coordinates
        eligible = np.isfinite(turning_angles(points, window, min_step))
        if not eligible.any():
            continue
        turn = sharpest_turn(points, window, min_step)
        accuracy = curve[EVAL_ACC].to_numpy()
        start = first_checkpoint(accuracy, generalising_acc)
        end = first_checkpoint(accuracy, converged_acc)
        hit, chance = turn_hits(eligible, turn, start, end)
        epochs = curve[EPOCH].to_numpy(dtype=float)
        rows.append(
            {
                RUN: run,
                "turn": epochs[turn],
                "generalisation_starts": _epoch_at(epochs, start),
                "generalised": _epoch_at(epochs, end),
                "hit": hit,
                "chance": chance,
            }
        )
    return pd.DataFrame(rows)
