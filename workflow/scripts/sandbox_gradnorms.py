"""Figures 15, 16, 18, 19: loss and per-layer gradient norms (rule sandbox_gradnorms)."""

from trainmap.figures.sandbox2025 import gradnorm_figure
from trainmap.jobs import job

with job(snakemake):
    gradnorm_figure(
        int(snakemake.wildcards.gradnorm_figure),
        snakemake.input,
        snakemake.output[0],
        scale=snakemake.params.scale,
        batch=snakemake.params.batch,
    )
