"""Phases of one run on curves with a known answer: when it memorises and generalises,
which states cover which phases, and whether the PCA turn meets the loss drop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trainmap.analysis.pca import DROP_EVENT, TURN_EVENT
from trainmap.analysis.phases import (
    GENERALISED,
    GENERALISING,
    MEMORISED,
    event_epochs,
    phase_events,
    segments,
    state_phases,
    turn_comparison,
)

EPOCHS = np.arange(0.0, 100.0)


def grokking_rows(memorised: float, starts: float, generalised: float) -> pd.DataFrame:
    """Accuracies that step up at the given epochs (train to 1, validation 0.05 -> 0.5 -> 1)."""
    return pd.DataFrame(
        {
            "step": np.arange(len(EPOCHS)),
            "epoch": EPOCHS,
            "train_acc": np.where(EPOCHS >= memorised, 1.0, 0.3),
            "eval_acc": np.select([EPOCHS >= generalised, EPOCHS >= starts], [1.0, 0.5], 0.05),
        }
    )


def test_phase_events_are_the_first_epochs_past_each_threshold():
    events = phase_events(grokking_rows(10, 40, 70), 0.99, 0.1, 0.95)
    assert event_epochs(events) == {MEMORISED: 10, GENERALISING: 40, GENERALISED: 70}


def test_a_run_that_never_generalises_has_no_generalised_epoch():
    events = phase_events(grokking_rows(10, 40, 1000), 0.99, 0.1, 0.95)
    at = event_epochs(events)
    assert at[GENERALISING] == 40 and np.isnan(at[GENERALISED])


def test_states_aligned_with_the_phases_cover_one_phase_each():
    rows = grokking_rows(10, 40, 70)
    events = phase_events(rows, 0.99, 0.1, 0.95)
    curve = rows.assign(state=np.digitize(EPOCHS, [10, 70]))
    table = state_phases(curve, events).set_index("state")
    assert table["phases"].to_dict() == {
        0: "memorisation 100%",
        1: "generalisation 100%",
        2: "convergence 100%",
    }
    assert (table["visits"] == 1).all()
    assert table["checkpoints"].sum() == len(rows)


def test_segments_count_each_return_to_a_state():
    curve = pd.DataFrame({"epoch": EPOCHS[:6], "state": [0, 0, 1, 0, 0, 2]})
    spans = segments(curve)
    assert spans["state"].tolist() == [0, 1, 0, 2]
    assert spans["checkpoints"].sum() == len(curve)
    assert (
        state_phases(
            curve.assign(train_acc=0.0, eval_acc=0.0),
            phase_events(curve.assign(train_acc=0.0, eval_acc=0.0), 0.99, 0.1, 0.95),
        )
        .set_index("state")
        .loc[0, "visits"]
        == 2
    )


@pytest.mark.parametrize(("drop", "coincide"), [(52.0, True), (80.0, False)])
def test_turn_and_drop_coincide_within_the_tolerance(drop, coincide):
    pca_events = pd.DataFrame({"event": [TURN_EVENT, DROP_EVENT], "epoch": [50.0, drop]})
    comparison = turn_comparison(pca_events, span=100, tolerance=0.05).iloc[0]
    assert comparison["gap_epochs"] == 50 - drop
    assert comparison["coincide"] == coincide
