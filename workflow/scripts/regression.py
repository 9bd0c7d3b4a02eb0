"""Convergence time against state occupancy; dissimilarity, forking, detours (rule regression)."""

import pandas as pd

from trainmap.analysis.hmm import HMMParams
from trainmap.analysis.regression import RegressionOptions, analyse
from trainmap.jobs import job
from trainmap.tables import write_table

with job(snakemake) as log:
    smk = snakemake
    convergence = pd.read_csv(smk.input.convergence)
    summary, coefficients = analyse(
        pd.read_parquet(smk.input.states),
        HMMParams.load(smk.input.model),
        None if convergence.empty else convergence,
        RegressionOptions(**smk.params.options),
    )
    log.info("R² %.3f, F-test p %.3g", summary["rsquared"].iloc[0], summary["f_pvalue"].iloc[0])
    write_table(summary, smk.output.summary)
    write_table(coefficients, smk.output.coefficients)
