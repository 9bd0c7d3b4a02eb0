"""Table 2: regression coefficients per state, detours marked (rule hu2023_table2)."""

from trainmap.figures.hu2023 import read_panels, read_tables, table2, table2_markdown
from trainmap.jobs import job
from trainmap.tables import write_table

with job(snakemake):
    smk = snakemake
    coefficients = read_tables(smk.params.panels, smk.input.coefficients)
    panels = read_panels(smk.params.panels, smk.input.splits)
    table = table2(panels, coefficients)
    write_table(table, smk.output.csv)
    write_table(table2_markdown(table), smk.output.md)
