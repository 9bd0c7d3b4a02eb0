"""Convergence-time regression, detour states, dissimilarity; the whole chain is seeded."""

import logging

import numpy as np
import pandas as pd
import pytest

from trainmap.analysis import hmm, normalize, regression, training_map
from trainmap.analysis.hmm import STATE
from trainmap.analysis.synthetic import SYNTHETIC_METRICS, detour_hmm, sample_runs

OPTIONS = hmm.FitOptions(restarts=2, seed=0, n_iter=60, tol=1e-2)


@pytest.fixture(scope="module")
def runs() -> pd.DataFrame:
    return sample_runs(detour_hmm(), n_runs=30, length=100, seed=4)


def test_planted_detour_is_found(runs):
    model = hmm.fit(runs, SYNTHETIC_METRICS, 4, OPTIONS)
    states = hmm.decode(model, runs, SYNTHETIC_METRICS)
    params = hmm.HMMParams(
        model.startprob_, model.transmat_, model.means_, model.covars_, SYNTHETIC_METRICS
    )
    convergence = regression.convergence_times(runs, 0.9)
    summary, coefficients = regression.analyse(states, params, convergence)
    # The learned state that mostly holds the true detour state 3.
    learned = pd.crosstab(runs["state"], states[STATE]).loc[3].idxmax()
    row = coefficients.set_index("state").loc[learned]
    assert row["coefficient"] > 0 and row["ci_low"] > 0 and row["p_value"] < 0.01
    assert row["detour"]
    assert summary.loc[0, "detours"].split() == [str(learned)]
    assert summary.loc[0, "f_pvalue"] < 0.001 and summary.loc[0, "rsquared"] > 0.5
    assert summary.loc[0, "forking"]


def test_r2_is_centred_and_coefficients_match_least_squares():
    rng = np.random.default_rng(0)
    fractions = rng.dirichlet(np.ones(3), size=25)
    occupancy = pd.DataFrame(fractions, columns=[0, 1, 2])
    time = fractions @ np.array([10.0, 50.0, 20.0]) + rng.normal(0, 2, 25)
    convergence = pd.DataFrame({"run": range(25), "time": time, "converged": True})
    summary, coefficients = regression.regress(occupancy, convergence)
    y = (time - time.mean()) / time.std(ddof=1)
    beta, *_ = np.linalg.lstsq(fractions, y, rcond=None)
    np.testing.assert_allclose(coefficients["coefficient"], beta, rtol=1e-8)
    residual = y - fractions @ beta
    assert summary["rsquared"] == pytest.approx(
        1 - residual @ residual / ((y - y.mean()) ** 2).sum()
    )
    # Every run visits every state: no detours even with positive coefficients.
    assert not coefficients["detour"].any()


def test_dissimilarity_paper_and_label_free_forms():
    occupancy = pd.DataFrame([[1.0, 0, 0], [0, 0, 1.0], [0, 0, 1.0]])
    means = np.array([[0.0, 0], [3, 4], [6, 8]])
    # Pairs: (0,1) and (0,2) are 2 apart on the index support, (1,2) are equal.
    assert regression.dissimilarity(occupancy) == pytest.approx(4 / 3)
    # Label-free: ground distance ‖µ0 − µ2‖ = 10.
    assert regression.dissimilarity(occupancy, means) == pytest.approx(20 / 3)
    # Relabelling the states changes the paper's form but not the label-free one.
    swapped = occupancy[[0, 2, 1]].set_axis([0, 1, 2], axis=1)
    assert regression.dissimilarity(swapped) == pytest.approx(2 / 3)
    assert regression.dissimilarity(swapped, means[[0, 2, 1]]) == pytest.approx(20 / 3)


def test_unconverged_runs_are_censored_or_dropped(caplog):
    table = pd.DataFrame(
        {
            "run": [0, 0, 0, 1, 1, 1],
            "step": [0, 10, 20] * 2,
            "epoch": [0.0, 1, 2] * 2,
            "eval_acc": [0.1, 0.95, 0.97, 0.1, 0.5, 0.8],
        }
    )
    with caplog.at_level(logging.WARNING):
        censored = regression.convergence_times(table, 0.9)
    assert censored["time"].tolist() == [1.0, 2.0]
    assert censored["converged"].tolist() == [True, False]
    assert "never exceed" in caplog.text and "[1]" in caplog.text
    assert regression.convergence_times(table, 0.9, "drop")["run"].tolist() == [0]
    # Without epochs, time is in steps.
    steps = regression.convergence_times(table.drop(columns="epoch"), 0.9)
    assert steps["time"].tolist() == [10.0, 20.0] and steps["unit"].iloc[0] == "step"


def chain(table: pd.DataFrame) -> list[pd.DataFrame]:
    """normalize → sweep → select → fit → map → regression, as the workflow runs it."""
    zscores, split = normalize.normalize_runs(table, SYNTHETIC_METRICS, min_length=4, seed=3)
    sweep = pd.concat([hmm.sweep(zscores, split, SYNTHETIC_METRICS, k, OPTIONS) for k in (2, 3, 4)])
    selection = hmm.select_states(sweep)
    k = int(selection.loc[selection["chosen"], "k"].item())
    model = hmm.fit(zscores, SYNTHETIC_METRICS, k, OPTIONS)
    states = hmm.decode(model, zscores, SYNTHETIC_METRICS)
    params = hmm.HMMParams(
        model.startprob_, model.transmat_, model.means_, model.covars_, SYNTHETIC_METRICS
    )
    convergence = regression.convergence_times(table, 0.9)
    edges = training_map.edge_table(states, zscores, params, convergence)
    summary, coefficients = regression.analyse(states, params, convergence)
    return [zscores, split, sweep, selection, states, edges, summary, coefficients]


def test_seeded_analysis_gives_identical_tables(runs):
    table = runs[runs["run"] < 12].drop(columns=STATE)
    for a, b in zip(chain(table), chain(table.copy()), strict=True):
        pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_dropped_unconverged_runs_are_counted_and_the_map_still_builds(runs):
    # Run 0 never converges; `unconverged: drop` leaves it out of the regression.
    table = runs.assign(eval_acc=runs["eval_acc"].where(runs["run"] != 0, 0.0))
    states = table[["run", "step", "epoch", STATE]]
    truth = detour_hmm()
    convergence = regression.convergence_times(table, 0.9, "drop")
    assert 0 not in set(convergence["run"])
    edges = training_map.edge_table(states, table, truth, convergence)
    exits = edges[edges["from_start"]]
    assert exits["mean_convergence"].notna().all()
    summary, _ = regression.analyse(states, truth, convergence)
    assert summary.loc[0, "unconverged"] == 1
    assert summary.loc[0, "regressed_runs"] == summary.loc[0, "runs"] - 1
