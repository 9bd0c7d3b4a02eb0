"""Check a metrics table, z-score every metric, split runs into folds for state-count selection.

Hu et al. (2023), section 2.1: each metric is standardised per run with the
mean and standard deviation of (up to) the first 1000 checkpoints of that run,
and 20% of the runs are held out to choose the number of hidden states. Both
are options here: z-scores pooled over all runs, and K-fold cross-validation
over runs (every run held out once), recover known state counts where the
paper's choices do not (``benchmarks/recovery.py``, config/README.md).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from trainmap.errors import TrainmapError, did_you_mean
from trainmap.tables import DIVERGED, EPOCH, METRICS, RUN, RUN_NAME, STEP

log = logging.getLogger(__name__)

#: ``aligned`` z-scores are pooled here, then aligned per run (``trainmap.analysis.align``).
NORMALIZATIONS = ("pooled", "per_run", "aligned")
SELECTIONS = ("kfold", "holdout")
#: The fold of a run that is never held out (``selection="holdout"``).
NEVER_HELD_OUT = -1


def _runs_text(runs: pd.Index | np.ndarray | list, limit: int = 5) -> str:
    runs = list(runs)
    shown = ", ".join(map(str, runs[:limit]))
    return shown + (f" and {len(runs) - limit} more" if len(runs) > limit else "")


def metric_columns(table: pd.DataFrame, requested: list[str] | None = None) -> list[str]:
    """The metric columns to model: ``requested``, else the 14 paper metrics present.

    Raises :class:`TrainmapError` naming a requested column that is missing.
    """
    if requested:
        missing = [m for m in requested if m not in table.columns]
        if missing:
            raise TrainmapError(
                f"metric column {missing[0]!r} not in the table"
                f"{did_you_mean(missing[0], table.columns)} (missing: {missing}; "
                f"it has {list(table.columns)})"
            )
        return list(requested)
    present = [m for m in METRICS if m in table.columns]
    if not present:
        raise TrainmapError(
            f"the table has none of the metric columns {list(METRICS)}; "
            f"it has {list(table.columns)}"
        )
    return present


def drop_diverged(table: pd.DataFrame) -> pd.DataFrame:
    """Drop every run whose ``diverged`` flag is set at any checkpoint, with a warning."""
    if DIVERGED not in table.columns:
        return table
    bad = table.loc[table[DIVERGED].astype(bool), RUN].unique()
    if len(bad):
        log.warning("dropping %d diverged run(s): %s", len(bad), _runs_text(bad))
    return table[~table[RUN].isin(bad)].reset_index(drop=True)


#: Larger values overflow float64 when squared (the z-score's variance).
HUGE = 1e150


def check_table(
    table: pd.DataFrame, metrics: list[str], min_length: int = 1, min_runs: int = 2
) -> list[str]:
    """Check the metric columns and runs of a table; return the metrics that can be modelled.

    * a metric with no finite value at all is dropped with a warning (e.g. bias
      metrics of a model without biases);
    * a metric with some NaN or infinite values raises, naming the runs;
    * a metric with values beyond 1e150 raises (their squares, in the z-score's
      variance, overflow float64);
    * fewer than ``min_runs`` runs, or a run with fewer than ``min_length``
      checkpoints, raises, naming the run;
    * duplicated (run, step) rows raise.
    """
    for m in metrics:
        if not pd.api.types.is_numeric_dtype(table[m]):
            raise TrainmapError(f"metric column {m!r} is not numeric (dtype {table[m].dtype})")
    kept = []
    for m in metrics:
        finite = np.isfinite(table[m].to_numpy(dtype=float))
        if not finite.any():
            log.warning("metric %r has no finite value in any run: dropped", m)
        elif not finite.all():
            bad = table.loc[~finite, RUN].unique()
            raise TrainmapError(
                f"metric column {m!r} has {int((~finite).sum())} NaN or infinite value(s) "
                f"in run(s) {_runs_text(bad)}"
            )
        elif (huge := np.abs(table[m].to_numpy(dtype=float)) > HUGE).any():
            raise TrainmapError(
                f"metric column {m!r} has values up to {np.abs(table[m]).max():.3g} in run(s) "
                f"{_runs_text(table.loc[huge, RUN].unique())}: too large to z-score (the "
                f"variance overflows); rescale the column"
            )
        else:
            kept.append(m)
    if not kept:
        raise TrainmapError(f"none of the metric columns {metrics} has finite values")
    duplicated = table.duplicated([RUN, STEP])
    if duplicated.any():
        row = table.loc[duplicated].iloc[0]
        raise TrainmapError(
            f"{int(duplicated.sum())} duplicated (run, step) row(s), "
            f"e.g. run {row[RUN]} step {row[STEP]}"
        )
    lengths = table.groupby(RUN).size()
    if len(lengths) < min_runs:
        raise TrainmapError(
            f"the table has {len(lengths)} run(s) ({_runs_text(lengths.index)}); the analysis "
            f"needs at least {min_runs} (runs are split into fit and held-out)"
        )
    short = lengths[lengths < min_length]
    if len(short):
        raise TrainmapError(
            f"run(s) {_runs_text(short.index)} have only {short.min()} checkpoint(s), fewer than "
            f"{min_length} (analysis.k_max); lower analysis.k_max or remove the run(s)"
        )
    return kept


def zscore(
    table: pd.DataFrame,
    metrics: list[str],
    max_checkpoints: int = 1000,
    normalization: str = "pooled",
) -> tuple[pd.DataFrame, list[str]]:
    """Z-score each metric with the mean and std of the first ``max_checkpoints`` rows of each run.

    ``normalization``: ``per_run`` (the paper: every run with its own mean and std)
    or ``pooled`` (one mean and std from those rows of all runs together, so that a
    state keeps the same z-scores in every run; also for ``aligned``, whose per-run
    alignment, :func:`trainmap.analysis.align.align_runs`, follows). A metric that is constant over
    that window (in some run, for ``per_run``) cannot be standardised; it is
    dropped for every run, so that all runs share one observation space, with a
    warning naming the runs. Returns the table (``run``, ``step``, ``epoch`` if
    present, the kept metrics) and the kept metrics.
    """
    if normalization not in NORMALIZATIONS:
        raise TrainmapError(
            f"analysis.normalization must be one of {list(NORMALIZATIONS)}, not {normalization!r}"
        )
    table = table.sort_values([RUN, STEP], kind="stable").reset_index(drop=True)
    window = table.groupby(RUN, sort=False).head(max_checkpoints)
    if normalization == "per_run":
        mean = window.groupby(RUN)[metrics].mean()
        std = window.groupby(RUN)[metrics].std(ddof=0)
    else:
        mean = window[metrics].mean().to_frame("all runs").T
        std = window[metrics].std(ddof=0).to_frame("all runs").T
    constant = (std == 0) | (std <= 1e-9 * mean.abs())  # float noise around a constant
    kept = []
    for m in metrics:
        runs = constant.index[constant[m]]
        if len(runs):
            log.warning(
                "metric %r is constant over the z-score window of run(s) %s: dropped",
                m,
                _runs_text(runs),
            )
        else:
            kept.append(m)
    if not kept:
        raise TrainmapError(f"every metric column {metrics} is constant in some run")
    keys = [c for c in (RUN, STEP, EPOCH) if c in table.columns]
    out = table[keys].copy()
    if normalization == "per_run":
        mean, std = mean.loc[table[RUN]], std.loc[table[RUN]]
    # A pooled (1, d) row broadcasts over every row of the table.
    out[kept] = (table[kept].to_numpy(dtype=float) - mean[kept].to_numpy()) / std[kept].to_numpy()
    return out, kept


def split_runs(
    runs: np.ndarray | list,
    selection: str = "kfold",
    folds: int = 5,
    held_out_fraction: float = 0.2,
    seed: int = 0,
) -> pd.DataFrame:
    """Assign each run the fold in which it is held out, with a seeded shuffle: ``run``, ``fold``.

    ``kfold``: ``min(folds, n)`` folds of (nearly) equal size, every run held out
    exactly once. ``holdout`` (the paper): one split, ``round(held_out_fraction * n)``
    runs (at least one on each side) in fold 0, the others never held out (fold -1).
    """
    if selection not in SELECTIONS:
        raise TrainmapError(
            f"analysis.selection must be one of {list(SELECTIONS)}, not {selection!r}"
        )
    runs = np.sort(np.asarray(runs))
    if len(runs) < 2:
        raise TrainmapError(f"need at least 2 runs to split into fit and held-out, got {len(runs)}")
    order = np.random.default_rng(seed).permutation(len(runs))
    fold = np.empty(len(runs), dtype=np.int64)
    if selection == "kfold":
        fold[order] = np.arange(len(runs)) % min(folds, len(runs))
    else:
        n_held = int(np.clip(round(held_out_fraction * len(runs)), 1, len(runs) - 1))
        fold[:] = NEVER_HELD_OUT
        fold[order[:n_held]] = 0
    return pd.DataFrame({RUN: runs, "fold": fold})


def normalize_runs(
    table: pd.DataFrame,
    metrics: list[str] | None = None,
    max_checkpoints: int = 1000,
    min_length: int = 1,
    normalization: str = "pooled",
    selection: str = "kfold",
    folds: int = 5,
    held_out_fraction: float = 0.2,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Drop diverged runs, check the table, z-score it, split its runs: ``(zscores, split)``.

    ``metrics`` None means the 14 paper metrics that the table has; the other
    arguments are those of :func:`zscore` and :func:`split_runs`.
    """
    n_runs = table[RUN].nunique()
    table = drop_diverged(table)
    if table.empty:
        raise TrainmapError(
            f"all {n_runs} runs diverged (their loss or weights became NaN/inf): nothing to "
            "analyse; make training stable (e.g. a lower learning rate) and retrain"
        )
    # Errors name the user's own run ids where the table has them.
    named = table.assign(**{RUN: table[RUN_NAME]}) if RUN_NAME in table.columns else table
    metrics = check_table(named, metric_columns(table, metrics), min_length=min_length)
    zscores, kept = zscore(table, metrics, max_checkpoints, normalization)
    log.info(
        "%d runs, %d checkpoints, %d metrics (%s z-scores): %s",
        table[RUN].nunique(),
        len(table),
        len(kept),
        normalization,
        kept,
    )
    split = split_runs(zscores[RUN].unique(), selection, folds, held_out_fraction, seed)
    return zscores, split


def zscore_metrics(zscores: pd.DataFrame) -> list[str]:
    """The metric columns of a z-score table (everything but run, step, epoch)."""
    return [c for c in zscores.columns if c not in (RUN, STEP, EPOCH)]
