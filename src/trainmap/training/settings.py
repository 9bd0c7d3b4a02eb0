"""What in a configured setting determines its training jobs' tables (no torch: read at DAG time).

Two places must agree on it: the workflow's ``train`` rule passes this part of a
setting as a param, so that changing anything else does not retrain, and the
trainer fingerprints its resume state on it, so that a state saved under other
values is not resumed. A key read by one and not the other would give stale
tables or needless retraining; hence one definition, here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Sections of a setting that determine its training jobs' tables (as do the seeds,
#: which name each job). Not the title, convergence threshold, seed count, first
#: seed or resources: changing them must not retrain.
TRAINING_KEYS = ("task", "model", "data", "metrics", "optimizer", "grid", "training")

#: Keys of the ``training`` section that determine nothing in the tables: progress
#: logging. The train script reads them from the config, outside the rule's params.
LOGGING_KEYS = ("log_every_seconds",)


def training_determinants(setting: Mapping[str, Any]) -> dict[str, Any]:
    """The :data:`TRAINING_KEYS` of ``setting`` it has; ``training`` less :data:`LOGGING_KEYS`."""
    part = {key: setting[key] for key in TRAINING_KEYS if key in setting}
    part["training"] = {k: v for k, v in part["training"].items() if k not in LOGGING_KEYS}
    return part
