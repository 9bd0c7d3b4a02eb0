"""Convergence prediction from a run's first checkpoints: the forward filter, the
conformal interval, and two known truths (a detour that slows runs; states that say
nothing about convergence)."""

import numpy as np
import pandas as pd
import pytest
from hmmlearn.hmm import GaussianHMM

from trainmap.analysis import predict, regression
from trainmap.analysis.hmm import FitOptions
from trainmap.analysis.synthetic import DETOUR, Scenario, graph_hmm, sample_scenario
from trainmap.errors import TrainmapError

OPTIONS = FitOptions(restarts=2, seed=0, n_iter=60, covariance_type="diag")
LEVEL = 0.8
#: Runs leave the start quickly (mean 2 checkpoints) and then take the fast way (20
#: checkpoints in state 1 on average) or the detour state 3 first (50 more): by 25 %
#: of the median convergence time nearly every run shows which way it went.
EARLY_DETOUR = graph_hmm(DETOUR, stay=0.95, slow={0: 0.5, 3: 0.98})


def evaluation(independent: bool, seed: int = 0) -> pd.DataFrame:
    scenario = Scenario(
        "early detour", EARLY_DETOUR, n_runs=60, length=200, independent_convergence=independent
    )
    table = sample_scenario(scenario, seed)
    convergence = regression.convergence_times(table, 0.9)
    metrics = EARLY_DETOUR.metrics
    predictions = predict.evaluate(
        table,
        convergence,
        lambda: predict.ConvergencePredictor(4, metrics, 0.9, OPTIONS, level=LEVEL),
        fractions=(0.25,),
    )
    return predict.summarize(predictions).set_index("method")


def test_forward_filter_is_hmmlearns_posterior_at_the_last_checkpoint_of_each_prefix():
    # The posterior of the last checkpoint given everything up to it is the filtered one.
    rng = np.random.default_rng(0)
    params = graph_hmm(DETOUR)
    model = GaussianHMM(n_components=params.k, covariance_type="full")
    model.startprob_, model.transmat_ = params.startprob, params.transmat
    model.means_, model.covars_ = params.means, params.covars
    X = rng.normal(0, 3, (30, len(params.metrics)))
    filtered = np.exp(params.filtered_log_posteriors(X))
    for t in (0, 1, 7, 29):
        np.testing.assert_allclose(filtered[t], model.predict_proba(X[: t + 1])[-1], atol=1e-10)


def test_ridge_leave_one_out_residuals_are_the_refits_without_each_run():
    rng = np.random.default_rng(1)
    A, y = rng.normal(size=(12, 3)), rng.normal(size=12)
    _, loo = predict.ridge_loo(A, y, 0.5)
    for i in range(12):
        keep = np.arange(12) != i
        coef, _ = predict.ridge_loo(A[keep], y[keep], 0.5)
        assert loo[i] == pytest.approx(y[i] - coef[0] - A[i] @ coef[1:])


def test_conformal_interval_covers_at_its_level_on_fresh_draws():
    rng = np.random.default_rng(2)
    half = [predict.conformal_halfwidth(rng.standard_t(3, 9), LEVEL) for _ in range(4000)]
    covered = np.abs(rng.standard_t(3, 4000)) <= np.array(half)
    # Exchangeable residuals: coverage ≥ level (here exactly 8/10 draws' rank).
    assert covered.mean() == pytest.approx(LEVEL, abs=0.02)
    assert predict.conformal_halfwidth(np.ones(3), LEVEL) == np.inf


def test_sign_flip_pvalue_is_exact():
    assert predict.sign_flip_pvalue(np.ones(5)) == pytest.approx(1 / 32)
    assert predict.sign_flip_pvalue(-np.ones(5)) == 1.0
    assert predict.sign_flip_pvalue(np.full(5, 1e-12)) == 1.0  # rounding, not a gain


def test_map_beats_the_mean_of_other_runs_where_a_detour_slows_runs():
    summary = evaluation(independent=False)
    # One-sided paired sign-flip test over the held-out runs at 25 % of the median time.
    assert summary.loc["mean", "p_map_better"] < 0.05
    assert summary.loc["map", "mean_log_error"] < summary.loc["mean", "mean_log_error"]


def test_map_claims_nothing_where_states_carry_no_information():
    """Convergence drawn independently of the states: the map must not beat the mean
    (the sign-flip test, whose false-alarm rate is 5 %, does not call it better), its
    interval must keep its coverage (within two binomial standard errors of the level)
    and must not be much narrower than the mean's (at least 0.8 of its width): a
    narrower interval would claim knowledge the states do not carry."""
    summary = evaluation(independent=True)
    runs = summary.loc["map", "runs"]
    assert summary.loc["mean", "p_map_better"] >= 0.05
    assert summary.loc["map", "coverage"] >= LEVEL - 2 * np.sqrt(LEVEL * (1 - LEVEL) / runs)
    assert summary.loc["map", "width_log"] >= 0.8 * summary.loc["mean", "width_log"]


def test_a_prefix_without_a_metric_is_named():
    table = sample_scenario(Scenario("d", EARLY_DETOUR, n_runs=8, length=60), 0)
    convergence = regression.convergence_times(table, 0.9)
    metrics = EARLY_DETOUR.metrics
    predictor = predict.ConvergencePredictor(4, metrics, 0.9, OPTIONS).fit(table, convergence)
    with pytest.raises(TrainmapError, match="metric_0"):
        predictor.predict(table.drop(columns="metric_0"))
    rows = predictor.predict(table[table["epoch"] <= 3])
    assert (rows["low"] <= rows["predicted"]).all() and (rows["predicted"] <= rows["high"]).all()
    assert (rows["low"] >= rows["at"]).all()
