"""Refit the chosen HMM on all runs, save it, decode every run (rule fit_hmm)."""

import pandas as pd

from trainmap.analysis import hmm
from trainmap.analysis.normalize import zscore_metrics
from trainmap.jobs import job
from trainmap.tables import write_table

with job(snakemake):
    smk = snakemake
    zscores = pd.read_parquet(smk.input.zscores)
    selection = pd.read_csv(smk.input.selection)
    k = hmm.chosen_k(selection)
    metrics = zscore_metrics(zscores)
    model = hmm.fit(zscores, metrics, k, hmm.FitOptions(**smk.params.options))
    hmm.save(model, metrics, smk.output.model, smk.output.arrays)
    write_table(hmm.decode(model, zscores, metrics), smk.output.states)
