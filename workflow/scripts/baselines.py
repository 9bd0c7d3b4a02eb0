"""K-means and HMM-1 sweeps of appendix C (rule baselines)."""

import pandas as pd

from trainmap.analysis.baselines import baseline_sweeps
from trainmap.analysis.hmm import FitOptions
from trainmap.analysis.normalize import zscore_metrics
from trainmap.jobs import job
from trainmap.tables import write_table

with job(snakemake):
    smk = snakemake
    zscores = pd.read_parquet(smk.input.zscores)
    sweep, selection = baseline_sweeps(
        zscores,
        pd.read_csv(smk.input.split),
        zscore_metrics(zscores),
        smk.params.k_max,
        FitOptions(**smk.params.options),
        smk.params.criterion,
    )
    write_table(sweep, smk.output.sweep)
    write_table(selection, smk.output.selection)
