"""Error of the predicted convergence time against the prefix, one panel per setting
(rule hu2023_prediction)."""

from trainmap.figures.hu2023 import prediction_errors, read_panels, read_tables
from trainmap.jobs import job

with job(snakemake):
    smk = snakemake
    summaries = read_tables(smk.params.panels, smk.input.evaluations)
    panels = read_panels(smk.params.panels, smk.input.splits)
    prediction_errors(panels, summaries, smk.params.seeds, smk.params.scale, smk.output[0])
