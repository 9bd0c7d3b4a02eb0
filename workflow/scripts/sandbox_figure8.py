"""Figure 8: attention maps at initialisation and at the end (rule sandbox_figure8)."""

from trainmap.jobs import job
from trainmap.sandbox.figures import figure8

with job(snakemake) as log:  # noqa: F821
    figure8(
        snakemake.input.logs,  # noqa: F821
        snakemake.input.weights,  # noqa: F821
        snakemake.output[0],  # noqa: F821
        scale=snakemake.params.scale,  # noqa: F821
    )
