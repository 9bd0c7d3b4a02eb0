"""Gather a setting's training jobs into its metrics table (pandas only, no torch)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from trainmap.errors import TrainmapError
from trainmap.tables import RUN, STEP, read_metrics_table


def gather_runs(
    paths: Iterable[str | Path], grid_values: Mapping[str, float] | None = None
) -> pd.DataFrame:
    """Concatenate job tables (``seeds_<first>-<last>.parquet``), sorted by run and step.

    ``grid_values``: of a setting with a grid, the rows of one grid point (a column per
    grid key holds each row's value); those columns are left out.

    Raises :class:`TrainmapError` naming the run if two jobs hold the same run, or the
    values if no job holds that grid point.
    """
    grid_values = grid_values or {}
    tables = [read_metrics_table(p, (RUN, STEP, *grid_values)) for p in paths]
    if not tables:
        raise TrainmapError("gather_runs got no job tables")
    table = pd.concat(tables, ignore_index=True)
    if grid_values:
        keep = np.logical_and.reduce([table[k].to_numpy() == v for k, v in grid_values.items()])
        if not keep.any():
            raise TrainmapError(f"no job table holds runs at grid point {dict(grid_values)}")
        table = table[keep].drop(columns=list(grid_values))
    duplicated = table[table.duplicated([RUN, STEP])]
    if not duplicated.empty:
        raise TrainmapError(f"run {duplicated[RUN].iloc[0]} appears in more than one job table")
    return table.sort_values([RUN, STEP], kind="stable").reset_index(drop=True)
