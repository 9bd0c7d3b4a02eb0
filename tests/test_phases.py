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
    chance_all_hit,
    chance_pvalue,
    change_point_hits,
    event_epochs,
    phase_events,
    segments,
    state_phases,
    three_phase_hits,
    turn_comparison,
    turn_hits,
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


# ---- against chance: exact chances checked by enumeration -----------------------------


def test_chance_pvalue_with_equal_chances_is_the_binomial_tail():
    from scipy.stats import binom

    hits = np.array([True] * 6 + [False] * 4)
    assert chance_pvalue(hits, np.full(10, 0.3)) == pytest.approx(binom.sf(5, 10, 0.3))
    assert chance_pvalue(hits[:0], np.zeros(0)) == 1.0
    assert chance_pvalue(np.ones(3, bool), np.array([1.0, 1.0, 0.0])) == 0.0


def test_chance_all_hit_equals_enumeration():
    from itertools import combinations

    slots, changes = 12, 3
    windows = [np.isin(np.arange(slots), [1, 2, 3]), np.isin(np.arange(slots), [3, 8, 9])]
    draws = list(combinations(range(slots), changes))
    both = sum(all(w[list(d)].any() for w in windows) for d in draws) / len(draws)
    assert chance_all_hit(slots, changes, windows) == pytest.approx(both)
    assert chance_all_hit(slots, 0, windows) == 0.0


def test_states_changing_at_both_events_hit_and_random_ones_seldom_do():
    states = np.repeat([0, 1, 2], [10, 30, 20])  # changes at checkpoints 10 and 40
    hit, chance, changes = change_point_hits(states, memorised=11, generalised=38, tolerance=2)
    assert hit and changes.tolist() == [10, 40]
    assert chance == pytest.approx(2 * 5 * 5 / (59 * 58 / 2 * 2))  # one change in each window
    assert not change_point_hits(states, 11, 30, tolerance=2)[0]
    assert change_point_hits(states, 11, None, tolerance=2)[:2] == (False, 0.0)


def test_three_phases_with_their_own_states_and_the_chance_by_enumeration():
    states = np.repeat([0, 1, 2], [10, 30, 20])
    hit, chance = three_phase_hits(states, memorised=10, generalised=40)
    assert hit
    n = len(states)

    def distinct(i, j):
        modes = [np.bincount(part, minlength=3).argmax() for part in np.split(states, [i, j])]
        return len(set(modes)) == 3

    pairs = [(i, j) for i in range(1, n) for j in range(i + 1, n)]
    assert chance == pytest.approx(np.mean([distinct(i, j) for i, j in pairs]))
    assert not three_phase_hits(np.repeat([0, 1], [30, 30]), 10, 40)[0]


def test_a_turn_inside_the_window_hits_with_the_window_share_as_chance():
    eligible = np.ones(20, dtype=bool)
    eligible[:3] = eligible[-3:] = False
    assert turn_hits(eligible, 8, start=5, end=10) == (True, 6 / 14)
    assert turn_hits(eligible, 12, start=5, end=10)[0] is False
    assert turn_hits(eligible, 8, start=5, end=None) == (False, 0.0)
