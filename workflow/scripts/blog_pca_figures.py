"""The PCA trajectory beside the loss curve: HTML (self-contained) and PNG."""

import pandas as pd

from trainmap.figures.blog2025 import Label, pca_figures
from trainmap.jobs import job

with job(snakemake):
    smk = snakemake
    pca_figures(
        pd.read_parquet(smk.input.trajectory),
        pd.read_csv(smk.input.variance),
        pd.read_csv(smk.input.turn),
        Label(**smk.params.label, examples=smk.params.blog["examples"]),
        dict(smk.output.items()),
    )
