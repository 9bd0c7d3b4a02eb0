"""This run's verdicts against other runs' of the same claims (rule robustness)."""

from pathlib import Path

import pandas as pd

from trainmap.jobs import job
from trainmap.robustness import compare_verdicts, markdown, read_verdicts
from trainmap.tables import atomic_output, write_table

with job(snakemake) as log:
    smk = snakemake
    runs = dict(zip(smk.params.labels, smk.input.others, strict=True))
    this = pd.read_csv(smk.input.this, dtype=str, keep_default_na=False)
    table = compare_verdicts(this, {label: read_verdicts(p) for label, p in runs.items()})
    log.info("robustness:\n%s", table[["id", "robustness"]].to_string(index=False))
    write_table(table, smk.output.csv)
    with atomic_output(smk.output.md) as tmp:
        Path(tmp).write_text(markdown(table, runs) + "\n")
