"""How often a Baum-Welch restart reaches the best fit, by how the restarts start.

For scenarios of the recovery benchmark (``trainmap.analysis.synthetic``), at the
true state count, on the fit runs of every fold of the workflow's split (pooled
z-scores, 5 folds), fits ``--restarts`` seeded restarts with each ``analysis.init``:
``kmeans`` (hmmlearn's start: the K-means clustering with the lowest sum of
squares over 10 seeds) and ``mixture`` (the most likely of 10 Gaussian
mixtures). Prints per scenario and start the share of restarts whose
log-likelihood is within 1 of the best any restart of that fold reached, and the
seconds per restart::

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/initialisation.py
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import replace

import numpy as np
import pandas as pd

from trainmap.analysis import hmm, normalize
from trainmap.analysis.synthetic import SCENARIOS, sample_scenario
from trainmap.jobs import limit_threads

DEFAULT_SCENARIOS = ["fork", "8 states, detour", "correlated metrics"]


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
            for start in hmm.INITS:
                begin = time.perf_counter()
                start_options = replace(options, init=start)
                models = [
                    hmm.fit_restart(X, lengths, k, r, start_options) for r in range(args.restarts)
                ]
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
