"""Train one job's seeds of a setting (rule train)."""

from trainmap.jobs import job
from trainmap.tables import write_table
from trainmap.training.trainer import train_seeds

with job(snakemake):
    smk = snakemake
    wc = smk.wildcards
    # The logging interval is no param (changing it must not retrain): read from the config.
    setting = smk.params.setting
    log_every = smk.config["settings"][wc.setting]["training"]["log_every_seconds"]
    table = train_seeds(
        {**setting, "training": {**setting["training"], "log_every_seconds": log_every}},
        seeds=range(int(wc.first), int(wc.last) + 1),
        device=smk.params.device,
        resume_path=smk.params.resume,
        name=wc.setting,
    )
    write_table(table, smk.output[0], resume=smk.params.resume)
