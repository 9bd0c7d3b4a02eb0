"""The blog run's training curve coloured by HMM state, and the state graph."""

import pandas as pd

from trainmap.analysis.hmm import HMMParams
from trainmap.analysis.pca import run_rows
from trainmap.analysis.phases import run_states
from trainmap.figures.blog2025 import Label, hmm_figures
from trainmap.jobs import job
from trainmap.tables import RUN, read_metrics_table

with job(snakemake):
    smk = snakemake
    states = pd.read_parquet(smk.input.states)
    label = Label(**smk.params.label, runs=states[RUN].nunique())
    rows = run_rows(read_metrics_table(smk.input.metrics), label.run, smk.input.metrics)
    hmm_figures(
        run_states(states, rows, label.run),
        pd.read_csv(smk.input.edges),
        HMMParams.load(smk.input.model).k,
        label,
        dict(smk.output.items()),
    )
