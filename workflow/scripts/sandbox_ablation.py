"""Figures 6 (one seed) and 7 (mean ± std): the ablations (rule sandbox_ablation)."""

from trainmap.figures.sandbox2025 import ablation_figure
from trainmap.jobs import job

with job(snakemake):
    ablation_figure(
        {key: snakemake.input[key] for key in snakemake.params.hyperparameters},
        snakemake.input.base,
        snakemake.output[0],
        scale=snakemake.params.scale,
        averaged=snakemake.wildcards.ablation_figure == "7",
    )
