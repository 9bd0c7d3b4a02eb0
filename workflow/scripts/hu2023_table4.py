"""Table 4: components and held-out BIC of K-means, HMM-1 and the HMM (rule hu2023_table4)."""

import pandas as pd

from trainmap.figures.hu2023 import read_panels, table4
from trainmap.jobs import job
from trainmap.tables import write_table

with job(snakemake) as log:
    smk = snakemake
    names = [p["name"] for p in smk.params.panels]
    panels = read_panels(smk.params.panels, smk.input.splits)
    table = table4(
        panels,
        {n: pd.read_csv(f) for n, f in zip(names, smk.input.hmm, strict=True)},
        {n: pd.read_csv(f) for n, f in zip(names, smk.input.baselines, strict=True)},
    )
    write_table(table, smk.output.csv)
    write_table(table, smk.output.md)
