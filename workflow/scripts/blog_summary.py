"""Markdown summary: the HMM's phases against memorisation and generalisation."""

import pandas as pd

from trainmap.analysis.hmm import HMMParams
from trainmap.analysis.pca import run_rows
from trainmap.analysis.phases import run_states
from trainmap.figures.blog2025 import Label
from trainmap.figures.blog2025_summary import summary_markdown
from trainmap.jobs import job
from trainmap.tables import RUN, atomic_output, read_metrics_table

with job(snakemake) as log:
    smk = snakemake
    blog = smk.params.blog
    states = pd.read_parquet(smk.input.states)
    label = Label(**smk.params.label, runs=states[RUN].nunique(), examples=blog["examples"])
    rows = run_rows(read_metrics_table(smk.input.metrics), label.run, smk.input.metrics)
    text = summary_markdown(
        run_states(states, rows, label.run),
        pd.read_csv(smk.input.events),
        pd.read_csv(smk.input.turn),
        pd.read_csv(smk.input.variance),
        blog["coincide_tolerance"],
        HMMParams.load(smk.input.model).k,
        label,
    )
    with atomic_output(smk.output[0]) as tmp:
        tmp.write_text(text)
    log.info("wrote %s", smk.output[0])
