"""Table 1: R² with intervals, p-value, dissimilarity, forking per setting (rule hu2023_table1)."""

from trainmap.figures.hu2023 import read_panels, read_tables, table1
from trainmap.jobs import job
from trainmap.tables import write_table

with job(snakemake):
    smk = snakemake
    summaries = read_tables(smk.params.panels, smk.input.summaries)
    selections = read_tables(smk.params.panels, smk.input.selections)
    panels = read_panels(smk.params.panels, smk.input.splits)
    table = table1(panels, summaries, selections, smk.params.normalization)
    write_table(table, smk.output.csv)
    write_table(table, smk.output.md)
