"""Figure 9: transfer p = 2 -> 3 against p = 3 from scratch (rule sandbox_figure9)."""

from trainmap.jobs import job
from trainmap.sandbox.figures import figure9

with job(snakemake) as log:
    figure9(
        snakemake.input.transfer,
        snakemake.input.scratch,
        snakemake.output[0],
        scale=snakemake.params.scale,
    )
