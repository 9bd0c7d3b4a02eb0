"""Gather a setting's training jobs into its metrics table (pandas only, no torch)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from trainmap.errors import TrainmapError
from trainmap.tables import RUN, STEP, read_metrics_table


def gather_runs(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Concatenate job tables (``seeds_<first>-<last>.parquet``), sorted by run and step.

    Raises :class:`TrainmapError` naming the run if two jobs hold the same run.
    """
    tables = [read_metrics_table(p) for p in paths]
    if not tables:
        raise TrainmapError("gather_runs got no job tables")
    table = pd.concat(tables, ignore_index=True)
    duplicated = table[table.duplicated([RUN, STEP])]
    if not duplicated.empty:
        raise TrainmapError(f"run {duplicated[RUN].iloc[0]} appears in more than one job table")
    return table.sort_values([RUN, STEP], kind="stable").reset_index(drop=True)
