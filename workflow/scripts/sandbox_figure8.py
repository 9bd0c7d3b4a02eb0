"""Figure 8: attention maps at initialisation and at the end (rule sandbox_figure8)."""

from trainmap.jobs import job
from trainmap.sandbox.figures import figure8

with job(snakemake) as log:
    figure8(
        snakemake.input.logs,
        snakemake.input.weights,
        snakemake.output[0],
        scale=snakemake.params.scale,
    )
