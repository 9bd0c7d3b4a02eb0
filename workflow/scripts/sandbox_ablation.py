"""Figures 6 (one seed) and 7 (mean ± std): the ablations (rule sandbox_ablation)."""

from trainmap.jobs import job
from trainmap.sandbox.figures import ablation_figure

with job(snakemake) as log:  # noqa: F821
    ablation_figure(
        {key: snakemake.input[key] for key in snakemake.params.hyperparameters},  # noqa: F821
        snakemake.output[0],  # noqa: F821
        scale=snakemake.params.scale,  # noqa: F821
        averaged=snakemake.wildcards.ablation_figure == "7",  # noqa: F821
    )
