"""Gather the sweep and choose the number of hidden states (rule select_states)."""

import pandas as pd

from trainmap.analysis.hmm import select_states
from trainmap.jobs import job
from trainmap.tables import write_table

with job(snakemake) as log:
    smk = snakemake
    sweep = pd.concat([pd.read_csv(path) for path in smk.input], ignore_index=True)
    selection = select_states(sweep, smk.params.criterion)
    log.info(
        "chosen: %d states (%s)",
        selection.loc[selection["chosen"], "k"].iloc[0],
        smk.params.criterion,
    )
    write_table(sweep, smk.output.sweep)
    write_table(selection, smk.output.selection)
