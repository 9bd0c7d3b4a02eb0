"""Figure 5: loss curve with snapshots at the loss drops (rule sandbox_figure5)."""

from trainmap.jobs import job
from trainmap.sandbox.figures import figure5

with job(snakemake) as log:  # noqa: F821
    figure5(
        snakemake.input.logs,  # noqa: F821
        snakemake.input.weights,  # noqa: F821
        snakemake.output[0],  # noqa: F821
        scale=snakemake.params.scale,  # noqa: F821
        **snakemake.params.drops,  # noqa: F821
    )
