"""Figures 15, 16, 18, 19: loss and per-layer gradient norms (rule sandbox_gradnorms)."""

from trainmap.jobs import job
from trainmap.sandbox.figures import gradnorm_figure

with job(snakemake) as log:  # noqa: F821
    gradnorm_figure(
        int(snakemake.wildcards.gradnorm_figure),  # noqa: F821
        snakemake.input,  # noqa: F821
        snakemake.output[0],  # noqa: F821
        scale=snakemake.params.scale,  # noqa: F821
        batch=snakemake.params.batch,  # noqa: F821
    )
