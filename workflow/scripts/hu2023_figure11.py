"""Figure 11: convergence-time histograms, one panel per setting (rule hu2023_figure11)."""

from trainmap.figures.hu2023 import convergence_histograms, read_panels, read_tables
from trainmap.jobs import job

with job(snakemake):
    smk = snakemake
    convergence = read_tables(smk.params.panels, smk.input.convergence)
    panels = read_panels(smk.params.panels, smk.input.splits)
    convergence_histograms(
        panels, convergence, smk.params.thresholds, smk.params.scale, smk.output[0]
    )
