"""Fit one number of hidden states with every restart; score held-out runs (rule bic_sweep)."""

import pandas as pd

from trainmap.analysis.hmm import FitOptions, sweep
from trainmap.analysis.normalize import zscore_metrics
from trainmap.jobs import job
from trainmap.tables import write_table

with job(snakemake):
    smk = snakemake
    zscores = pd.read_parquet(smk.input.zscores)
    table = sweep(
        zscores,
        pd.read_csv(smk.input.split),
        zscore_metrics(zscores),
        int(smk.wildcards.k),
        FitOptions(**smk.params.options),
        smk.params.aligned,
        smk.threads,
    )
    write_table(table, smk.output[0])
