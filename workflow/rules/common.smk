# Helpers shared by every stage: which names exist, wildcard constraints.


SETTINGS = config["settings"]
EXPERIMENTS = config.get("experiments") or {}
# Everything the analysis runs on: trained settings and the user's own runs.
ANALYSED = {**SETTINGS, **EXPERIMENTS}


def name_pattern(names):
    """A wildcard regex that matches exactly these names (and nothing when empty)."""
    return "|".join(sorted(names)) or "(?!)"


wildcard_constraints:
    setting=name_pattern(SETTINGS),
    experiment=name_pattern(EXPERIMENTS),
    name=name_pattern(ANALYSED),
    k=r"\d+",


def analysed(name):
    """The config of a trained setting or a user experiment."""
    return ANALYSED[name]
