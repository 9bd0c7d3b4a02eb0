"""The analysis recovers known truths: state counts, decodings, detours, forks, stability."""

import numpy as np
import pandas as pd
import pytest
from hmmlearn.hmm import GaussianHMM

from trainmap.analysis import align, hmm, normalize, regression, training_map
from trainmap.analysis.recovery import analyse_table, score
from trainmap.analysis.stability import stability, summary_row
from trainmap.analysis.synthetic import (
    FORK,
    PATH,
    Scenario,
    detour_graph_hmm,
    graph_hmm,
    mixed_metrics,
    sample_scenario,
)
from trainmap.tables import write_table

# The default config's analysis settings, made small enough for a test.
SETTINGS = {
    "normalization": "pooled",
    "zscore_checkpoints": 1000,
    "selection": "kfold",
    "folds": 3,
    "held_out_fraction": 0.2,
    "one_standard_error": False,
    "k_max": 5,
    "k_extend": 2,
    "restarts": 1,
    "init": "mixture",
    "seed": 0,
    "n_iter": 50,
    "tol": 0.01,
    "min_covar": 0.001,
    "covariance_type": "full",
    "criterion": "bic",
    "unconverged": "censor",
    "alpha": 0.05,
    "bootstrap": 200,
    "detour_rule": "interval",
    "min_runs_per_state": 3,
}
DETOUR_RUNS = Scenario(
    "detour", detour_graph_hmm(), n_runs=24, length=100, detours=frozenset({3}), forking=True
)


@pytest.fixture(scope="module")
def detour_table() -> pd.DataFrame:
    return sample_scenario(DETOUR_RUNS, seed=0)


def recovered(scenario: Scenario, table: pd.DataFrame, **settings) -> dict:
    settings = {**SETTINGS, **settings}
    result = analyse_table(table.drop(columns="state"), scenario.params.metrics, settings)
    return score(scenario, table, result, settings)


def test_detour_scenario_is_recovered(detour_table):
    found = recovered(DETOUR_RUNS, detour_table)
    assert found["chosen_k"] == 4 and not found["at_edge"]
    assert found["ari"] >= 0.9
    assert found["detour_precision"] == 1 and found["detour_recall"] == 1
    assert found["forking"]


def test_one_path_with_few_runs_gives_no_fork_and_no_detour():
    scenario = Scenario("one path", graph_hmm(PATH), n_runs=10, length=100)
    found = recovered(scenario, sample_scenario(scenario, seed=1))
    assert not found["forking"] and found["false_detours"] == ""


def test_sweep_is_extended_past_k_max_to_an_inside_minimum(detour_table):
    found = recovered(DETOUR_RUNS, detour_table, k_max=2, k_extend=4)
    assert found["chosen_k"] == 4 and not found["at_edge"]
    # Without room to extend, the choice is marked as the edge of the sweep.
    assert recovered(DETOUR_RUNS, detour_table, k_max=2, k_extend=0)["at_edge"]


def test_kfold_holds_every_run_out_once():
    split = normalize.split_runs(np.arange(12), "kfold", folds=5, seed=3)
    assert sorted(split["fold"].value_counts()) == [2, 2, 2, 3, 3]
    folds = hmm.folds(split)
    held = np.concatenate([h for _, _, h in folds])
    assert sorted(held) == list(range(12))
    for _, fit, held_out in folds:
        assert not set(fit) & set(held_out) and len(fit) + len(held_out) == 12
    # The paper's single split: one fold, the other runs never held out.
    holdout = normalize.split_runs(np.arange(10), "holdout", held_out_fraction=0.2, seed=3)
    assert [len(h) for _, _, h in hmm.folds(holdout)] == [2]


def test_one_standard_error_rule_takes_the_fewest_states_within_one_se():
    # No parameters, so each fold's held-out BIC is -2 log-likelihood: bic + noise.
    rows = [
        {"k": k, "fold": f, "restart": 0, "n_params": 0, "train_loglik": 0.0, "converged": True}
        | dict.fromkeys(("train_aic", "train_bic"), 0.0)
        | {"heldout_loglik": -(bic + noise) / 2, "heldout_checkpoints": 10}
        for k, bic in ((1, 100.0), (2, 10.0), (3, 9.0), (4, 9.5))
        for f, noise in enumerate((-2.0, 0.0, 2.0))
    ]
    sweep = pd.DataFrame(rows)
    assert hmm.chosen_k(hmm.select_states(sweep)) == 3
    selection = hmm.select_states(sweep, one_standard_error=True)
    assert hmm.chosen_k(selection) == 2
    # Three folds' BICs summed, with the standard error of a sum of three draws.
    assert selection.loc[1, "heldout_bic"] == pytest.approx(30.0)
    assert selection.loc[1, "heldout_bic_se"] == pytest.approx(2 * np.sqrt(3))


