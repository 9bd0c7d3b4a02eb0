"""How often a Baum-Welch restart reaches the best fit: hmmlearn's K-means start against ours.

For scenarios of the recovery benchmark (``trainmap.analysis.synthetic``), at the
true state count, on the fit runs of every fold of the workflow's split (pooled
z-scores, 5 folds), fits ``--restarts`` seeded restarts twice: started as
hmmlearn starts them (the K-means clustering with the lowest sum of squares
over 10 seeds) and as ``trainmap.analysis.hmm.fit_restart`` starts them (the
most likely of 10 Gaussian mixtures). Prints per scenario and start the share
of restarts whose log-likelihood is within 1 of the best any restart of that
fold reached, and the seconds per restart::

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/initialisation.py
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import pandas as pd
from hmmlearn.hmm import GaussianHMM

from trainmap.analysis import hmm, normalize
from trainmap.analysis.synthetic import SCENARIOS, sample_scenario
from trainmap.jobs import limit_threads

DEFAULT_SCENARIOS = ["fork", "8 states, detour", "correlated metrics"]


def kmeans_start(
    X: np.ndarray, lengths: np.ndarray, k: int, restart: int, options: hmm.FitOptions
) -> GaussianHMM | None:
    """A restart as hmmlearn starts it by default."""
    model = GaussianHMM(
        n_components=k,
        covariance_type=options.covariance_type,
        n_iter=options.n_iter,
        tol=options.tol,
        min_covar=options.min_covar,
        random_state=hmm.restart_seed(options.seed, k, restart),
    )
    try:
        return model.fit(X, lengths)
    except (ValueError, np.linalg.LinAlgError):
        return None


STARTS = {"hmmlearn K-means": kmeans_start, "mixture (trainmap)": hmm.fit_restart}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scenario", action="append", help="default: " + ", ".join(DEFAULT_SCENARIOS)
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampled runs")
    parser.add_argument("--restarts", type=int, default=8)
    parser.add_argument("--covariance-type", default="full", choices=["full", "diag"])
    args = parser.parse_args()
    limit_threads(1)
    logging.disable(logging.WARNING)
    options = hmm.FitOptions(covariance_type=args.covariance_type)
    rows = []
    for scenario in SCENARIOS:
        if scenario.name not in (args.scenario or DEFAULT_SCENARIOS):
            continue
        table = sample_scenario(scenario, args.seed).drop(columns="state")
        zscores, split = normalize.normalize_runs(table, scenario.params.metrics)
        k = scenario.params.k
        for fold, fit_runs, _ in hmm.folds(split):
            X, lengths = hmm.sequences(zscores, scenario.params.metrics, fit_runs)
            found = {}
            for start, fit in STARTS.items():
                begin = time.perf_counter()
                models = [fit(X, lengths, k, r, options) for r in range(args.restarts)]
                seconds = (time.perf_counter() - begin) / args.restarts
                found[start] = ([m.score(X, lengths) if m else -np.inf for m in models], seconds)
            best = max(max(scores) for scores, _ in found.values())
            for start, (scores, seconds) in found.items():
                rows.append(
                    {
                        "scenario": scenario.name,
                        "start": start,
                        "fold": fold,
                        "reached_best": np.mean(np.array(scores) >= best - 1),
                        "seconds_per_restart": seconds,
                    }
                )
    table = pd.DataFrame(rows).groupby(["scenario", "start"], sort=False)
    print(table[["reached_best", "seconds_per_restart"]].mean().to_markdown(floatfmt=".2f"))


if __name__ == "__main__":
    main()
