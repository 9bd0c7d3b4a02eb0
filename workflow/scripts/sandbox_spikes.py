"""Figures 12-14: detected loss spikes with the frames around them (rule sandbox_spikes)."""

from trainmap.jobs import job
from trainmap.sandbox.figures import spike_figure

with job(snakemake) as log:  # noqa: F821
    number = int(snakemake.wildcards.spike_figure)  # noqa: F821
    spike_figure(
        number,
        snakemake.input.logs,  # noqa: F821
        snakemake.input.weights,  # noqa: F821
        snakemake.output[0],  # noqa: F821
        scale=snakemake.params.scale,  # noqa: F821
        which=number - 12,
        **snakemake.params.spikes,  # noqa: F821
    )