def test_held_out_bic_of_all_folds_is_the_bic_of_their_runs_together():
    rows = [
        {"k": 2, "fold": f, "restart": 0, "n_params": 7, "train_loglik": 0.0, "converged": True}
        | dict.fromkeys(("train_aic", "train_bic"), 0.0)
        | {"heldout_loglik": loglik, "heldout_checkpoints": n}
        for f, (loglik, n) in enumerate(((-50.0, 100), (-70.0, 150), (-40.0, 90)))
    ]
    selection = hmm.select_states(pd.DataFrame(rows))
    _, bic = hmm.information_criteria(-160.0, 7, 340)
    assert selection.loc[0, "heldout_bic"] == pytest.approx(bic)
    assert selection.loc[0, "heldout_loglik"] == pytest.approx(-160.0)


def test_pooled_zscores_keep_a_state_at_the_same_place_in_every_run():
    # Two runs: one stays in state A, one visits A then B. Per-run z-scores move A.
    table = pd.DataFrame(
        {
            "run": [0] * 4 + [1] * 4,
            "step": list(range(4)) * 2,
            "l2": [1.0, 1.1, 0.9, 1.0, 1.0, 1.1, 5.0, 5.1],
        }
    )
    pooled, _ = normalize.zscore(table, ["l2"], normalization="pooled")
    per_run, _ = normalize.zscore(table, ["l2"], normalization="per_run")
    assert pooled["l2"].mean() == pytest.approx(0) and pooled["l2"].std(ddof=0) == pytest.approx(1)
    np.testing.assert_allclose(pooled["l2"][:2], pooled["l2"][4:6])
    assert abs(per_run["l2"][0] - per_run["l2"][4]) > 0.5


def test_bootstrap_interval_decides_a_detour():
    rng = np.random.default_rng(0)
    n = 40
    # Half the runs also visit state 2, which adds time; the others skip it.
    slow = np.arange(n) < n // 2
    fractions = rng.dirichlet(np.ones(3), size=n)
    fractions[~slow] = np.column_stack(
        [rng.dirichlet(np.ones(2), size=(~slow).sum()), np.zeros((~slow).sum())]
    )
    occupancy = pd.DataFrame(fractions, columns=[0, 1, 2])
    time = 100 + 80 * fractions[:, 2] + rng.normal(0, 3, n)
    convergence = pd.DataFrame({"run": range(n), "time": time, "converged": True})
    summary, coefficients = regression.regress(occupancy, convergence)
    row = coefficients.set_index("state").loc[2]
    assert 0 < row["ci_low"] < row["coefficient"] < row["ci_high"]
    assert 0 < row["slowdown_low"] < row["slowdown"] < row["slowdown_high"]
    assert summary["detours"] == "2" and not summary["underpowered"]
    assert summary["rsquared_low"] < summary["rsquared"] < summary["rsquared_high"]
    assert summary["adj_rsquared"] < summary["rsquared"]
    # 8 runs for 3 states: fewer than 3 per state.
    assert regression.regress(occupancy.head(8), convergence.head(8))[0]["underpowered"]
    # No effect at all: whichever way the noise leans, the interval rule calls no detour;
    # the paper's sign rule calls state 2 a detour whenever its coefficient is positive.
    positive = regression.RegressionOptions(detour_rule="positive")
    for seed in range(4):
        noise = convergence.assign(time=np.random.default_rng(seed).normal(100, 3, n))
        sign = regression.regress(occupancy, noise, positive)[1].set_index("state").loc[2]
        assert regression.regress(occupancy, noise)[0]["detours"] == ""
        assert sign["detour"] == (sign["coefficient"] > 0)


def test_stability_of_a_well_separated_map(detour_table):
    options = hmm.FitOptions(restarts=2, n_iter=50, covariance_type="full")
    zscores, _ = normalize.normalize_runs(
        detour_table.drop(columns="state"), DETOUR_RUNS.params.metrics
    )
    metrics = normalize.zscore_metrics(zscores)
    reference = hmm.decode(hmm.fit(zscores, metrics, 4, options), zscores, metrics)
    replicates, edges = stability(zscores, metrics, reference, options, resamples=4)
    assert len(replicates) == 6 and (replicates["ari"] >= 0.9).all()
    assert (edges.loc[edges["in_reference"], "bootstrap_frequency"] == 1).all()


