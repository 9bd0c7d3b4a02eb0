"""A 16-panel frame of one run at one epoch: figures 1-4, 10, 11 (rule sandbox_frame)."""

from trainmap.jobs import job
from trainmap.sandbox.figures import frame_figure

with job(snakemake) as log:  # noqa: F821
    frame_figure(
        snakemake.input.logs,  # noqa: F821
        snakemake.input.weights,  # noqa: F821
        snakemake.output[0],  # noqa: F821
        rank=snakemake.params.rank,  # noqa: F821
        epoch=snakemake.params.epoch,  # noqa: F821
        scale=snakemake.params.scale,  # noqa: F821
        what=snakemake.params.what,  # noqa: F821
    )
