"""The HMM stage on trajectories sampled from a known Gaussian HMM."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from trainmap.analysis import hmm, normalize
from trainmap.analysis.synthetic import FORK, SYNTHETIC_METRICS, detour_hmm, graph_hmm, sample_runs
from trainmap.errors import TrainmapError

OPTIONS = hmm.FitOptions(restarts=2, seed=0, n_iter=60, tol=1e-2)


@pytest.fixture(scope="module")
def runs() -> pd.DataFrame:
    return sample_runs(detour_hmm(), n_runs=20, length=100, seed=1)


def test_sweep_picks_true_k_and_decoding_matches_truth(runs):
    # The sampled observations play the z-scores, so the true model is in the model class.
    split = normalize.split_runs(runs["run"].unique(), "holdout", held_out_fraction=0.2, seed=0)
    sweep = pd.concat([hmm.sweep(runs, split, SYNTHETIC_METRICS, k, OPTIONS) for k in range(1, 7)])
    selection = hmm.select_states(sweep, "bic")
    assert selection.loc[selection["chosen"], "k"].item() == 4
    # The chosen model is a converged fit (over-split k may crawl to n_iter on a flat likelihood).
    assert selection.loc[selection["chosen"], "restarts_converged"].item() > 0
    model = hmm.fit(runs, SYNTHETIC_METRICS, 4, OPTIONS)
    states = hmm.decode(model, runs, SYNTHETIC_METRICS)
    assert adjusted_rand_score(runs["state"], states["state"]) >= 0.9
    # States are numbered by first visit: every run starts in state 0.
    assert (states.groupby("run")["state"].first() == 0).all()


def test_bic_counts_every_free_parameter():
    # k - 1 start, k (k - 1) transition, k d mean, k d (d + 1) / 2 covariance parameters.
    assert hmm.n_parameters(1, 1) == 2
    assert hmm.n_parameters(3, 2) == 2 + 6 + 6 + 9
    # Diagonal covariances: k d of them.
    assert hmm.n_parameters(3, 2, "diag") == 2 + 6 + 6 + 6
    aic, bic = hmm.information_criteria(-100.0, 10, 1000)
    assert aic == pytest.approx(220.0)
    assert bic == pytest.approx(200 + 10 * np.log(1000))


def test_diagonal_states_decode_the_truth(runs):
    options = hmm.FitOptions(restarts=2, seed=0, n_iter=60, tol=1e-2, covariance_type="diag")
    model = hmm.fit(runs, SYNTHETIC_METRICS, 4, options)
    assert model.covariance_type == "diag"
    states = hmm.decode(model, runs, SYNTHETIC_METRICS)
    assert adjusted_rand_score(runs["state"], states["state"]) >= 0.9
    assert (states.groupby("run")["state"].first() == 0).all()


def test_restarts_are_seeded(runs):
    split = normalize.split_runs(runs["run"].unique(), "holdout", held_out_fraction=0.2, seed=0)
    a = hmm.sweep(runs, split, SYNTHETIC_METRICS, 3, OPTIONS)
    b = hmm.sweep(runs, split, SYNTHETIC_METRICS, 3, OPTIONS)
    pd.testing.assert_frame_equal(a, b)


def test_parallel_sweep_gives_the_same_table(runs):
    split = normalize.split_runs(runs["run"].unique(), "kfold", folds=3, seed=0)
    one = hmm.sweep(runs, split, SYNTHETIC_METRICS, 3, OPTIONS)
    two = hmm.sweep(runs, split, SYNTHETIC_METRICS, 3, OPTIONS, n_jobs=2)
    pd.testing.assert_frame_equal(one, two, check_exact=True)


def test_plain_arrays_reproduce_the_library_model(runs, tmp_path):
    model = hmm.fit(runs, SYNTHETIC_METRICS, 4, OPTIONS)
    hmm.save(model, SYNTHETIC_METRICS, tmp_path / "m.pkl", tmp_path / "m.npz")
    params = hmm.HMMParams.load(tmp_path / "m.npz")
    X = runs.loc[runs["run"] == 3, SYNTHETIC_METRICS].to_numpy()
    np.testing.assert_allclose(params.log_emissions(X), model._compute_log_likelihood(X), atol=1e-8)
    # At the last checkpoint the filtered and the smoothed posterior coincide.
    filtered = np.exp(params.filtered_log_posteriors(X))
    np.testing.assert_allclose(filtered[-1], model.predict_proba(X)[-1], atol=1e-8)


def test_feature_importance_is_the_finite_difference_derivative():
    """The appendix-A vector equals a finite difference of log p(s_t = k | z_1:t) (hmmlearn)."""
    truth = detour_hmm()
    # Broad, overlapping states so that the posterior is far from certain.
    params = hmm.HMMParams(
        truth.startprob + 0.1,
        truth.transmat + 0.05,
        truth.means / 3,
        truth.covars * 2,
        truth.metrics,
    )
    params = hmm.HMMParams(
        params.startprob / params.startprob.sum(),
        params.transmat / params.transmat.sum(axis=1, keepdims=True),
        params.means,
        params.covars,
        params.metrics,
    )
    reference = hmm.GaussianHMM(n_components=4, covariance_type="full")
    reference.startprob_, reference.transmat_ = params.startprob, params.transmat
    reference.means_, reference.covars_ = params.means, params.covars
    reference.n_features = 4
    X = sample_runs(params, n_runs=1, length=12, seed=3)[SYNTHETIC_METRICS].to_numpy()
    gradients = params.posterior_gradients(X)
    h = 1e-6
    checked = 0
    for t in (0, 5, 11):
        posterior = reference.predict_proba(X[: t + 1])[-1]
        for k in range(4):
            numeric = np.empty(4)
            for i in range(4):
                up, down = X[: t + 1].copy(), X[: t + 1].copy()
                up[t, i] += h
                down[t, i] -= h
                numeric[i] = (
                    np.log(reference.predict_proba(up)[-1, k])
                    - np.log(reference.predict_proba(down)[-1, k])
                ) / (2 * h)
            np.testing.assert_allclose(gradients[t, k], numeric, rtol=1e-4, atol=1e-6)
            checked += posterior[k] > 0.01
    assert checked >= 3  # the comparison covered states with real posterior mass


def test_a_restart_left_with_an_empty_state_is_dropped_not_fatal(runs, monkeypatch):
    # EM can leave a state with no observations: hmmlearn then holds NaN parameters
    # and raises in score(); the sweep must record the restart as failed and go on.
    fit = hmm.GaussianHMM.fit

    def fit_then_empty_a_state(model, X, lengths=None):
        fit(model, X, lengths)
        if model.random_state == hmm.restart_seed(0, 3, 0):
            model.startprob_ = np.full(model.n_components, np.nan)
        return model

    monkeypatch.setattr(hmm.GaussianHMM, "fit", fit_then_empty_a_state)
    split = normalize.split_runs(runs["run"].unique(), "holdout", held_out_fraction=0.2, seed=0)
    table = hmm.sweep(runs, split, SYNTHETIC_METRICS, 3, OPTIONS)
    assert not table["converged"].iloc[0]
    assert np.isnan(table["heldout_bic"].iloc[0])
    assert np.isfinite(table["heldout_bic"].iloc[1])


def test_mixture_start_reaches_the_true_likelihood_where_kmeans_starts_merge_states():
    # An equally fast fork: two small branch states and a large absorbing state.
    truth = graph_hmm(FORK)
    reference = hmm.GaussianHMM(n_components=4, covariance_type="full")
    reference.n_features = 4
    reference.startprob_, reference.transmat_ = truth.startprob, truth.transmat
    reference.means_, reference.covars_ = truth.means, truth.covars
    shortfalls = {}
    for init in hmm.INITS:
        options = hmm.FitOptions(restarts=4, init=init)
        for seed in (0, 1):
            runs = sample_runs(truth, n_runs=32, length=100, seed=seed)
            X, lengths = hmm.sequences(runs, truth.metrics)
            true_loglik = reference.score(X, lengths)
            fits = [hmm.fit_restart(X, lengths, 4, r, options) for r in range(4)]
            shortfalls[init, seed] = [true_loglik - m.score(X, lengths) for m in fits]
    # Every mixture-started restart fits at least as well as the true parameters...
    assert max(max(shortfalls["mixture", seed]) for seed in (0, 1)) < 0
    # ...while K-means starts (hmmlearn's) stay hundreds of nats short in some sample.
    assert max(max(shortfalls["kmeans", seed]) for seed in (0, 1)) > 100


def test_a_state_holding_only_last_checkpoints_fails_its_restart_instead_of_crashing():
    # Every run's last checkpoint lies far from the rest: a state with nowhere to go.
    truth = graph_hmm({0: [1]}, stay=0.95)
    runs = sample_runs(truth, n_runs=6, length=40, seed=0)
    X, lengths = hmm.sequences(runs, truth.metrics)
    X = X.copy()
    X[np.cumsum(lengths) - 1] += 25.0
    fits = [hmm.fit_restart(X, lengths, 3, r, hmm.FitOptions(restarts=4)) for r in range(4)]
    assert fits == [None] * 4


def test_an_unknown_start_is_named():
    with pytest.raises(TrainmapError, match="analysis.init"):
        hmm.FitOptions(init="random")
