"""Z-score (and align) the metrics, split the runs into folds for selecting k (rule normalize)."""

from trainmap.analysis.align import align_runs
from trainmap.analysis.hmm import FitOptions
from trainmap.analysis.normalize import normalize_runs, zscore_metrics
from trainmap.errors import TrainmapError
from trainmap.jobs import job
from trainmap.tables import read_metrics_table, write_table

with job(snakemake):
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
        pooled = zscores
        if smk.params.normalization == "aligned":
            zscores, _ = align_runs(
                zscores,
                zscore_metrics(zscores),
                k_max=smk.params.alignment["k_max"],
                options=FitOptions(**smk.params.alignment["options"]),
                max_checkpoints=smk.params.max_checkpoints,
            )
    except TrainmapError as error:  # name the setting or experiment
        raise TrainmapError(f"{smk.wildcards.analysed}: {error}") from error
    write_table(zscores, smk.output.zscores)
    write_table(pooled, smk.output.pooled)
    write_table(split, smk.output.split)
