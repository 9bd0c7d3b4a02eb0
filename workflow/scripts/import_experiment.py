"""Check a user's metric table and write it as a metrics table (rule import_experiment)."""

from trainmap.analysis.experiments import import_table
from trainmap.jobs import job
from trainmap.tables import write_table

with job(snakemake):
    smk = snakemake
    write_table(import_table(smk.params.experiment, smk.wildcards.own_table), smk.output[0])
