# trainmap: the training dynamics of neural networks as latent state models.
#
#   snakemake --cores all                          # every default target (config/config.yaml)
#   snakemake --cores all results/hu2023/table1.csv   # one paper table or figure
#   snakemake --configfile config/paper.yaml ...   # paper scale
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/checkpoints.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/hu2023.smk"
include: "workflow/rules/blog.smk"
include: "workflow/rules/sandbox.smk"
include: "workflow/rules/fidelity.smk"


rule all:
    default_target: True
    input:
        train_targets(),
        analysis_targets(),
        hu2023_targets(),
        blog_targets(),
        sandbox_targets(),
        fidelity_targets(),
