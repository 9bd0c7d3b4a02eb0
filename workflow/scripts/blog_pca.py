"""PCA of the blog run's per-example validation losses, its turn and fastest loss drop."""

from trainmap.analysis.pca import run_trajectory
from trainmap.jobs import job
from trainmap.tables import read_metrics_table, write_table

with job(snakemake) as log:
    smk = snakemake
    blog = smk.params.blog
    trajectory, variance, events = run_trajectory(
        read_metrics_table(smk.input.metrics),
        run=blog["run"],
        examples=blog["examples"],
        components=blog["components"],
        window=blog["turn_window"],
        min_step=blog["turn_min_step"],
        source=smk.input.metrics,
    )
    log.info(
        "explained variance ratios: %s", variance["explained_variance_ratio"].round(4).tolist()
    )
    log.info("events:\n%s", events.to_string(index=False))
    write_table(trajectory, smk.output.trajectory)
    write_table(variance, smk.output.variance)
    write_table(events, smk.output.turn)
