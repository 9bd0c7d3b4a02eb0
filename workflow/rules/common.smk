# Helpers shared by every stage: which names exist, wildcard constraints.


SETTINGS = config["settings"]
EXPERIMENTS = config.get("experiments") or {}
# The user's runs come as a metrics table or as a folder of checkpoints.
TABLE_EXPERIMENTS = {n: e for n, e in EXPERIMENTS.items() if "table" in e}
CHECKPOINT_EXPERIMENTS = {n: e for n, e in EXPERIMENTS.items() if "checkpoints" in e}
# Everything the analysis runs on: trained settings and the user's own runs.
ANALYSED = {**SETTINGS, **EXPERIMENTS}


def name_pattern(names):
    """A wildcard regex that matches exactly these names (and nothing when empty)."""
    return "|".join(sorted(names)) or "(?!)"


wildcard_constraints:
    setting=name_pattern(SETTINGS),
    experiment=name_pattern(EXPERIMENTS),
    table_experiment=name_pattern(TABLE_EXPERIMENTS),
    checkpoint_experiment=name_pattern(CHECKPOINT_EXPERIMENTS),
    name=name_pattern(ANALYSED),
    k=r"\d+",


def analysed(name):
    """The config of a trained setting or a user experiment."""
    return ANALYSED[name]
