"""Figure 5: loss curve with snapshots at the loss drops (rule sandbox_figure5)."""

from trainmap.jobs import job
from trainmap.sandbox.figures import figure5

with job(snakemake) as log:
    figure5(
        snakemake.input.logs,
        snakemake.input.weights,
        snakemake.output[0],
        scale=snakemake.params.scale,
        **snakemake.params.drops,
    )
