"""Train one sandbox job: its members as one batched model (rule sandbox_train)."""

from trainmap.jobs import job
from trainmap.sandbox.plan import JobSpec
from trainmap.sandbox.trainer import train_job

with job(snakemake):
    train_job(
        JobSpec(**snakemake.params.spec),
        log_path=snakemake.output.log,
        weights_path=snakemake.output.weights,
        device=snakemake.params.device,
        init_from=list(snakemake.input.init_from),
        state_path=snakemake.params.resume,
    )
