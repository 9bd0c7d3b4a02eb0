"""Decodings and edges of the map across restarts and bootstrap resamples (rule stability)."""

import pandas as pd

from trainmap.analysis.hmm import FitOptions
from trainmap.analysis.normalize import zscore_metrics
from trainmap.analysis.stability import stability
from trainmap.jobs import job
from trainmap.tables import write_table

with job(snakemake):
    smk = snakemake
    zscores = pd.read_parquet(smk.input.zscores)
    replicates, edges = stability(
        zscores,
        zscore_metrics(zscores),
        pd.read_parquet(smk.input.states),
        FitOptions(**smk.params.options),
        smk.params.resamples,
    )
    write_table(replicates, smk.output.replicates)
    write_table(edges, smk.output.edges)
