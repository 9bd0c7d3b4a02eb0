"""Train one job's seeds of a setting (rule train)."""

from trainmap.jobs import job
from trainmap.tables import write_table
from trainmap.training.settings import LOGGING_KEYS
from trainmap.training.trainer import train_seeds

with job(snakemake):
    smk = snakemake
    wc = smk.wildcards
    # Logging keys are no params (changing them must not retrain): read from the config.
    setting = smk.params.setting
    configured = smk.config["settings"][wc.configured_setting]["training"]
    logging_values = {key: configured[key] for key in LOGGING_KEYS}
    table = train_seeds(
        {**setting, "training": {**setting["training"], **logging_values}},
        seeds=range(int(wc.first), int(wc.last) + 1),
        device=smk.params.device,
        resume_path=smk.params.resume,
        name=wc.configured_setting,
    )
    write_table(table, smk.output[0], resume=smk.params.resume)
