"""The user's own runs: read a metric table (CSV, Parquet, a recorder's folder) as a metrics table.

An experiment in the config names the file and maps its columns (see README,
"Analyse your own runs")::

    experiments:
      my_runs:
        title: "My runs"
        table: data/my_runs.csv
        columns: {run: seed, step: iteration, eval_acc: val_accuracy}
        convergence_threshold: 0.9

Every problem is reported as a :class:`TrainmapError` naming the config key,
file, column or run.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from trainmap.analysis.normalize import check_table, drop_diverged, metric_columns
from trainmap.errors import TrainmapError, did_you_mean
from trainmap.tables import (
    DIVERGED,
    EPOCH,
    EVAL_ACC,
    EVAL_LOSS,
    RUN,
    RUN_NAME,
    STEP,
    TRAIN_ACC,
    TRAIN_LOSS,
    example_loss_columns,
    read_recorded,
    read_table,
)

log = logging.getLogger(__name__)

#: Column roles an experiment can map, with the name used when the config does not say.
ROLES = {"run": RUN, "step": STEP, "epoch": EPOCH, "eval_acc": EVAL_ACC, "diverged": DIVERGED}
REQUIRED_ROLES = ("run", "step")
#: Metrics-table columns kept as they are when the table has them.
CARRIED = (TRAIN_LOSS, TRAIN_ACC, EVAL_LOSS)


def read_user_table(path: str | Path, key: str) -> pd.DataFrame:
    """Read a CSV or Parquet file, or a recorder's folder (:func:`trainmap.tables.read_recorded`).

    ``key`` is the config key that names it (for errors).
    """
    path = Path(path)
    if path.is_dir():
        try:
            return read_recorded(path)
        except TrainmapError as error:
            raise TrainmapError(f"{key}: {error}") from error
    if not path.is_file():
        raise TrainmapError(f"{key}: file {path} does not exist")
    if path.suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise TrainmapError(f"{key}: {path} is not .csv or .parquet")
    try:
        return read_table(path)
    except TrainmapError as error:
        raise TrainmapError(f"{key}: {error}") from error


def _column(table: pd.DataFrame, name: str, key: str, path: Path) -> pd.Series:
    if name not in table.columns:
        raise TrainmapError(
            f"{key} = {name!r}: no such column in {path}{did_you_mean(name, table.columns)} "
            f"(columns: {list(table.columns)})"
        )
    return table[name]


#: How a user's ``diverged`` column may spell its flags (blank: not diverged).
FLAGS = {
    **dict.fromkeys(("true", "yes", "y", "1", "1.0", "t"), True),
    **dict.fromkeys(("false", "no", "n", "0", "0.0", "f", "", "nan", "none"), False),
}


def diverged_flags(column: pd.Series, key: str, path: Path) -> pd.Series:
    """A user's ``diverged`` column as booleans: true/false, yes/no, 1/0; blank is false."""
    if column.dtype == bool:
        return column
    text = column.astype(str).str.strip().str.lower().where(column.notna(), "")
    unknown = sorted(set(text) - set(FLAGS))
    if unknown:
        raise TrainmapError(
            f"{key}: values {unknown[:5]} are not flags; use true/false, yes/no or 1/0 "
            f"(blank counts as not diverged) ({path})"
        )
    return text.map(FLAGS).astype(bool)


def experiment_keys(schemas: str | Path) -> set[str]:
    """The keys an experiment may have: those of both kinds in the workflow's schemas."""
    schemas = Path(schemas)
    table = yaml.safe_load((schemas / "experiments.schema.yaml").read_text())
    folder = yaml.safe_load((schemas / "experiments_checkpoints.schema.yaml").read_text())
    return {*table["$defs"]["table_experiment"]["properties"], *folder["properties"]}


def check_experiment_keys(experiments: dict | None, schemas: str | Path) -> None:
    """Name an experiment's misspelt key: the schema's one-of error does not.

    ``schemas`` is the folder of the workflow's schema files.
    """
    known = experiment_keys(schemas)
    for name, experiment in (experiments or {}).items():
        if not isinstance(experiment, dict):
            raise TrainmapError(f"experiments.{name}: expected keys, got {experiment!r}")
        for key in experiment:
            if key not in known:
                raise TrainmapError(
                    f"experiments.{name}: unknown key {key!r}{did_you_mean(key, sorted(known))}"
                )
        if "table" not in experiment and "checkpoints" not in experiment:
            raise TrainmapError(f"experiments.{name}: needs a `table:` or a `checkpoints:` key")


