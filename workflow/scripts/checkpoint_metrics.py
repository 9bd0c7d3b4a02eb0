"""The metrics table of a folder of checkpoints (rule checkpoint_metrics)."""

from trainmap.errors import TrainmapError
from trainmap.jobs import job
from trainmap.metrics.checkpoints import checkpoint_metrics
from trainmap.tables import write_table

with job(snakemake):
    smk = snakemake
    try:
        table = checkpoint_metrics(
            smk.input.folder,
            scores=getattr(smk.input, "scores", None),
            resume_path=smk.params.resume,
            **smk.params.options,
        )
    except TrainmapError as error:  # name the experiment whose config key is at fault
        raise TrainmapError(f"experiments.{smk.wildcards.own_checkpoints}: {error}") from error
    write_table(table, smk.output[0], resume=smk.params.resume)
