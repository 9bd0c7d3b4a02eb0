"""Z-score the metrics and split the runs into folds for state-count selection (rule normalize)."""

from trainmap.analysis.normalize import normalize_runs
from trainmap.errors import TrainmapError
from trainmap.jobs import job
from trainmap.tables import read_metrics_table, write_table

with job(snakemake) as log:
    smk = snakemake
    try:
        zscores, split = normalize_runs(
            read_metrics_table(smk.input[0]),
            metrics=smk.params.metrics,
            max_checkpoints=smk.params.max_checkpoints,
            min_length=smk.params.min_length,
            normalization=smk.params.normalization,
            **smk.params.split,
        )
    except TrainmapError as error:  # name the setting or experiment
        raise TrainmapError(f"{smk.wildcards.name}: {error}") from error
    write_table(zscores, smk.output.zscores)
    write_table(split, smk.output.split)
