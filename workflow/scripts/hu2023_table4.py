"""Table 4: components and held-out BIC of K-means, HMM-1 and the HMM (rule hu2023_table4)."""

from trainmap.figures.hu2023 import read_panels, read_tables, table4
from trainmap.jobs import job
from trainmap.tables import write_table

with job(snakemake):
    smk = snakemake
    panels = read_panels(smk.params.panels, smk.input.splits)
    table = table4(
        panels,
        read_tables(smk.params.panels, smk.input.hmm),
        read_tables(smk.params.panels, smk.input.baselines),
    )
    write_table(table, smk.output.csv)
    write_table(table, smk.output.md)
