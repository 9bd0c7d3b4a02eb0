"""Baselines of Hu et al. (2023), appendix C: K-means over checkpoints and HMM-1 (L2 alone).

Each gets its own sweep over the number of components, scored like the HMM:
fitted on the fit runs of each fold, BIC on its held-out runs.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans

from trainmap.analysis import hmm

log = logging.getLogger(__name__)

HMM1_METRIC = "l2"


def kmeans_loglik(X: np.ndarray, centers: np.ndarray, variance: float) -> float:
    """Log-likelihood of X under hard assignment to the nearest centre, isotropic ``variance``."""
    squared = ((X[:, None, :] - centers[None]) ** 2).sum(axis=2).min(axis=1)
    return float(-0.5 * (X.size * np.log(2 * np.pi * variance) + squared.sum() / variance))


def kmeans_sweep(
    zscores: pd.DataFrame,
    split: pd.DataFrame,
    metrics: list[str],
    k_max: int,
    options: hmm.FitOptions,
) -> pd.DataFrame:
    """K-means for k = 1..k_max, read as an equal-variance spherical Gaussian model.

    Parameters: k d centres and one variance (estimated on the fit runs).
    """
    rows = []
    for fold, fit_runs, held_runs in hmm.folds(split):
        X, _ = hmm.sequences(zscores, metrics, fit_runs)
        X_held, _ = hmm.sequences(zscores, metrics, held_runs)
        for k in range(1, min(k_max, len(X)) + 1):
            kmeans = KMeans(n_clusters=k, n_init=options.restarts, random_state=options.seed)
            kmeans.fit(X)
            variance = kmeans.inertia_ / X.size
            p = k * X.shape[1] + 1
            train, held = (
                kmeans_loglik(X, kmeans.cluster_centers_, variance),
                kmeans_loglik(X_held, kmeans.cluster_centers_, variance),
            )
            rows.append(
                {
                    "k": k,
                    "fold": fold,
                    "restart": 0,
                    "n_params": p,
                    **hmm.scores(train, held, p, len(X), len(X_held)),
                    "converged": kmeans.n_iter_ < kmeans.max_iter,
                    "iterations": kmeans.n_iter_,
                }
            )
    return pd.DataFrame(rows)


def baseline_sweeps(
    zscores: pd.DataFrame,
    split: pd.DataFrame,
    metrics: list[str],
    k_max: int,
    options: hmm.FitOptions,
    criterion: str = "bic",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both baselines' sweeps and selections, with a ``model`` column (kmeans, hmm1).

    HMM-1 needs the ``l2`` metric; without it only K-means is reported (warning).
    """
    sweeps = {"kmeans": kmeans_sweep(zscores, split, metrics, k_max, options)}
    if HMM1_METRIC in metrics:
        sweeps["hmm1"] = pd.concat(
            [hmm.sweep(zscores, split, [HMM1_METRIC], k, options) for k in range(1, k_max + 1)],
            ignore_index=True,
        )
    else:
        log.warning("no %r metric: the HMM-1 baseline is left out", HMM1_METRIC)
    sweep = pd.concat([t.assign(model=m) for m, t in sweeps.items()], ignore_index=True)
    selection = pd.concat(
        [hmm.select_states(t, criterion).assign(model=m) for m, t in sweeps.items()],
        ignore_index=True,
    )
    return sweep, selection