def import_table(experiment: dict, name: str) -> pd.DataFrame:
    """The metrics table of a table experiment, checked.

    Runs are numbered 0..n-1 in sorted order of the user's run ids, which are
    kept in ``run_name``; ``epoch`` is NaN when the table has none (convergence
    is then measured in steps).
    """
    key = f"experiments.{name}"
    path = Path(experiment["table"])
    raw = read_user_table(path, f"{key}.table")
    mapping = {**{r: None for r in ROLES}, **(experiment.get("columns") or {})}
    metrics_key = f"{key}.columns.metrics"
    try:
        metrics = metric_columns(raw, mapping.pop("metrics", None))
    except TrainmapError as error:
        raise TrainmapError(f"{metrics_key}: {error} ({path})") from error
    out = _role_columns(raw, mapping, key, path)
    names, steps = _run_names_and_steps(out, mapping, key, path)
    ids = np.sort(names.unique())
    table = pd.DataFrame(
        {
            RUN: np.searchsorted(ids, names).astype(np.int64),
            RUN_NAME: names.astype(str),
            STEP: steps.astype(np.int64),
            EPOCH: pd.to_numeric(out[EPOCH], errors="coerce") if EPOCH in out else np.nan,
        }
    )
    for m in metrics:
        table[m] = raw[m]
    _add_eval_acc(table, out, experiment, mapping, key, path)
    table[DIVERGED] = (
        diverged_flags(out[DIVERGED], f"{key}.columns.diverged", path) if DIVERGED in out else False
    )
    # Loss curves and per-example losses under their metrics-table names feed the blog figures.
    for column in [c for c in CARRIED if c in raw.columns] + example_loss_columns(raw):
        if column not in table.columns:
            table[column] = raw[column]
    _check_live_runs(table, metrics, len(ids), key, path)
    log.info(
        "%s: %d runs, %d rows, metrics %s%s",
        key,
        len(ids),
        len(table),
        metrics,
        ", with evaluation accuracy" if EVAL_ACC in table else "",
    )
    return table.sort_values([RUN, STEP], kind="stable").reset_index(drop=True)


def _role_columns(raw: pd.DataFrame, mapping: dict, key: str, path: Path) -> pd.DataFrame:
    """The user's columns of each role, under the role's default name."""
    out = pd.DataFrame(index=raw.index)
    for role, default in ROLES.items():
        column = mapping.get(role)
        if column is None and (role in REQUIRED_ROLES or default in raw.columns):
            column = default
        if column is not None:
            out[default] = _column(raw, column, f"{key}.columns.{role}", path)
    return out


def _run_names_and_steps(
    out: pd.DataFrame, mapping: dict, key: str, path: Path
) -> tuple[pd.Series, pd.Series]:
    """The run names, none empty, and the steps, all whole numbers."""
    names = out[RUN]
    if names.isna().any():
        raise TrainmapError(f"{key}: the run column has empty values ({path})")
    steps = pd.to_numeric(out[STEP], errors="coerce")
    if not np.isfinite(steps).all() or (steps != steps.round()).any():
        raise TrainmapError(
            f"{key}.columns.step: column {mapping.get('step') or STEP!r} must hold whole numbers "
            f"(optimiser steps); map fractional epochs to columns.epoch ({path})"
        )
    return names, steps


def _add_eval_acc(
    table: pd.DataFrame,
    out: pd.DataFrame,
    experiment: dict,
    mapping: dict,
    key: str,
    path: Path,
) -> None:
    """Add the evaluation accuracy, checked to be fractions that come with a threshold."""
    if EVAL_ACC in out:
        table[EVAL_ACC] = pd.to_numeric(out[EVAL_ACC], errors="coerce")
        bad = ~np.isfinite(table[EVAL_ACC])
        if bad.any():
            runs = sorted(table.loc[bad, RUN_NAME].unique())[:5]
            raise TrainmapError(
                f"{key}.columns.eval_acc: {int(bad.sum())} missing or non-numeric value(s) "
                f"in run(s) {runs} ({path})"
            )
        if table[EVAL_ACC].max() > 1 or table[EVAL_ACC].min() < 0:
            raise TrainmapError(
                f"{key}.columns.eval_acc: column {mapping.get('eval_acc') or EVAL_ACC!r} has "
                f"values from {table[EVAL_ACC].min():g} to {table[EVAL_ACC].max():g}; give "
                f"accuracy as a fraction in [0, 1] (percent / 100) ({path})"
            )
        if experiment.get("convergence_threshold") is None:
            raise TrainmapError(
                f"{key}.convergence_threshold: needed with an evaluation-accuracy column"
            )
    elif experiment.get("convergence_threshold") is not None:
        raise TrainmapError(
            f"{key}.columns.eval_acc: convergence_threshold is set but the table has no "
            f"evaluation-accuracy column ({path})"
        )


def _check_live_runs(
    table: pd.DataFrame, metrics: list[str], runs: int, key: str, path: Path
) -> None:
    """Check the runs the analysis keeps: some are left, and their metrics are usable."""
    # Diverged runs are dropped by the analysis (their metrics may be NaN): check the rest.
    live = drop_diverged(table.assign(**{RUN: table[RUN_NAME]}))
    if live.empty:
        raise TrainmapError(
            f"{key}: every one of the {runs} runs is marked diverged; nothing to analyse ({path})"
        )
    try:
        check_table(live, metrics, min_runs=2)
    except TrainmapError as error:
        raise TrainmapError(f"{key} ({path}): {error}") from error
