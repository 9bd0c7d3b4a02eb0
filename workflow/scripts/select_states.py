"""Gather the sweep and choose the number of hidden states, extending the sweep at its edge.

(rule select_states)
"""

import pandas as pd

from trainmap.analysis.hmm import FitOptions, chosen_k, extend_sweep
from trainmap.analysis.normalize import zscore_metrics
from trainmap.jobs import job
from trainmap.tables import write_table

with job(snakemake) as log:
    smk = snakemake
    zscores = pd.read_parquet(smk.input.zscores)
    choice = smk.params.selection
    sweep, selection = extend_sweep(
        zscores,
        pd.read_csv(smk.input.split),
        zscore_metrics(zscores),
        pd.concat([pd.read_csv(path) for path in smk.input.sweep], ignore_index=True),
        FitOptions(**smk.params.options),
        choice["k_limit"],
        choice["criterion"],
        choice["one_standard_error"],
        smk.params.aligned,
        smk.threads,
    )
    log.info("chosen: %d states (%s)", chosen_k(selection), choice["criterion"])
    write_table(sweep, smk.output.sweep)
    write_table(selection, smk.output.selection)
