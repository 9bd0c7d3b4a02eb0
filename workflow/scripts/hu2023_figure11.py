"""Figure 11: convergence-time histograms, one panel per setting (rule hu2023_figure11)."""

import pandas as pd

from trainmap.figures.hu2023 import Panel, convergence_histograms
from trainmap.jobs import job

with job(snakemake) as log:
    smk = snakemake
    names = [p["name"] for p in smk.params.panels]
    convergence = {n: pd.read_csv(f) for n, f in zip(names, smk.input.convergence, strict=True)}
    panels = [Panel(**p, runs=len(convergence[p["name"]])) for p in smk.params.panels]
    convergence_histograms(
        panels, convergence, smk.params.thresholds, smk.params.scale, smk.output[0]
    )
