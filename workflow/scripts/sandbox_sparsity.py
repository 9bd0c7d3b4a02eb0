"""Figures 17 and 20: activation sparsity of final models, and its table per model
(rules sandbox_sparsity17/20)."""

from trainmap.jobs import job
from trainmap.sandbox.figures import sparsity_figure
from trainmap.tables import write_table

with job(snakemake) as log:  # noqa: F821
    sandbox = snakemake.params.sandbox  # noqa: F821
    table = sparsity_figure(
        snakemake.input.logs,  # noqa: F821
        snakemake.input.weights,  # noqa: F821
        snakemake.output[0],  # noqa: F821
        scale=snakemake.params.scale,  # noqa: F821
        threshold=sandbox["success_threshold"],
        eps_range=tuple(sandbox["sparsity_eps"]),
        by_d=snakemake.params.by_d,  # noqa: F821
    )
    write_table(table, snakemake.output.table)  # noqa: F821
