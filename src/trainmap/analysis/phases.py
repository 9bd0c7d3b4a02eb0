"""Phases of one run (Hu et al. 2025, blog post): memorisation, generalisation, HMM states.

A grokking run first memorises its train set, then, much later, generalises. The
blog post compares three views of that: the epochs where accuracies cross thresholds
(:func:`phase_events`), the hidden states of the HMM decoded on the run
(:func:`state_phases`), and the sharpest turn of the PCA trajectory against the
fastest drop of the validation loss (:func:`turn_comparison`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainmap.analysis.hmm import STATE
from trainmap.analysis.pca import DROP_EVENT, TURN_EVENT
from trainmap.errors import TrainmapError
from trainmap.tables import EPOCH, EVAL_ACC, RUN, STEP, TRAIN_ACC

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
