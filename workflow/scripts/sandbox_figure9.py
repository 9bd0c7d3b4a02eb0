"""Figure 9: transfer p = 2 -> 3 against p = 3 from scratch (rule sandbox_figure9)."""

from trainmap.figures.sandbox2025 import figure9
from trainmap.jobs import job

with job(snakemake):
    figure9(
        snakemake.input.transfer,
        snakemake.input.scratch,
        snakemake.output[0],
        scale=snakemake.params.scale,
    )
