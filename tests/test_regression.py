"""Convergence-time regression, detour states, dissimilarity; the whole chain is seeded."""

import logging

import numpy as np
import pandas as pd
import pytest

from trainmap.analysis import hmm, normalize, regression, training_map
from trainmap.analysis.hmm import STATE
from trainmap.analysis.synthetic import (
    SYNTHETIC_METRICS,
    branch_occupancy,
    detour_hmm,
    sample_runs,
)

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


@pytest.mark.parametrize(("visitors", "bootstrap"), [(1, 100), (2, 100), (2, 0), (4, 0)])
def test_states_few_runs_visit_are_rarely_false_detours(visitors, bootstrap):
    # Convergence times are pure noise: no state is a detour. Before a minimum of
    # visiting runs, one visitor was called a detour in about a quarter of samples.
    rng = np.random.default_rng(100 + visitors)
    options = regression.RegressionOptions(bootstrap=bootstrap)
    # Fewer visitors than the minimum are never judged, whatever the sample: a few suffice.
    false, samples = 0, 5 if visitors < options.min_detour_runs else 40
    for _ in range(samples):
        occupancy = branch_occupancy(rng, 30, visitors)
        times = rng.normal(1000, 100, len(occupancy))
        convergence = pd.DataFrame({"run": occupancy.index, "time": times, "converged": True})
        _, coefficients = regression.regress(occupancy, convergence, options)
        false += int(coefficients["detour"].any())
        if visitors < options.min_detour_runs:
            note = coefficients.set_index("state").loc[1, "detour_note"]
            assert note.startswith(f"{visitors} run(s) visit it")
    assert false / samples <= (0 if visitors < options.min_detour_runs else 0.05)


def test_corrected_intervals_have_enough_draws_beyond_each_bound():
    # 8 candidate detours at alpha 0.05: each tail holds 0.05 / 16 of the draws.
    resamples = regression.bootstrap_resamples(500, 0.05, 8)
    assert resamples * 0.05 / 16 >= regression.TAIL_DRAWS
    assert regression.bootstrap_resamples(10_000, 0.05, 8) == 10_000


def test_held_out_rsquared_sees_no_signal_in_noise_and_keeps_a_real_one():
    rng = np.random.default_rng(7)
    noise, signal = [], []
    for _ in range(40):
        X = rng.dirichlet(np.full(8, 0.5), 30)
        noise.append((regression._r_squared(X, y := rng.normal(size=30))[1], y, X))
        y_real = X @ np.linspace(-2, 2, 8) + rng.normal(0, 0.2, 30)
        signal.append(regression.held_out_rsquared(X, y_real))
    in_sample = np.mean([r for r, _, _ in noise])
    held_out = np.mean([regression.held_out_rsquared(X, y) for _, y, X in noise])
    # 8 states, 30 runs: the in-sample R² of noise averages about 7/29.
    assert in_sample > 0.15 and held_out < 0
    assert np.mean(signal) > 0.8


def test_held_out_rsquared_agrees_with_refitting_each_run_out():
    rng = np.random.default_rng(3)
    X = rng.dirichlet(np.ones(3), 12)
    y = X @ np.array([1.0, 3.0, -2.0]) + rng.normal(0, 0.3, 12)
    predicted = [
        X[i] @ np.linalg.lstsq(np.delete(X, i, 0), np.delete(y, i), rcond=None)[0]
        for i in range(12)
    ]
    expected = 1 - ((y - predicted) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    assert regression.held_out_rsquared(X, y) == pytest.approx(expected)


def test_permutation_pvalue_matches_refitting_and_is_calibrated():
    rng = np.random.default_rng(11)
    X = rng.dirichlet(np.ones(4), 20)
    y = rng.normal(size=20)
    # The same shuffles, each refitted by least squares.
    shuffles = np.random.default_rng(5)
    observed = regression._r_squared(X, y)[1]
    reached = sum(
        regression._r_squared(X, shuffles.permutation(y))[1] >= observed - 1e-12 for _ in range(199)
    )
    assert regression.permutation_pvalue(X, y, 199, seed=5) == pytest.approx((1 + reached) / 200)
    # Under no relationship, p < 0.05 in about 5 % of samples.
    pvalues = [
        regression.permutation_pvalue(X, rng.normal(size=20), 199, seed=s) for s in range(300)
    ]
    assert 0.02 <= np.mean(np.array(pvalues) < 0.05) <= 0.09


def test_censored_runs_restrict_every_time_at_the_earliest_censoring():
    convergence = pd.DataFrame(
        {"run": range(4), "time": [50.0, 120.0, 100.0, 150.0], "converged": [1, 1, 0, 0]}
    ).astype({"converged": bool})
    times, tau = regression.restricted_times(convergence)
    # Run 2 is censored at 100: run 1 (120) and run 3 (after 150) are known to exceed it.
    assert tau == 100.0 and times.tolist() == [50.0, 100.0, 100.0, 100.0]
    occupancy = pd.DataFrame(np.eye(4)[[0, 1, 1, 2]] * 0.5 + 0.125, columns=range(4))
    summary, _ = regression.regress(occupancy, convergence.assign(run=range(4)))
    assert summary["censored"] == 2 and summary["restricted_at"] == 100.0
    uncensored = convergence.assign(converged=True)
    assert np.isnan(regression.restricted_times(uncensored)[1])
