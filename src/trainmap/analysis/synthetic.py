"""Metric tables sampled from a known Gaussian HMM: the known answers the tests check against.

:func:`detour_hmm` plants a detour: runs start in state 0 and end in state 2;
some go 0 → 1 → 2, others take the slow way 0 → 3 → 1 → 2 and converge later.
:func:`graph_hmm` builds an HMM from any graph of states; :data:`SCENARIOS`
(forks, detours, one path, few and many runs, unequal lengths, per-run offsets
and scales, correlated metrics, 2 to 8 states) are the recovery benchmark's
cases (``benchmarks/recovery.py``), sampled by :func:`sample_scenario`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from trainmap.analysis.hmm import STATE, HMMParams
from trainmap.tables import DIVERGED, EPOCH, EVAL_ACC, RUN, STEP

#: Metric names of the synthetic tables (l2 included, so the HMM-1 baseline runs).
SYNTHETIC_METRICS = ["l1", "l2", "spectral", "weight_var"]


def detour_hmm() -> HMMParams:
    """A 4-state left-to-right HMM over 4 metrics with detour state 3 (0 → 3 → 1)."""
    transmat = np.array(
        [
            [0.90, 0.05, 0.00, 0.05],
            [0.00, 0.93, 0.07, 0.00],
            [0.00, 0.00, 1.00, 0.00],
            [0.00, 0.05, 0.00, 0.95],
        ]
    )
    means = np.array(
        [
            [0.0, 0.0, 0.0, 0.0],
            [3.0, -2.0, 1.0, 0.0],
            [5.0, -4.0, 4.0, 2.0],
            [-3.0, 2.0, 2.0, -3.0],
        ]
    )
    covars = np.stack([0.3 * np.eye(4) + 0.1 for _ in range(4)])
    return HMMParams(np.array([1.0, 0, 0, 0]), transmat, means, covars, SYNTHETIC_METRICS)


def sample_runs(
    params: HMMParams,
    n_runs: int,
    length: int | tuple[int, int],
    seed: int | list[int] = 0,
    accuracy: np.ndarray | None = None,
    eval_noise: float = 0.03,
) -> pd.DataFrame:
    """Sample ``n_runs`` runs of ``length`` checkpoints; the true state is in column ``state``.

    ``length`` (low, high): each run's length is drawn uniformly from that range.
    ``accuracy[s]`` is the evaluation accuracy in state s (plus Gaussian noise
    of sd ``eval_noise``, clipped to [0, 1]); default: 0.95 in absorbing states,
    0.1 elsewhere. One checkpoint per epoch, 10 steps per epoch.
    """
    rng = np.random.default_rng(seed)
    k = params.k
    if accuracy is None:
        accuracy = np.where(np.diag(params.transmat) == 1, 0.95, 0.1)
    frames = []
    for run in range(n_runs):
        n = length if isinstance(length, int) else int(rng.integers(length[0], length[1] + 1))
        states = np.empty(n, dtype=np.int64)
        states[0] = rng.choice(k, p=params.startprob)
        for t in range(1, n):
            states[t] = rng.choice(k, p=params.transmat[states[t - 1]])
        noise = np.stack(
            [
                rng.multivariate_normal(np.zeros(len(params.metrics)), params.covars[s])
                for s in states
            ]
        )
        frame = pd.DataFrame(params.means[states] + noise, columns=params.metrics)
        frame.insert(0, RUN, run)
        frame.insert(1, STEP, np.arange(n) * 10)
        frame.insert(2, EPOCH, np.arange(n, dtype=float))
        frame[EVAL_ACC] = np.clip(accuracy[states] + rng.normal(0, eval_noise, n), 0, 1)
        frame[DIVERGED] = False
        frame[STATE] = states
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def graph_hmm(
    successors: dict[int, list[int]],
    n_metrics: int = 4,
    stay: float = 0.9,
    slow: dict[int, float] | None = None,
    separation: float = 3.5,
    seed: int = 0,
) -> HMMParams:
    """A left-to-right Gaussian HMM over the graph ``successors`` (state → next states).

    Runs start in state 0, stay in a state with probability ``stay`` (``slow[s]``
    for the states in ``slow``) and leave it for each of its successors with
    equal probability; a state with no successors is absorbing. State means are
    drawn N(0, 3²) per metric, redrawn until every pair lies at least
    ``separation`` apart; every state has the covariance of :func:`detour_hmm`
    (variance 0.4, covariance 0.1).
    """
    k = 1 + max(max(successors), *(t for ts in successors.values() for t in ts))
    transmat = np.eye(k)
    for source, targets in successors.items():
        kept = (slow or {}).get(source, stay)
        transmat[source, source] = kept
        transmat[source, targets] = (1 - kept) / len(targets)
    rng = np.random.default_rng(seed)
    while True:
        means = rng.normal(0, 3, (k, n_metrics))
        gaps = np.linalg.norm(means[:, None] - means[None], axis=2)
        if gaps[np.triu_indices(k, 1)].min() >= separation:
            break
    covars = np.stack([0.3 * np.eye(n_metrics) + 0.1] * k)
    metrics = [f"metric_{i}" for i in range(n_metrics)]
    return HMMParams(np.eye(k)[0], transmat, means, covars, metrics)


def mixed_metrics(params: HMMParams, n_metrics: int = 14, noise: float = 0.05, seed: int = 0):
    """The same HMM seen through ``n_metrics`` correlated metrics.

    Each observed metric is a random linear mixture of the original ones plus
    independent noise of variance ``noise``, so the metrics are nearly collinear,
    as the 14 weight metrics of a network are.
    """
    mixing = np.random.default_rng(seed).normal(0, 1, (len(params.metrics), n_metrics))
    mixing /= np.sqrt(len(params.metrics))
    covars = np.einsum("ji,kjl,lm->kim", mixing, params.covars, mixing)
    covars += noise * np.eye(n_metrics)
    metrics = [f"metric_{i}" for i in range(n_metrics)]
    return HMMParams(params.startprob, params.transmat, params.means @ mixing, covars, metrics)


@dataclass(frozen=True)
class Scenario:
    """A known truth: an HMM, how many runs of what length, and distortions of the metrics.

    ``offset_sd`` and ``scale_sd``: every run adds its own offset N(0, offset_sd²)
    to each metric and multiplies it by exp(N(0, scale_sd²)), as runs whose
    weights start at different scales do. ``detours``: the true detour states
    (slower convergence, skipped by some runs); ``forking``: whether the true
    map has more than one path.
    """

    name: str
    params: HMMParams
    n_runs: int = 40
    length: int | tuple[int, int] = 100
    offset_sd: float = 0.0
    scale_sd: float = 0.0
    detours: frozenset[int] = field(default_factory=frozenset)
    forking: bool = False
    #: ``(source, target, runs)``: exactly ``runs`` runs leave ``source`` for
    #: ``target``, the others for its other successors (a branch that few runs take).
    branch: tuple[int, int, int] | None = None
    #: Convergence at a time drawn independently of the states (uniform over the
    #: middle half of each run), instead of on reaching an absorbing state.
    independent_convergence: bool = False


def _branch_groups(scenario: Scenario) -> list[tuple[HMMParams, int]]:
    """The HMMs the runs are sampled from, with their run counts (see ``Scenario.branch``)."""
    if scenario.branch is None:
        return [(scenario.params, scenario.n_runs)]
    source, target, runs = scenario.branch
    groups = []
    for taken, count in ((True, runs), (False, scenario.n_runs - runs)):
        transmat = scenario.params.transmat.copy()
        leaving = 1 - transmat[source, source]
        others = [t for t in np.flatnonzero(transmat[source]) if t not in (source, target)]
        transmat[source, [t for t in range(len(transmat)) if t != source]] = 0
        transmat[source, [target] if taken else others] = leaving / (1 if taken else len(others))
        p = scenario.params
        groups.append((HMMParams(p.startprob, transmat, p.means, p.covars, p.metrics), count))
    return groups


def sample_scenario(scenario: Scenario, seed: int = 0) -> pd.DataFrame:
    """Sample a scenario's runs (true state in column ``state``), distortions applied."""
    groups = []
    for i, (params, count) in enumerate(_branch_groups(scenario)):
        group = sample_runs(params, count, scenario.length, seed=seed if i == 0 else [seed, 2])
        groups.append(group.assign(**{RUN: group[RUN] + sum(len(g[RUN].unique()) for g in groups)}))
    runs = pd.concat(groups, ignore_index=True)
    if scenario.independent_convergence:
        rng = np.random.default_rng([seed, 3])
        length = runs.groupby(RUN)[RUN].transform("size").to_numpy()
        position = runs.groupby(RUN).cumcount().to_numpy()
        start = rng.uniform(0.25, 0.75, scenario.n_runs)[runs[RUN].to_numpy()] * length
        accuracy = np.where(position >= start, 0.95, 0.1)
        runs[EVAL_ACC] = np.clip(accuracy + rng.normal(0, 0.03, len(runs)), 0, 1)
    metrics = scenario.params.metrics
    rng = np.random.default_rng([seed, 1])
    shape = (scenario.n_runs, len(metrics))
    offsets = rng.normal(0, scenario.offset_sd, shape)
    scales = np.exp(rng.normal(0, scenario.scale_sd, shape))
    by_run = runs[RUN].to_numpy()
    runs[metrics] = runs[metrics].to_numpy() * scales[by_run] + offsets[by_run]
    return runs


