"""When the blog run memorises and generalises: the phase-events table (rule blog_phases)."""

from trainmap.analysis.pca import run_rows
from trainmap.analysis.phases import phase_events
from trainmap.jobs import job
from trainmap.tables import read_metrics_table, write_table

with job(snakemake) as log:
    smk = snakemake
    blog = smk.params.blog
    events = phase_events(
        run_rows(read_metrics_table(smk.input.metrics), blog["run"], smk.input.metrics),
        blog["memorised_acc"],
        blog["generalising_acc"],
        smk.params.convergence,
    )
    log.info("phase events:\n%s", events.to_string(index=False))
    write_table(events, smk.output[0])
