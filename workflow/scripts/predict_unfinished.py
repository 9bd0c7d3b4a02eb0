"""Convergence of an experiment's unfinished runs, predicted by a map fitted on its
finished ones (rule predict_unfinished)."""

import pandas as pd

from trainmap.analysis import predict
from trainmap.analysis.hmm import FitOptions, chosen_k
from trainmap.analysis.normalize import zscore_metrics
from trainmap.jobs import job
from trainmap.tables import RUN, read_metrics_table, write_table

with job(snakemake) as log:
    smk = snakemake
    convergence = pd.read_csv(smk.input.convergence)
    zscores = pd.read_parquet(smk.input.zscores)
    finished = convergence.loc[convergence["converged"].astype(bool), RUN]
    unfinished = sorted(set(zscores[RUN]) - set(finished))
    columns = [RUN, "method", "at", "predicted", "low", "high", "runs"]
    if not unfinished:
        log.info("every run has converged: nothing to predict")
        predictions = pd.DataFrame(columns=columns)
    else:
        table = read_metrics_table(smk.input.table)
        predictor = predict.ConvergencePredictor(
            chosen_k(pd.read_csv(smk.input.selection)),
            zscore_metrics(zscores),
            smk.params.threshold,
            FitOptions(**smk.params.options),
            smk.params.level,
            smk.params.window,
        ).fit(table, convergence)
        predictions = predictor.predict(table[table[RUN].isin(unfinished)], predict.METHODS)
        log.info("%d unfinished runs predicted:\n%s", len(unfinished), predictions.to_string())
    write_table(predictions, smk.output[0])