def branch_occupancy(rng: np.random.Generator, runs: int, visitors: int) -> pd.DataFrame:
    """State fractions (runs × states 0, 1, 2): every run starts in 0 and ends in 2, and
    ``visitors`` runs chosen at random pass through 1 (a branch few runs take)."""
    fractions = np.zeros((runs, 3))
    fractions[:, 0] = rng.uniform(0.2, 0.4, runs)
    branch = rng.choice(runs, visitors, replace=False)
    fractions[branch, 1] = rng.uniform(0.1, 0.3, visitors)
    fractions[:, 2] = 1 - fractions.sum(axis=1)
    return pd.DataFrame(fractions, columns=[0, 1, 2])


DETOUR = {0: [1, 3], 1: [2], 3: [1]}  # detour_hmm's graph: 0 → 3 → 1 is the slow way
FORK = {0: [1, 2], 1: [3], 2: [3]}  # two equally fast ways from 0 to 3
PATH = {0: [1], 1: [2], 2: [3]}
#: Eight states: the main path 0 → 1 → 2 → 3 → 4 → 5, and a detour 2 → 6 → 7 → 3.
LONG_DETOUR = {0: [1], 1: [2], 2: [3, 6], 3: [4], 4: [5], 6: [7], 7: [3]}


def detour_graph_hmm() -> HMMParams:
    """:data:`DETOUR` with a slow detour: 20 checkpoints in state 3 on average, 10 elsewhere."""
    return graph_hmm(DETOUR, slow={3: 0.95})


