"""Figure 9: transfer p = 2 -> 3 against p = 3 from scratch (rule sandbox_figure9)."""

from trainmap.jobs import job
from trainmap.sandbox.figures import figure9

with job(snakemake) as log:  # noqa: F821
    figure9(
        snakemake.input.transfer,  # noqa: F821
        snakemake.input.scratch,  # noqa: F821
        snakemake.output[0],  # noqa: F821
        scale=snakemake.params.scale,  # noqa: F821
    )
