"""Metric tables sampled from a known Gaussian HMM: the known answers the tests check against.

:func:`detour_hmm` plants a detour: runs start in state 0 and end in state 2;
some go 0 → 1 → 2, others take the slow way 0 → 3 → 1 → 2 and converge later.
"""

from __future__ import annotations

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
    length: int,
    seed: int = 0,
    accuracy: np.ndarray | None = None,
    eval_noise: float = 0.03,
) -> pd.DataFrame:
    """Sample ``n_runs`` runs of ``length`` checkpoints; the true state is in column ``state``.

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
        states = np.empty(length, dtype=np.int64)
        states[0] = rng.choice(k, p=params.startprob)
        for t in range(1, length):
            states[t] = rng.choice(k, p=params.transmat[states[t - 1]])
        noise = np.stack(
            [
                rng.multivariate_normal(np.zeros(len(params.metrics)), params.covars[s])
                for s in states
            ]
        )
        frame = pd.DataFrame(params.means[states] + noise, columns=params.metrics)
        frame.insert(0, RUN, run)
        frame.insert(1, STEP, np.arange(length) * 10)
        frame.insert(2, EPOCH, np.arange(length, dtype=float))
        frame[EVAL_ACC] = np.clip(accuracy[states] + rng.normal(0, eval_noise, length), 0, 1)
        frame[DIVERGED] = False
        frame[STATE] = states
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