SCENARIOS = [
    Scenario("detour", detour_graph_hmm(), detours=frozenset({3}), forking=True),
    Scenario("fork", graph_hmm(FORK), forking=True),
    Scenario("one path", graph_hmm(PATH)),
    Scenario("2 states", graph_hmm({0: [1]})),
    Scenario(
        "8 states, detour",
        graph_hmm(LONG_DETOUR, slow={6: 0.93, 7: 0.93}),
        length=150,
        detours=frozenset({6, 7}),
        forking=True,
    ),
    Scenario(
        "unequal lengths",
        detour_graph_hmm(),
        length=(50, 100),
        detours=frozenset({3}),
        forking=True,
    ),
    Scenario(
        "per-run offsets, scales",
        detour_graph_hmm(),
        offset_sd=0.5,
        scale_sd=0.2,
        detours=frozenset({3}),
        forking=True,
    ),
    Scenario(
        "correlated metrics",
        mixed_metrics(detour_graph_hmm()),
        detours=frozenset({3}),
        forking=True,
    ),
    Scenario(
        "10 runs, detour", detour_graph_hmm(), n_runs=10, detours=frozenset({3}), forking=True
    ),
    Scenario("10 runs, one path", graph_hmm(PATH), n_runs=10),
    Scenario(
        "20 runs, detour", detour_graph_hmm(), n_runs=20, detours=frozenset({3}), forking=True
    ),
    Scenario("rare branch, 1 run", graph_hmm(FORK), branch=(0, 2, 1), forking=True),
    Scenario("rare branch, 2 runs", graph_hmm(FORK), branch=(0, 2, 2), forking=True),
    Scenario(
        "convergence independent of states",
        detour_graph_hmm(),
        forking=True,
        independent_convergence=True,
    ),
]
