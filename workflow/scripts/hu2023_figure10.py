"""Figure 10: model-selection curves, one panel per setting (rule hu2023_figure10)."""

import pandas as pd

from trainmap.figures.hu2023 import model_selection, read_panels
from trainmap.jobs import job

with job(snakemake) as log:
    smk = snakemake
    names = [p["name"] for p in smk.params.panels]
    panels = read_panels(smk.params.panels, smk.input.splits)
    selections = {n: pd.read_csv(f) for n, f in zip(names, smk.input.selections, strict=True)}
    model_selection(panels, selections, smk.params.scale, smk.output[0])
