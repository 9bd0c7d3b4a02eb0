"""Figures 17 and 20: activation sparsity of final models, and its table per model
(rule sandbox_sparsity)."""

from trainmap.figures.sandbox2025 import sparsity_figure
from trainmap.jobs import job
from trainmap.sandbox.probe import epsilons, sparsity_groups
from trainmap.tables import write_table

with job(snakemake):
    sandbox = snakemake.params.sandbox
    by_d = snakemake.params.by_d
    eps = epsilons(tuple(sandbox["sparsity_eps"]))
    table = sparsity_figure(
        sparsity_groups(snakemake.input.logs, snakemake.input.weights, eps, by_d),
        eps,
        snakemake.output[0],
        scale=snakemake.params.scale,
        threshold=sandbox["success_threshold"],
        by_d=by_d,
    )
    write_table(table, snakemake.output.table)
