"""Figures 17 and 20: activation sparsity of final models, and its table per model
(rules sandbox_sparsity17/20)."""

from trainmap.jobs import job
from trainmap.sandbox.figures import sparsity_figure
from trainmap.tables import write_table

with job(snakemake) as log:
    sandbox = snakemake.params.sandbox
    table = sparsity_figure(
        snakemake.input.logs,
        snakemake.input.weights,
        snakemake.output[0],
        scale=snakemake.params.scale,
        threshold=sandbox["success_threshold"],
        eps_range=tuple(sandbox["sparsity_eps"]),
        by_d=snakemake.params.by_d,
    )
    write_table(table, snakemake.output.table)
