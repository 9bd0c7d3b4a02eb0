"""Train one job's seeds of a setting (rule train)."""

from trainmap.jobs import job
from trainmap.tables import write_table
from trainmap.training.trainer import train_seeds

with job(snakemake) as log:  # noqa: F821
    wc = snakemake.wildcards  # noqa: F821
    table = train_seeds(
        snakemake.params.setting,  # noqa: F821
        seeds=range(int(wc.first), int(wc.last) + 1),
        device=snakemake.params.device,  # noqa: F821
        resume_path=snakemake.params.resume,  # noqa: F821
        name=wc.setting,
    )
    write_table(table, snakemake.output[0])  # noqa: F821
