"""Stability of every training map, one row per setting (rule hu2023_stability)."""

from trainmap.figures.hu2023 import read_panels, read_tables, stability_table
from trainmap.jobs import job
from trainmap.tables import write_table

with job(snakemake):
    smk = snakemake
    replicates = read_tables(smk.params.panels, smk.input.replicates)
    edges = read_tables(smk.params.panels, smk.input.edges)
    panels = read_panels(smk.params.panels, smk.input.splits)
    table = stability_table(panels, replicates, edges)
    write_table(table, smk.output.csv)
    write_table(table, smk.output.md)
