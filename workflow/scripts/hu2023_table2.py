"""Table 2: regression coefficients per state, detours marked (rule hu2023_table2)."""

import pandas as pd

from trainmap.figures.hu2023 import read_panels, table2, table2_markdown
from trainmap.jobs import job
from trainmap.tables import write_table

with job(snakemake) as log:
    smk = snakemake
    names = [p["name"] for p in smk.params.panels]
    coefficients = {n: pd.read_csv(f) for n, f in zip(names, smk.input.coefficients, strict=True)}
    panels = read_panels(smk.params.panels, smk.input.splits)
    table = table2(panels, coefficients)
    write_table(table, smk.output.csv)
    write_table(table2_markdown(table), smk.output.md)
