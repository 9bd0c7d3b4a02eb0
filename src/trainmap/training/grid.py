"""The grid points of the ``settings`` config section (no torch: read at DAG time).

A setting's ``grid:`` lists values of optimizer keys that keep the parameter shapes
(:data:`GRID_KEYS`). Its runs are its seeds at every combination of those values, and
a training job trains a chunk of seeds at every combination as the members of one
batched model. The analysis is not shared: Hu et al. analyse the seeds of one
configuration, so each combination (a *grid point*) is a setting of its own, with its
own metrics table, named ``<setting>.<key>-<value>...`` (for example
``modular.lr-0.001.weight_decay-0.1``). A setting without a grid is its one grid point,
under its own name.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any, NamedTuple

from trainmap.errors import TrainmapError

#: Optimizer keys a grid may vary: per-member values of one batched job.
GRID_KEYS = ("lr", "weight_decay")


class GridPoint(NamedTuple):
    """One analysed setting: a configured setting at one combination of its grid values."""

    #: The configured setting whose training jobs train it.
    setting: str
    #: Its value of each grid key (empty without a grid).
    values: dict[str, float]
    #: The setting as analysed: these values in ``optimizer``, named in the title, no grid.
    config: dict[str, Any]


def _value(value: float) -> str:
    return f"{value:.12g}"


def grid_values(name: str, grid: Mapping[str, Any] | None) -> list[dict[str, float]]:
    """Every combination of the values of the setting ``name``'s ``grid`` (``[{}]``
    without one), the first key's values slowest.

    Raises :class:`TrainmapError` naming the config key for a key outside
    :data:`GRID_KEYS` or a value listed twice.
    """
    grid = grid or {}
    key = f"settings.{name}.grid"
    unknown = sorted(set(grid) - set(GRID_KEYS))
    if unknown:
        raise TrainmapError(
            f"config key {key!r}: unknown key(s) {unknown}; a grid varies only "
            f"{', '.join(GRID_KEYS)} (optimizer values that keep the parameter shapes)"
        )
    keys = [k for k in GRID_KEYS if k in grid]
    combinations = [
        {k: float(v) for k, v in zip(keys, values, strict=True)}
        for values in itertools.product(*(grid[k] for k in keys))
    ]
    names = [_suffix(values) for values in combinations]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise TrainmapError(
            f"config key {key!r}: a value is listed twice (or two agree to 12 significant "
            f"digits, the precision of the grid points' names): {name}{twice[0]}"
        )
    return combinations


def _suffix(values: Mapping[str, float]) -> str:
    return "".join(f".{k}-{_value(v)}" for k, v in values.items())


def grid_points(name: str, setting: Mapping[str, Any]) -> dict[str, GridPoint]:
    """The grid points of the configured setting ``name``, by name (:func:`grid_values`)."""
    points: dict[str, GridPoint] = {}
    for values in grid_values(name, setting.get("grid")):
        config = {k: v for k, v in setting.items() if k != "grid"}
        if values:
            config["optimizer"] = {**setting["optimizer"], **values}
            named = ", ".join(f"{k} {_value(v)}" for k, v in values.items())
            config["title"] = f"{setting['title']} ({named})"
        points[name + _suffix(values)] = GridPoint(name, values, config)
    return points


def expand_grids(settings: Mapping[str, Mapping[str, Any]]) -> dict[str, GridPoint]:
    """Every grid point of the ``settings`` section, by name, in config order."""
    points: dict[str, GridPoint] = {}
    for name, setting in settings.items():
        for point, spec in grid_points(name, setting).items():
            if point in points or (point != name and point in settings):
                raise TrainmapError(
                    f"config key 'settings.{name}.grid': grid point {point!r} is also "
                    "the name of another setting"
                )
            points[point] = spec
    return points