def test_a_one_state_map_has_a_stability_row(detour_table, tmp_path):
    """One state, no edges: the edge table read back from CSV still gives a summary row."""
    options = hmm.FitOptions(restarts=1, n_iter=10)
    zscores, _ = normalize.normalize_runs(
        detour_table.drop(columns="state"), DETOUR_RUNS.params.metrics
    )
    metrics = normalize.zscore_metrics(zscores)
    reference = hmm.decode(hmm.fit(zscores, metrics, 1, options), zscores, metrics)
    replicates, edges = stability(zscores, metrics, reference, options, resamples=2)
    write_table(edges, tmp_path / "edges.csv")
    row = summary_row(replicates, pd.read_csv(tmp_path / "edges.csv"))
    assert row["Map edges"] == 0 and row["Least stable edge"] == ""
    assert row["ARI across restarts (min)"] == 1.0


def test_equally_fast_fork_branches_are_not_detours():
    # Each branch's coefficient is positive (a run spending all its time there would
    # converge late), so the paper's sign rule calls them detours; visitors of a branch
    # converge no later than the runs taking the other branch, so the interval rule,
    # whose intervals hold together at 95%, calls a false detour in few samples.
    scenario = Scenario("fork", graph_hmm(FORK), n_runs=30, length=100, forking=True)
    positive = regression.RegressionOptions(detour_rule="positive")
    false_calls = 0
    for seed in range(6):
        table = sample_scenario(scenario, seed=seed)
        occupancy = training_map.occupancy_fractions(table)
        convergence = regression.convergence_times(table, 0.9)
        assert regression.regress(occupancy, convergence, positive)[0]["detours"] == "1 2"
        false_calls += regression.regress(occupancy, convergence)[0]["detours"] != ""
    assert false_calls <= 1


def _model(means: np.ndarray, covars: np.ndarray) -> GaussianHMM:
    k = len(means)
    model = GaussianHMM(k, covariance_type="full")
    model.n_features = means.shape[1]
    model.startprob_, model.transmat_ = np.full(k, 1 / k), np.full((k, k), 1 / k)
    model.means_, model.covars_ = means, covars
    return model


def test_map_update_finds_each_runs_known_map_given_the_states():
    """Runs whose metrics are known affine maps of one HMM's emissions: given the true
    states and model, the maximum-likelihood maps are the true inverse maps."""
    rng = np.random.default_rng(0)
    means = np.array([[0.0, 0.0, 0.0], [3.0, -2.0, 1.0]])
    covars = np.stack([np.eye(3) * 0.5 + 0.2, np.eye(3) * 0.3 + 0.1])
    scale = np.array([[1.0, 1.0, 1.0], [0.5, 2.0, 1.3], [1.7, 0.8, 0.6]])
    offset = np.array([[0.0, 0.0, 0.0], [1.0, -0.5, 2.0], [-1.5, 0.3, 0.0]])
    states = np.tile(np.repeat([0, 1], 1000), 3)
    run_index = np.repeat([0, 1, 2], 2000)
    y = np.array([rng.multivariate_normal(means[s], covars[s]) for s in states])
    x = (y - offset[run_index]) / scale[run_index]
    posteriors = np.eye(2)[states]
    found = np.ones_like(scale), np.zeros_like(offset)
    for _ in range(3):
        found = align.map_update(x, run_index, posteriors, _model(means, covars), *found)
    np.testing.assert_allclose(found[0], scale, rtol=0.05)
    np.testing.assert_allclose(found[1], offset, atol=0.1)


def test_joint_loglik_is_the_likelihood_of_the_unmapped_runs():
    """The joint fit's log-likelihood equals, run by run, the likelihood of the run's own
    z-scores under the HMM mapped back to its units (means and covariances)."""
    scenario = Scenario("offsets", detour_graph_hmm(), n_runs=6, offset_sd=0.5, scale_sd=0.2)
    table = sample_scenario(scenario, seed=0)
    metrics = scenario.params.metrics
    X, lengths = hmm.sequences(table, metrics)
    run_index = np.repeat(np.arange(len(lengths)), lengths)
    options = hmm.FitOptions(restarts=1)
    best, _ = align.search(X, lengths, run_index, 3, options)
    total, start = 0.0, 0
    for r, length in enumerate(lengths):
        a, c = best.scale[r], best.offset[r]
        back = _model((best.model.means_ - c) / a, best.model.covars_ / np.outer(a, a))
        back.startprob_, back.transmat_ = best.model.startprob_, best.model.transmat_
        total += back.score(X[start : start + length])
        start += length
    assert total == pytest.approx(best.loglik, rel=1e-9)


