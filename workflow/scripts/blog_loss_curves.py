"""Loss curves of every run and train/validation curves of the blog run."""

from trainmap.analysis.pca import run_rows
from trainmap.figures.blog2025 import Label, loss_curve_figures, phase_events
from trainmap.jobs import job
from trainmap.tables import RUN, read_metrics_table

with job(snakemake) as log:
    smk = snakemake
    blog = smk.params.blog
    table = read_metrics_table(smk.input.metrics)
    label = Label(**smk.params.label, runs=table[RUN].nunique())
    events = phase_events(
        run_rows(table, label.run, smk.input.metrics),
        blog["memorised_acc"],
        blog["generalising_acc"],
        smk.params.convergence,
    )
    log.info("phase events:\n%s", events.to_string(index=False))
    loss_curve_figures(table, events, label, smk.output.loss_curve, smk.output.run_curves)
