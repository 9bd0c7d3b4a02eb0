"""Table 1: R² with intervals, p-value, dissimilarity, forking per setting (rule hu2023_table1)."""

import pandas as pd

from trainmap.figures.hu2023 import read_panels, table1
from trainmap.jobs import job
from trainmap.tables import write_table

with job(snakemake) as log:
    smk = snakemake
    names = [p["name"] for p in smk.params.panels]
    summaries = {n: pd.read_csv(f) for n, f in zip(names, smk.input.summaries, strict=True)}
    selections = {n: pd.read_csv(f) for n, f in zip(names, smk.input.selections, strict=True)}
    panels = read_panels(smk.params.panels, smk.input.splits)
    table = table1(panels, summaries, selections)
    write_table(table, smk.output.csv)
    write_table(table, smk.output.md)
