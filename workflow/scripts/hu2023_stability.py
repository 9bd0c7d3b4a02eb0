"""Stability of every training map, one row per setting (rule hu2023_stability)."""

import pandas as pd

from trainmap.figures.hu2023 import read_panels, stability_table
from trainmap.jobs import job
from trainmap.tables import write_table

with job(snakemake) as log:
    smk = snakemake
    names = [p["name"] for p in smk.params.panels]
    replicates = {n: pd.read_csv(f) for n, f in zip(names, smk.input.replicates, strict=True)}
    edges = {n: pd.read_csv(f) for n, f in zip(names, smk.input.edges, strict=True)}
    panels = read_panels(smk.params.panels, smk.input.splits)
    table = stability_table(panels, replicates, edges)
    write_table(table, smk.output.csv)
    write_table(table, smk.output.md)
