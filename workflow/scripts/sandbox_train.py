"""Train one sandbox job: its members as one batched model (rule sandbox_train)."""

from trainmap.jobs import job
from trainmap.sandbox.trainer import train_job

with job(snakemake) as log:  # noqa: F821
    train_job(
        snakemake.params.spec,  # noqa: F821
        log_path=snakemake.output.log,  # noqa: F821
        weights_path=snakemake.output.weights,  # noqa: F821
        device=snakemake.params.device,  # noqa: F821
        init_from=list(snakemake.input.init_from),  # noqa: F821
        state_path=snakemake.params.resume,  # noqa: F821
    )