def test_alignment_removes_per_run_offsets_and_scales():
    """Runs that differ by their own affine map of each metric: aligned jointly with the
    HMM, searched down from more states than the truth has (k_max 5), the z-scores recover
    the 4 states and the detour, with no false detour."""
    scenario = Scenario(
        "offsets",
        detour_graph_hmm(),
        n_runs=24,
        offset_sd=0.5,
        scale_sd=0.2,
        detours=frozenset({3}),
        forking=True,
    )
    table = sample_scenario(scenario, seed=0)
    assert recovered(scenario, table)["ari"] < 0.9  # pooled z-scores keep the maps
    found = recovered(scenario, table, normalization="aligned")
    assert found["chosen_k"] == 4 and found["ari"] >= 0.9
    assert found["false_detours"] == ""


def test_cross_validated_likelihood_keeps_states_of_correlated_metrics_apart():
    """14 nearly collinear metrics: the held-out log-likelihood with the one-standard-error
    rule (paper.yaml) recovers the 4 known states and the detour."""
    scenario = Scenario(
        "correlated",
        mixed_metrics(detour_graph_hmm()),
        n_runs=24,
        detours=frozenset({3}),
        forking=True,
    )
    found = recovered(
        scenario, sample_scenario(scenario, seed=0), criterion="loglik", one_standard_error=True
    )
    assert found["chosen_k"] == 4 and found["ari"] >= 0.9
    assert found["detour_precision"] == 1 and found["detour_recall"] == 1


def test_a_nearly_constant_metric_keeps_its_scale_bounded():
    """Run 1's first metric barely moves: its likelihood grows with its scale without
    bound, so the scale stops at the bound instead."""
    rng = np.random.default_rng(2)
    means = np.array([[0.0, 0.0], [3.0, -2.0]])
    covars = np.stack([np.eye(2) * 0.5, np.eye(2) * 0.5])
    states = np.tile(np.repeat([0, 1], 200), 2)
    run_index = np.repeat([0, 1], 400)
    x = np.array([rng.multivariate_normal(means[s], covars[s]) for s in states])
    x[run_index == 1, 0] = 1.0 + rng.normal(0, 1e-4, 400)
    found = np.ones((2, 2)), np.zeros((2, 2))
    for _ in range(10):
        found = align.map_update(x, run_index, np.eye(2)[states], _model(means, covars), *found)
    assert found[0][1, 0] == pytest.approx(align.MAX_SCALE)
    assert 1 / align.MAX_SCALE < found[0][0, 0] < align.MAX_SCALE


def test_held_out_maps_are_fitted_under_the_fold_model_alone():
    """A held-out run that is a known affine map of the HMM's metrics: its map is
    recovered under the fixed HMM, and scoring it with its map beats the identity."""
    rng = np.random.default_rng(4)
    means = np.array([[0.0, 0.0, 0.0], [3.0, -2.0, 1.0]])
    covars = np.stack([np.eye(3) * 0.5 + 0.2, np.eye(3) * 0.3 + 0.1])
    model = _model(means, covars)
    model.startprob_, model.transmat_ = np.array([1.0, 0]), np.array([[0.99, 0.01], [0, 1]])
    states = np.repeat([0, 1], 300)
    y = np.array([rng.multivariate_normal(means[s], covars[s]) for s in states])
    scale, offset = np.array([0.6, 1.8, 1.2]), np.array([1.0, -0.5, 2.0])
    x = (y - offset) / scale
    lengths, run_index = np.array([600]), np.zeros(600, dtype=int)
    found_scale, found_offset, loglik = align.held_out_maps(model, x, lengths, run_index, 1e-3)
    np.testing.assert_allclose(found_scale[0], scale, rtol=0.1)
    np.testing.assert_allclose(found_offset[0], offset, atol=0.2)
    assert loglik > model.score(x, lengths)


def test_aligning_few_runs_is_warned_in_the_log_and_table_1(caplog):
    from trainmap.figures.hu2023 import normalization_note

    with caplog.at_level("WARNING"):
        note = normalization_note("aligned", 10)
    assert note.startswith("aligned: normalization aligned on 10 runs (fewer than 20)")
    assert "over-split" in caplog.text
    assert normalization_note("aligned", 40) == "aligned"
    assert normalization_note("pooled", 10) == "pooled"


def test_the_fork_scenario_forks():
    scenario = Scenario("fork", graph_hmm(FORK), n_runs=24, length=100, forking=True)
    found = recovered(scenario, sample_scenario(scenario, seed=0))
    assert found["ari"] >= 0.9 and found["forking"]


def test_identical_runs_do_not_fork(detour_table):
    """Copies of one run of the detour scenario: whatever its decoding, one walk."""
    one = detour_table[detour_table["run"] == 0]
    table = pd.concat([one.assign(run=run) for run in range(12)], ignore_index=True)
    assert not recovered(DETOUR_RUNS, table)["forking"]
