# trainmap: the training dynamics of neural networks as latent state models.
#
#   snakemake --cores all                          # every default target (config/config.yaml)
#   snakemake --cores all results/hu2023/table1.csv   # one paper table or figure
#   snakemake --configfile config/paper.yaml ...   # paper scale
#   snakemake --configfile config/config.yaml config/confirm.yaml   # fresh seeds
#
# A --configfile is complete in itself: config/config.yaml is read only when no
# --configfile is given, and sections a file leaves out take the schemas' defaults.
# To change a few values of the default config, layer a file over it (later files
# win, key by key): --configfile config/config.yaml my_changes.yaml
from pathlib import Path

from snakemake.utils import min_version, validate

from trainmap.analysis.experiments import check_experiment_keys
from trainmap.numerics import pin_environment

min_version("9.0")


if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


# A misspelt experiment key, named (the schema's one-of error lists every alternative).
check_experiment_keys(
    config.get("experiments"), Path(workflow.current_basedir) / "workflow/schemas"
)
validate(config, "workflow/schemas/config.schema.yaml")
# Snakemake fills in defaults only one schema file deep: the analysis and setting keys
# left out.
validate(config["analysis"], "workflow/schemas/analysis.schema.yaml")
for setting in config["settings"].values():
    validate(setting, "workflow/schemas/settings.schema.yaml")
# Before any job imports torch: its kernel paths are chosen when it loads.
if config["numerics"] == "pinned":
    pin_environment()


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/checkpoints.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/hu2023.smk"
include: "workflow/rules/blog.smk"
include: "workflow/rules/sandbox.smk"
include: "workflow/rules/fidelity.smk"


rule all:
    default_target: True
    input:
        train_targets(),
        analysis_targets(),
        predict_targets(),
        hu2023_targets(),
        blog_targets(),
        sandbox_targets(),
        fidelity_targets(),
        robustness_targets(),
