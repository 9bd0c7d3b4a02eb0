"""Figure 10: model-selection curves, one panel per setting (rule hu2023_figure10)."""

from trainmap.figures.hu2023 import model_selection, read_panels, read_tables
from trainmap.jobs import job

with job(snakemake):
    smk = snakemake
    panels = read_panels(smk.params.panels, smk.input.splits)
    selections = read_tables(smk.params.panels, smk.input.selections)
    model_selection(panels, selections, smk.params.scale, smk.output[0])
