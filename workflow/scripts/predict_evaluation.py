"""Convergence predicted from each run's first checkpoints, K-fold over runs, against
three baselines (rule predict_evaluation)."""

import pandas as pd

from trainmap.analysis import predict
from trainmap.analysis.hmm import FitOptions, chosen_k
from trainmap.analysis.normalize import zscore_metrics
from trainmap.jobs import job
from trainmap.tables import read_metrics_table, write_table

with job(snakemake) as log:
    smk = snakemake
    convergence = pd.read_csv(smk.input.convergence)
    finished = int(convergence["converged"].sum())
    if finished < predict.MIN_EVALUATION_RUNS:
        log.warning(
            "%d converged runs, fewer than the %d the evaluation needs: no prediction evaluated",
            finished,
            predict.MIN_EVALUATION_RUNS,
        )
        predictions = pd.DataFrame(columns=predict.PREDICTION_COLUMNS)
    else:
        metrics = zscore_metrics(pd.read_parquet(smk.input.zscores))
        k = chosen_k(pd.read_csv(smk.input.selection))
        options = FitOptions(**smk.params.options)

        def make():
            return predict.ConvergencePredictor(
                k, metrics, smk.params.threshold, options, smk.params.level, smk.params.window
            )

        predictions = predict.evaluate(
            read_metrics_table(smk.input.table), convergence, make, seed=options.seed
        )
    summary = predict.summarize(predictions)
    log.info("prediction errors:\n%s", summary.to_string())
    write_table(predictions, smk.output.predictions)
    write_table(summary, smk.output.evaluation)
