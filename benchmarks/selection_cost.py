"""CPU cost of choosing k: K-fold cross-validation against the paper's single split.

On a table of the default config's size (10 runs × 150 checkpoints × 14 correlated
metrics, sampled from the detour scenario's HMM), times the sweep k = 1..k_max of
the ``analysis`` section of a config (default ``config/config.yaml``) with the
paper's holdout split and with K folds, for diagonal and full covariances and
both restart starts (``analysis.init``), in one process, and prints the seconds,
the chosen k, and the ratios against the holdout sweep and the K-means start::

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/selection_cost.py
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import pandas as pd
import yaml

from trainmap.analysis import hmm, normalize
from trainmap.analysis.synthetic import detour_graph_hmm, mixed_metrics, sample_runs
from trainmap.jobs import limit_threads

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "config/config.yaml")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--length", type=int, default=150)
    parser.add_argument(
        "--covariance-type", action="append", choices=["diag", "full"], help="default: both"
    )
    args = parser.parse_args()
    limit_threads(1)
    analysis = yaml.safe_load(args.config.read_text())["analysis"]
    params = mixed_metrics(detour_graph_hmm())
    table = sample_runs(params, args.runs, args.length, seed=0).drop(columns="state")
    rows = []
    for init, covariance_type in itertools.product(
        hmm.INITS, args.covariance_type or ("diag", "full")
    ):
        options = hmm.FitOptions(
            restarts=analysis["restarts"],
            seed=0,
            n_iter=analysis["n_iter"],
            tol=analysis["tol"],
            min_covar=analysis["min_covar"],
            covariance_type=covariance_type,
            init=init,
        )
        for selection in ("holdout", "kfold"):
            zscores, split = normalize.normalize_runs(
                table, params.metrics, selection=selection, folds=analysis["folds"]
            )
            start = time.perf_counter()
            sweep = pd.concat(
                [
                    hmm.sweep(zscores, split, params.metrics, k, options)
                    for k in range(1, analysis["k_max"] + 1)
                ]
            )
            seconds = time.perf_counter() - start
            chosen = hmm.chosen_k(hmm.select_states(sweep))
            rows.append(
                {
                    "init": init,
                    "covariance": covariance_type,
                    "selection": selection,
                    "seconds": seconds,
                    "chosen_k": chosen,
                }
            )
            print(rows[-1], flush=True)
    out = pd.DataFrame(rows)
    keys = ["init", "covariance"]
    holdout = out[out["selection"] == "holdout"].set_index(keys)["seconds"]
    out["ratio to holdout"] = (
        out["seconds"] / holdout.loc[pd.MultiIndex.from_frame(out[keys])].to_numpy()
    )
    kmeans = out[out["init"] == "kmeans"].set_index(["covariance", "selection"])["seconds"]
    same = pd.MultiIndex.from_frame(out[["covariance", "selection"]])
    out["ratio to kmeans start"] = out["seconds"] / kmeans.loc[same].to_numpy()
    print(out.to_markdown(index=False, floatfmt=".2f"))


if __name__ == "__main__":
    main()
