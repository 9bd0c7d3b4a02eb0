"""Gather one grid point's runs from its setting's training jobs into its metrics table
(rule gather_runs)."""

from trainmap.jobs import job
from trainmap.tables import write_table
from trainmap.training.grid import expand_grids
from trainmap.training.runs import gather_runs

with job(snakemake):
    # The grid point's name spells its values, so they are no param: the wildcard is.
    point = expand_grids(snakemake.config["settings"])[snakemake.wildcards.grid_point]
    write_table(gather_runs(snakemake.input, point.values), snakemake.output[0])
