"""Figures 12-14: detected loss spikes with the frames around them (rule sandbox_spikes)."""

from trainmap.figures.sandbox2025_frames import spike_figure
from trainmap.jobs import job

with job(snakemake):
    number = int(snakemake.wildcards.spike_figure)
    spike_figure(
        number,
        snakemake.input.logs,
        snakemake.input.weights,
        snakemake.output[0],
        scale=snakemake.params.scale,
        which=number - 12,
        **snakemake.params.spikes,
    )
