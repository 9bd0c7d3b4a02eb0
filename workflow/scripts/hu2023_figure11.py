"""Figure 11: convergence-time histograms, one panel per setting (rule hu2023_figure11)."""

import pandas as pd

from trainmap.figures.hu2023 import convergence_histograms, read_panels
from trainmap.jobs import job

with job(snakemake) as log:
    smk = snakemake
    names = [p["name"] for p in smk.params.panels]
    convergence = {n: pd.read_csv(f) for n, f in zip(names, smk.input.convergence, strict=True)}
    panels = read_panels(smk.params.panels, smk.input.splits)
    convergence_histograms(
        panels, convergence, smk.params.thresholds, smk.params.scale, smk.output[0]
    )
