"""Each run's convergence time from its evaluation accuracy (rule convergence)."""

import pandas as pd

from trainmap.analysis.hmm import STATE
from trainmap.analysis.regression import convergence_times
from trainmap.jobs import job
from trainmap.tables import EVAL_ACC, RUN, read_metrics_table, write_table

with job(snakemake) as log:
    smk = snakemake
    table = read_metrics_table(smk.input.table)
    runs = pd.read_parquet(smk.input.states, columns=[RUN, STATE])[RUN].unique()
    if smk.params.threshold is None or EVAL_ACC not in table.columns:
        log.warning("no evaluation accuracy or convergence_threshold: no convergence times")
        times = pd.DataFrame(columns=[RUN, "converged", "step", "time", "unit"])
    else:
        times = convergence_times(
            table[table[RUN].isin(runs)], smk.params.threshold, smk.params.unconverged
        )
    write_table(times, smk.output[0])
