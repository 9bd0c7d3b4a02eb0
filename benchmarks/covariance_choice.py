"""Which covariance type do held-out runs prefer? Diagonal against full, on real metrics tables.

For each metrics table given (a trained setting's ``results/runs/<name>/metrics.parquet``
or your own runs), z-scores and splits the runs as rule ``normalize`` does with the
``analysis`` section of a config (default ``config/config.yaml``), sweeps k = 1..k_max
with K folds for ``diag`` and for ``full`` covariances, and prints per table and type
the chosen k and its held-out BIC (all folds' held-out runs together) next to k = 1::

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/covariance_choice.py \\
        results/runs/*/metrics.parquet
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import yaml

from trainmap.analysis import hmm, normalize
from trainmap.analysis.recovery import fit_options
from trainmap.jobs import limit_threads
from trainmap.tables import read_metrics_table

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tables", type=Path, nargs="+")
    parser.add_argument("--config", type=Path, default=ROOT / "config/config.yaml")
    args = parser.parse_args()
    limit_threads(1)
    analysis = yaml.safe_load(args.config.read_text())["analysis"]
    rows = []
    for path in args.tables:
        table = read_metrics_table(path)
        zscores, split = normalize.normalize_runs(
            table,
            normalize.metric_columns(table),
            max_checkpoints=analysis["zscore_checkpoints"],
            min_length=analysis["k_max"],
            normalization="pooled",
            selection="kfold",
            folds=analysis["folds"],
            held_out_fraction=analysis["held_out_fraction"],
            seed=analysis["seed"],
        )
        metrics = normalize.zscore_metrics(zscores)
        for covariance_type in ("diag", "full"):
            options = fit_options({**analysis, "covariance_type": covariance_type})
            sweep = pd.concat(
                [
                    hmm.sweep(zscores, split, metrics, k, options)
                    for k in range(1, analysis["k_max"] + 1)
                ],
                ignore_index=True,
            )
            selection = hmm.select_states(sweep, analysis["criterion"])
            chosen = selection.loc[selection["chosen"]].iloc[0]
            rows.append(
                {
                    "table": str(path),
                    "covariance_type": covariance_type,
                    "chosen_k": int(chosen["k"]),
                    "heldout_bic": chosen["heldout_bic"],
                    "heldout_bic_se": chosen["heldout_bic_se"],
                    "heldout_bic_k1": selection.loc[0, "heldout_bic"],
                }
            )
            print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1), flush=True)
    print()
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".0f"))


if __name__ == "__main__":
    main()
