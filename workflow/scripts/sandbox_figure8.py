"""Figure 8: attention maps at initialisation and at the end (rule sandbox_figure8)."""

from trainmap.figures.sandbox2025_frames import figure8
from trainmap.jobs import job

with job(snakemake):
    figure8(
        snakemake.input.logs,
        snakemake.input.weights,
        snakemake.output[0],
        scale=snakemake.params.scale,
    )
