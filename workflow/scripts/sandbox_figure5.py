"""Figure 5: loss curve with snapshots at the loss drops (rule sandbox_figure5)."""

from trainmap.figures.sandbox2025_frames import figure5
from trainmap.jobs import job

with job(snakemake):
    figure5(
        snakemake.input.logs,
        snakemake.input.weights,
        snakemake.output[0],
        scale=snakemake.params.scale,
        **snakemake.params.drops,
    )
