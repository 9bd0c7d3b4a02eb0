"""A 16-panel frame of one run at one epoch: figures 1-4, 10, 11 (rule sandbox_frame)."""

from trainmap.figures.sandbox2025_frames import frame_figure
from trainmap.jobs import job

with job(snakemake):
    frame_figure(
        snakemake.input.logs,
        snakemake.input.weights,
        snakemake.output[0],
        rank=snakemake.params.rank,
        epoch=snakemake.params.epoch,
        scale=snakemake.params.scale,
        what=snakemake.params.what,
    )
