"""A setting's grid: seeds x optimizer values trained as the members of one job, each
grid point gathered and analysed as a setting of its own."""

import copy

import numpy as np
import pandas as pd
import pytest
import yaml

from trainmap import tables
from trainmap.errors import TrainmapError
from trainmap.training.grid import GRID_KEYS, expand_grids, grid_points
from trainmap.training.runs import gather_runs
from trainmap.training.tasks import SparseParities
from trainmap.training.trainer import train_seeds

TINY = yaml.safe_load(open("tests/configs/tiny.yaml"))["settings"]


def gridded(name: str, epochs: int, **grid: list[float]) -> dict:
    setting = copy.deepcopy(TINY[name])
    setting["training"]["epochs"] = epochs
    setting["grid"] = grid
    return setting


def at(setting: dict, **values: float) -> dict:
    """The setting without its grid, at these optimizer values."""
    single = {k: v for k, v in setting.items() if k != "grid"}
    single["optimizer"] = {**setting["optimizer"], **values}
    return single


def rows(table: pd.DataFrame, run: int, **values: float) -> pd.DataFrame:
    keep = table[tables.RUN] == run
    for key, value in values.items():
        keep &= table[key] == value
    return table[keep].drop(columns=list(values)).reset_index(drop=True)


@pytest.mark.parametrize("name", ["modular", "modular_stabilized", "parities"])
def test_a_grid_member_equals_its_configuration_trained_alone(name):
    lr = TINY[name]["optimizer"]["lr"]
    setting = gridded(name, 8, lr=[lr, 3 * lr], weight_decay=[0.0, 0.1])
    grid = train_seeds(setting, [0, 1], device="cpu")
    assert len(grid.groupby(["lr", "weight_decay", tables.RUN])) == 2 * 2 * 2
    alone = train_seeds(at(setting, lr=3 * lr, weight_decay=0.1), [1], device="cpu")
    member = rows(grid, 1, lr=3 * lr, weight_decay=0.1)
    pd.testing.assert_frame_equal(member, alone, check_exact=False, rtol=1e-5, atol=1e-5)
    # ...and the grid's values really change the training.
    other = rows(grid, 1, lr=lr, weight_decay=0.1)
    assert not np.allclose(other[tables.TRAIN_LOSS], alone[tables.TRAIN_LOSS])


def test_a_grid_member_of_separate_models_equals_it_alone(monkeypatch):
    monkeypatch.setattr(SparseParities, "batched", False)
    setting = gridded("parities", 4, lr=[0.05, 0.2])
    grid = train_seeds(setting, [0, 1], device="cpu")
    alone = train_seeds(at(setting, lr=0.2), [0], device="cpu")
    pd.testing.assert_frame_equal(
        rows(grid, 0, lr=0.2), alone, check_exact=False, rtol=1e-5, atol=1e-5
    )


def test_gathering_a_grid_point_gives_its_runs_as_one_setting(tmp_path):
    setting = gridded("parities", 2, lr=[0.05, 0.2], weight_decay=[0.0, 0.01])
    paths = []
    for seeds in ([0, 1], [2]):
        path = tmp_path / f"seeds_{seeds[0]}-{seeds[-1]}.parquet"
        train_seeds(setting, seeds, device="cpu").to_parquet(path)
        paths.append(path)
    point = grid_points("parities", setting)["parities.lr-0.2.weight_decay-0.01"]
    table = gather_runs(paths, point.values)
    assert not set(GRID_KEYS) & set(table.columns)
    assert sorted(table[tables.RUN].unique()) == [0, 1, 2]
    alone = train_seeds(point.config, [0, 1, 2], device="cpu")
    pd.testing.assert_frame_equal(table, alone, check_exact=False, rtol=1e-5, atol=1e-5)
    with pytest.raises(TrainmapError, match="grid point"):
        gather_runs(paths, {"lr": 0.1, "weight_decay": 0.0})


def test_grid_points_are_named_by_their_values_and_set_them():
    setting = gridded("modular", 2, lr=[0.001, 0.003], weight_decay=[1e-5])
    points = grid_points("modular", setting)
    assert list(points) == [
        "modular.lr-0.001.weight_decay-1e-05",
        "modular.lr-0.003.weight_decay-1e-05",
    ]
    point = points["modular.lr-0.003.weight_decay-1e-05"]
    assert point.setting == "modular" and point.values == {"lr": 0.003, "weight_decay": 1e-5}
    assert point.config["optimizer"] == {**setting["optimizer"], **point.values}
    assert "lr 0.003" in point.config["title"] and "grid" not in point.config
    # Without a grid a setting is its one point, unchanged.
    assert expand_grids({"modular": TINY["modular"]})["modular"].config == TINY["modular"]


@pytest.mark.parametrize(
    ("grid", "named"),
    [
        ({"momentum": [0.9]}, "unknown key(s) ['momentum']"),
        ({"lr": [0.01, 0.010]}, "listed twice"),
    ],
)
def test_a_bad_grid_names_the_config_key(grid, named):
    setting = {**TINY["modular"], "grid": grid}
    with pytest.raises(TrainmapError, match="settings.modular.grid") as error:
        expand_grids({"modular": setting})
    assert named in str(error.value)


def test_a_grid_point_may_not_take_another_settings_name():
    point = {**TINY["modular"], "grid": {"lr": [0.01]}}
    with pytest.raises(TrainmapError, match="name of another setting"):
        expand_grids({"modular": point, "modular.lr-0.01": TINY["modular"]})
