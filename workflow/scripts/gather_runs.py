"""Concatenate a setting's training jobs into its metrics table (rule gather_runs)."""

from trainmap.jobs import job
from trainmap.tables import write_table
from trainmap.training.runs import gather_runs

with job(snakemake) as log:
    write_table(gather_runs(snakemake.input), snakemake.output[0])
