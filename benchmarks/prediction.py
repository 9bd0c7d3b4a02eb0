"""Early convergence prediction: known-truth rates over fresh seeds, and its cost.

Rates: on the two known truths of ``tests/test_predict.py`` (an early detour that
slows runs; convergence independent of the states), over ``--seeds`` fresh seeds, how
often the K-fold evaluation at 25 % of the median convergence time finds the map
better than the mean of the other runs (one-sided sign-flip p < 0.05), and the map's
interval coverage and width against the mean baseline's. With the detour this is the
power, with independent convergence the false-alarm rate (5 % or less if calibrated).

Cost: CPU seconds of :func:`trainmap.analysis.predict.evaluate` on a table the size of
a default setting (10 runs, ``--checkpoints`` checkpoints, 14 correlated metrics,
4 restarts, diagonal covariances) at k = 4 and 6.

    OMP_NUM_THREADS=1 python benchmarks/prediction.py --seeds 10
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from trainmap.analysis import predict, regression, synthetic
from trainmap.analysis.hmm import FitOptions

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from test_predict import evaluation  # noqa: E402  (the tests' known truths, not a copy)


def rates(seeds: range) -> pd.DataFrame:
    rows = []
    for independent in (False, True):
        for seed in seeds:
            summary = evaluation(independent, seed)
            rows.append(
                {
                    "truth": "independent" if independent else "early detour",
                    "seed": seed,
                    "map_better": summary.loc["mean", "p_map_better"] < 0.05,
                    "map_error": summary.loc["map", "mean_log_error"],
                    "mean_error": summary.loc["mean", "mean_log_error"],
                    "map_coverage": summary.loc["map", "coverage"],
                    "width_ratio": summary.loc["map", "width_log"]
                    / summary.loc["mean", "width_log"],
                }
            )
            print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def cost(checkpoints: int) -> dict[int, float]:
    params = synthetic.mixed_metrics(synthetic.detour_graph_hmm())
    table = synthetic.sample_scenario(
        synthetic.Scenario("cost", params, n_runs=10, length=checkpoints), 0
    )
    convergence = regression.convergence_times(table, 0.9)
    options = FitOptions(restarts=4, covariance_type="diag")
    seconds = {}
    for k in (4, 6):
        start = time.process_time()
        predict.evaluate(
            table,
            convergence,
            lambda k=k: predict.ConvergencePredictor(k, params.metrics, 0.9, options),
        )
        seconds[k] = time.process_time() - start
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="fresh seeds from 1000")
    parser.add_argument("--checkpoints", type=int, default=200)
    args = parser.parse_args()
    print(f"evaluation CPU seconds, 10 runs × {args.checkpoints}: {cost(args.checkpoints)}")
    table = rates(range(1000, 1000 + args.seeds))
    summary = table.groupby("truth").agg(
        seeds=("seed", "size"),
        map_better=("map_better", "mean"),
        map_error=("map_error", "mean"),
        mean_error=("mean_error", "mean"),
        map_coverage=("map_coverage", "mean"),
        min_width_ratio=("width_ratio", "min"),
    )
    print(summary.round(3).to_string())


if __name__ == "__main__":
    main()
