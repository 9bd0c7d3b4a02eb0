"""Figures 15, 16, 18, 19: loss and per-layer gradient norms (rule sandbox_gradnorms)."""

from trainmap.jobs import job
from trainmap.sandbox.figures import gradnorm_figure

with job(snakemake) as log:
    gradnorm_figure(
        int(snakemake.wildcards.gradnorm_figure),
        snakemake.input,
        snakemake.output[0],
        scale=snakemake.params.scale,
        batch=snakemake.params.batch,
    )
