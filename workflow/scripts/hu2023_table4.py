"""Table 4: components and held-out BIC of K-means, HMM-1 and the HMM (rule hu2023_table4)."""

import pandas as pd

from trainmap.figures.hu2023 import Panel, table4
from trainmap.jobs import job
from trainmap.tables import write_table

with job(snakemake) as log:
    smk = snakemake
    names = [p["name"] for p in smk.params.panels]
    runs = [len(pd.read_csv(f)) for f in smk.input.splits]
    panels = [Panel(**p, runs=r) for p, r in zip(smk.params.panels, runs, strict=True)]
    table = table4(
        panels,
        {n: pd.read_csv(f) for n, f in zip(names, smk.input.hmm, strict=True)},
        {n: pd.read_csv(f) for n, f in zip(names, smk.input.baselines, strict=True)},
    )
    write_table(table, smk.output.csv)
    write_table(table, smk.output.md)
