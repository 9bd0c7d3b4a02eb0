"""Loss curves of every run and train/validation curves of the blog run."""

import pandas as pd

from trainmap.figures.blog2025 import Label, loss_curve_figures
from trainmap.jobs import job
from trainmap.tables import RUN, read_metrics_table

with job(snakemake):
    smk = snakemake
    table = read_metrics_table(smk.input.metrics)
    label = Label(**smk.params.label, runs=table[RUN].nunique())
    events = pd.read_csv(smk.input.events)
    loss_curve_figures(table, events, label, smk.output.loss_curve, smk.output.run_curves)
