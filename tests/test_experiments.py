"""The user's own tables: import, and a clear message for every kind of bad input."""

import logging
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
import yaml
from referencing import Registry, Resource

from trainmap.analysis.experiments import import_table
from trainmap.analysis.normalize import normalize_runs
from trainmap.errors import TrainmapError

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "workflow" / "schemas"


def user_table(n_runs: int = 3, length: int = 12) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = n_runs * length
    return pd.DataFrame(
        {
            "seed": np.repeat([f"run-{i}" for i in range(n_runs)], length),
            "iteration": np.tile(np.arange(length) * 5, n_runs),
            "l2": rng.normal(size=rows),
            "sparsity": rng.normal(size=rows),
            "acc": np.tile(np.linspace(0, 1, length), n_runs),
        }
    )


def experiment(path: Path, **extra) -> dict:
    return {
        "title": "mine",
        "table": str(path),
        "columns": {
            "run": "seed",
            "step": "iteration",
            "eval_acc": "acc",
            "metrics": ["l2", "sparsity"],
        },
        "convergence_threshold": 0.9,
        **extra,
    }


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_import_maps_columns_and_run_ids(tmp_path, suffix):
    path = tmp_path / f"t{suffix}"
    raw = user_table()
    raw.to_csv(path, index=False) if suffix == ".csv" else raw.to_parquet(path)
    table = import_table(experiment(path), "mine")
    assert table["run"].tolist() == [0] * 12 + [1] * 12 + [2] * 12
    assert table["run_name"].unique().tolist() == ["run-0", "run-1", "run-2"]
    assert table["step"].dtype == np.int64 and table["epoch"].isna().all()
    np.testing.assert_allclose(table["l2"], raw["l2"])
    np.testing.assert_allclose(table["eval_acc"], raw["acc"])
    assert not table["diverged"].any()


def write(tmp_path: Path, table: pd.DataFrame) -> Path:
    path = tmp_path / "t.csv"
    table.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda t: t.rename(columns={"seed": "seeds"}),
            "columns.run = 'seed'.*did you mean 'seeds'",
        ),
        (lambda t: t.drop(columns="sparsity"), r"columns.metrics.*\['sparsity'\]"),
        (lambda t: t.assign(l2=t["l2"].where(t.index != 14)), "'l2' has 1 NaN.*run-1"),
        (lambda t: t.assign(l2=t["l2"].replace(t["l2"].iloc[30], np.inf)), "'l2'.*infinite.*run-2"),
        (lambda t: t[t["seed"] == "run-0"], "1 run.*at least 2"),
        (lambda t: t.assign(iteration=t["iteration"] + 0.5), "whole numbers"),
        (lambda t: pd.concat([t, t.iloc[[0]]]), "duplicated.*run-0 step 0"),
        (lambda t: t.assign(acc=t["acc"].where(t.index != 3)), "eval_acc.*run-0"),
        (lambda t: t.assign(l2="x"), "'l2' is not numeric"),
    ],
)
def test_bad_tables_get_a_message_naming_the_culprit(tmp_path, change, message):
    path = write(tmp_path, change(user_table()))
    with pytest.raises(TrainmapError, match=message):
        import_table(experiment(path), "mine")


def test_bad_config_gets_a_message_naming_the_key(tmp_path):
    path = write(tmp_path, user_table())
    defaults = import_table(
        {**experiment(path), "columns": {"run": "seed", "step": "iteration", "eval_acc": "acc"}},
        "mine",
    )
    assert "l2" in defaults.columns and "sparsity" not in defaults.columns  # the paper's names
    with pytest.raises(TrainmapError, match="experiments.mine.table: file .* does not exist"):
        import_table(experiment(tmp_path / "missing.csv"), "mine")
    with pytest.raises(TrainmapError, match="convergence_threshold"):
        import_table(experiment(path, convergence_threshold=None), "mine")
    no_acc = experiment(path)
    no_acc["columns"] = {"run": "seed", "step": "iteration", "metrics": ["l2"]}
    with pytest.raises(TrainmapError, match="no evaluation-accuracy column"):
        import_table(no_acc, "mine")
    no_metrics = experiment(write(tmp_path, user_table().rename(columns={"l2": "norm"})))
    del no_metrics["columns"]["metrics"]  # default: the 14 paper names, none present
    with pytest.raises(TrainmapError, match="columns.metrics.*none of the metric columns"):
        import_table(no_metrics, "mine")


def test_run_shorter_than_k_max_is_named(tmp_path):
    table = user_table()
    table = table[~((table["seed"] == "run-1") & (table["iteration"] > 10))]
    imported = import_table(experiment(write(tmp_path, table)), "mine")
    with pytest.raises(TrainmapError, match="run.*1.*only 3 checkpoint.*k_max"):
        normalize_runs(imported, ["l2", "sparsity"], min_length=5)


def test_constant_metric_is_dropped_with_a_warning(tmp_path, caplog):
    imported = import_table(experiment(write(tmp_path, user_table().assign(sparsity=2.0))), "mine")
    with caplog.at_level(logging.WARNING):
        zscores, split = normalize_runs(
            imported, ["l2", "sparsity"], min_length=2, normalization="per_run", selection="holdout"
        )
    assert "'sparsity' is constant" in caplog.text
    assert "sparsity" not in zscores.columns
    # z-scores: zero mean, unit variance per run; one of three runs held out.
    stats = zscores.groupby("run")["l2"].agg(["mean", "std"])
    np.testing.assert_allclose(stats["mean"], 0, atol=1e-12)
    np.testing.assert_allclose(stats["std"] * np.sqrt(11 / 12), 1)
    assert split["fold"].value_counts().to_dict() == {-1: 2, 0: 1}


def test_diverged_runs_are_dropped_with_a_warning(tmp_path, caplog):
    table = user_table().assign(div=lambda t: (t["seed"] == "run-2") & (t["iteration"] > 40))
    exp = experiment(write(tmp_path, table))
    exp["columns"]["diverged"] = "div"
    with caplog.at_level(logging.WARNING):
        zscores, _ = normalize_runs(import_table(exp, "mine"), ["l2", "sparsity"])
    assert sorted(zscores["run"].unique()) == [0, 1]
    assert "1 diverged run(s): 2" in caplog.text


def validator():
    resources = {
        p.name: Resource.from_contents(yaml.safe_load(p.read_text()))
        for p in SCHEMAS.glob("*.yaml")
    }
    registry = Registry().with_resources(resources.items())
    return jsonschema.Draft202012Validator(
        resources["experiments.schema.yaml"].contents, registry=registry
    )


def test_schema_allows_exactly_one_kind():
    check = validator()
    table = {"title": "t", "table": "runs.csv", "columns": {"run": "seed"}}
    check.validate(table)
    check.validate({"title": "t", "checkpoints": "ckpts/"})
    for bad in (
        {**table, "checkpoints": "ckpts/"},  # both kinds
        {"title": "t"},  # neither
        {**table, "table": "runs.xlsx"},
        {**table, "columns": {"run_id": "seed"}},  # misspelt role
    ):
        with pytest.raises(jsonschema.ValidationError):
            check.validate(bad)


def test_example_config_is_a_valid_experiment():
    config = yaml.safe_load((ROOT / "config" / "examples" / "own_runs.yaml").read_text())
    for name, exp in config["experiments"].items():
        validator().validate(exp)
        table = import_table({**exp, "table": str(ROOT / exp["table"])}, name)
        assert table["run"].nunique() >= 2
