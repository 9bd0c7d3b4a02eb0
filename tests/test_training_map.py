"""The training map: edges from decoded runs, their labels, and the single-path test."""

import numpy as np
import pandas as pd
import pytest

from trainmap.analysis import training_map as tm
from trainmap.analysis.hmm import STATE, HMMParams
from trainmap.analysis.synthetic import SYNTHETIC_METRICS, detour_hmm, sample_runs


def decoded(paths: list[list[int]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"run": r, "step": 10 * t, "epoch": float(t), STATE: s}
            for r, path in enumerate(paths)
            for t, s in enumerate(path)
        ]
    )


@pytest.fixture(scope="module")
def sampled():
    params = detour_hmm()
    runs = sample_runs(params, n_runs=8, length=60, seed=2)
    return params, runs


def test_edges_are_the_transitions_runs_take(sampled):
    params, runs = sampled
    states = runs[["run", "step", "epoch", STATE]]
    convergence = pd.DataFrame(
        {"run": range(8), "time": np.arange(8) * 10.0, "converged": True, "unit": "epoch"}
    )
    edges = tm.edge_table(states, runs, params, convergence, top=3)
    truth = set()
    for _, path in states.groupby("run")[STATE]:
        p = path.to_numpy()
        truth |= {(a, b) for a, b in zip(p[:-1], p[1:], strict=True) if a != b}
    assert set(zip(edges["source"], edges["target"], strict=True)) == truth
    for row in edges.itertuples():
        # Runs using the edge, and the signed change of means of the listed features.
        users = [
            r
            for r, path in states.groupby("run")[STATE]
            if any(
                a == row.source and b == row.target
                for a, b in zip(path[:-1], path[1:], strict=True)
            )
        ]
        assert row.runs == len(users)
        f = SYNTHETIC_METRICS.index(row.feature_1)
        assert row.change_1 == pytest.approx(
            params.means[row.target, f] - params.means[row.source, f]
        )
        assert row.importance_1 >= row.importance_2 >= row.importance_3
        if row.source == 0:  # the start state: convergence of the runs taking the edge
            times = convergence.set_index("run").loc[users, "time"]
            assert row.mean_convergence == pytest.approx(times.mean())
            assert row.sem_convergence == pytest.approx(times.std() / np.sqrt(len(times)))
        else:
            assert np.isnan(row.mean_convergence)


def test_importance_is_the_mean_absolute_gradient_at_the_transitions(sampled):
    params, runs = sampled
    states = runs[["run", "step", "epoch", STATE]]
    edges = tm.edge_table(states, runs, params, top=4).set_index(["source", "target"])
    moves = tm.transitions(states)
    source, target = moves.iloc[0][["source", "target"]]
    vectors = []
    for run, position in moves.loc[
        (moves["source"] == source) & (moves["target"] == target), ["run", "position"]
    ].itertuples(index=False):
        X = runs.loc[runs["run"] == run, SYNTHETIC_METRICS].to_numpy()
        vectors.append(np.abs(params.posterior_gradients(X)[position, target]))
    expected = np.mean(vectors, axis=0)
    row = edges.loc[(source, target)]
    got = {row[f"feature_{i}"]: row[f"importance_{i}"] for i in range(1, 5)}
    for f, name in enumerate(SYNTHETIC_METRICS):
        assert got[name] == pytest.approx(expected[f], rel=1e-9, abs=1e-300)


@pytest.mark.parametrize(
    ("paths", "forking"),
    [
        ([[0, 0, 1, 2], [0, 1, 1, 2]], False),  # one path
        ([[0, 1, 2], [0, 2, 2]], True),  # a shortcut: 0 has two ways out
        ([[0, 1, 0, 2]], False),  # back and forth, then on: a cycle is one place
        ([[0, 1, 0, 1, 2, 3, 4, 3, 4]] * 3, False),  # identical runs with two cycles
        ([[0, 1, 2, 0, 3], [0, 3]], False),  # a three-state cycle, then on
        ([[0, 1, 0, 2], [0, 1, 0, 3]], True),  # runs leave the cycle 0 ↔ 1 apart
        ([[0, 1, 3], [0, 2, 3]], True),  # parting and meeting again
        ([[0, 0, 0], [0, 0, 0]], False),  # one state
        ([[0, 1], [2, 1]], True),  # two starts
        ([[0, 1, 2], [1, 2]], False),  # a run starting on the path
    ],
)
def test_forking_means_runs_part_along_paths_that_do_not_return(paths, forking):
    states = decoded(paths)
    edges = tm.transitions(states)[["source", "target"]].drop_duplicates()
    assert tm.is_forking(edges, tm.node_table(states)) is forking


def test_labels_read_like_the_paper():
    assert tm.feature_label("l2", -0.591) == "L2 ↓0.59"
    assert tm.feature_label("spectral", 1.234) == "λmax ↑1.23"
    assert tm.feature_label("my_metric", 0.5) == "my_metric ↑0.50"


def test_occupancy_fractions_sum_to_one():
    occupancy = tm.occupancy_fractions(decoded([[0, 0, 1, 2], [0, 2, 2, 2]]), k=4)
    np.testing.assert_allclose(occupancy.sum(axis=1), 1)
    assert occupancy.loc[1].tolist() == [0.25, 0, 0.75, 0]


def test_start_state_and_nodes():
    states = decoded([[1, 0, 2], [1, 2, 2], [0, 2, 2]])
    assert tm.start_state(states) == 1
    nodes = tm.node_table(states).set_index(STATE)
    assert nodes["runs_starting"].to_dict() == {0: 1, 1: 2, 2: 0}
    assert nodes["runs_visiting"].to_dict() == {0: 2, 1: 2, 2: 3}


def test_params_roundtrip(tmp_path):
    params = detour_hmm()
    np.savez(
        tmp_path / "m.npz",
        startprob=params.startprob,
        transmat=params.transmat,
        means=params.means,
        covars=params.covars,
        metrics=np.array(params.metrics),
    )
    loaded = HMMParams.load(tmp_path / "m.npz")
    assert loaded.metrics == params.metrics and loaded.k == 4


@pytest.mark.parametrize("seed", range(20))
def test_identical_runs_never_fork(seed):
    """One walk through the states, however it moves back and forth, copied to every run."""
    rng = np.random.default_rng(seed)
    walk = rng.integers(0, rng.integers(1, 7), size=rng.integers(1, 40)).tolist()
    states = decoded([walk] * 5)
    edges = tm.transitions(states)[["source", "target"]].drop_duplicates()
    assert not tm.is_forking(edges, tm.node_table(states))


def test_exit_times_pvalue_is_the_pooled_t_test_for_two_exits():
    """Two exits: the ANOVA is the pooled-variance t-test; an exit taken by one run is
    judged against the others' spread, not as a time without error."""
    from scipy.stats import ttest_ind

    exit_times_pvalue = tm.exit_times_pvalue
    slow, fast = np.array([2900.0, 3100, 2700, 3300, 2500]), np.array([2400.0])
    assert exit_times_pvalue([slow, fast]) == pytest.approx(ttest_ind(slow, fast).pvalue)
    assert exit_times_pvalue([slow, fast]) > 0.05  # 500 below a mean whose spread is 316
    assert np.isnan(exit_times_pvalue([slow[:1], fast]))  # no spread within an exit
    assert np.isnan(exit_times_pvalue([slow]))
