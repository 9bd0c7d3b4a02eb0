"""The analysis rules through the real snakemake command, on the README's example config."""

import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import snakemake
from workflow_checkout import checkout, tiny_config

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config" / "examples" / "own_runs.yaml"


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return snakemake(cwd, *args, config="test.yaml", timeout=900)


def example_config(**analysis) -> dict:
    """The tiny config with the README's example experiment; no trained setting targeted."""
    config = tiny_config()
    config["experiments"] = yaml.safe_load(EXAMPLE.read_text())["experiments"]
    config["analysis"].update(analysis)
    return config


def summary_states(cwd: Path) -> int:
    """The number of states the regression of own_runs used."""
    return int(pd.read_csv(cwd / "results/regression/own_runs/summary.csv")["states_visited"][0])


def test_bad_table_stops_with_one_clear_line(tmp_path):
    config = example_config()
    config["experiments"]["own_runs"]["columns"]["run"] = "seeds"
    cwd = checkout(tmp_path / "w", config)
    result = run(cwd, "results/runs/own_runs/metrics.parquet")
    assert result.returncode != 0
    log = (cwd / "logs/analysis/own_runs/import_experiment.log").read_text()
    last = log.strip().splitlines()[-1]
    assert "experiments.own_runs.columns.run = 'seeds'" in last and "did you mean 'seed'" in last
    assert "Traceback" not in log


def test_schema_rejects_an_experiment_of_both_kinds(tmp_path):
    config = example_config()
    config["experiments"]["own_runs"]["checkpoints"] = "somewhere/"
    cwd = checkout(tmp_path / "w", config)
    result = run(cwd, "-n", "results/runs/own_runs/metrics.parquet")
    assert result.returncode != 0
    assert "own_runs" in result.stdout + result.stderr


@pytest.mark.slow
def test_example_experiment_end_to_end(tmp_path):
    config = example_config(k_max=5, baseline_k_max=5)
    # Only the experiment is analysed, so that the paper's tables need no training.
    config["settings"] = {}
    for section in ("blog", "sandbox"):
        config.pop(section, None)
    cwd = checkout(tmp_path / "w", config)
    hu2023 = ["table1.csv", "table2.csv", "table4.csv", "figure10.png", "stability.csv"]
    targets = [
        "results/maps/own_runs/map.png",
        "results/maps/own_runs/map.svg",
        "results/regression/own_runs/summary.csv",
        "results/baselines/own_runs/selection.csv",
        "results/predict/own_runs/evaluation.csv",
        "results/predict/own_runs/unfinished.csv",
        *[f"results/hu2023/{name}" for name in hu2023 + ["prediction.png"]],
    ]
    result = run(cwd, *targets)
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = pd.read_csv(cwd / "results/bic/own_runs/sweep.csv")
    # k = 1..k_max in 3 folds (tiny config), every run held out once; one more k at the edge.
    assert sorted(sweep["k"].unique())[:5] == [1, 2, 3, 4, 5]
    assert sorted(sweep["fold"].unique()) == [0, 1, 2]
    selection = pd.read_csv(cwd / "results/bic/own_runs/selection.csv")
    k = selection.loc[selection["chosen"], "k"].item()
    assert (
        selection.loc[selection["chosen"], "heldout_bic"].item() == selection["heldout_bic"].min()
    )
    assert selection["heldout_bic_se"].gt(0).all() and (selection["folds"] == 3).all()
    replicates = pd.read_csv(cwd / "results/stability/own_runs/replicates.csv")
    assert replicates["ari"].between(-1, 1).all() and len(replicates) == 2 + 3
    table1 = pd.read_csv(cwd / "results/hu2023/table1.csv")
    row = table1.set_index("name").loc["own_runs"]
    assert row["states"] == k and row["runs"] == 12
    # 12 runs for k states: shown as underpowered (no R²) below 3 runs per state.
    assert (row["Regression"] == "ok") == (12 >= 3 * summary_states(cwd))
    stability = pd.read_csv(cwd / "results/hu2023/stability.csv")
    assert stability.loc[0, "Map edges"] >= 1
    with __import__("numpy").load(cwd / "results/hmm/own_runs/model.npz") as arrays:
        assert arrays["transmat"].shape == (k, k)
        assert list(arrays["metrics"]) == ["l1", "l2", "spectral", "weight_var"]
    states = pd.read_parquet(cwd / "results/hmm/own_runs/states.parquet")
    assert states["run"].nunique() == 12 and states["state"].between(0, k - 1).all()
    summary = pd.read_csv(cwd / "results/regression/own_runs/summary.csv")
    assert summary.loc[0, "runs"] == 12 and 0 <= summary.loc[0, "rsquared"] <= 1
    edges = pd.read_csv(cwd / "results/maps/own_runs/edges.csv")
    assert (edges["runs"] <= 12).all() and edges["label"].str.contains("runs").all()
    assert (cwd / "results/maps/own_runs/map.svg").read_text().count("<svg") == 1
    evaluation = pd.read_csv(cwd / "results/predict/own_runs/evaluation.csv")
    assert set(evaluation["method"]) == {"map", "mean", "accuracy", "metrics"}
    assert evaluation["coverage"].between(0, 1).all() and (evaluation["runs"] <= 12).all()
    convergence = pd.read_csv(cwd / "results/regression/own_runs/convergence.csv")
    unfinished = pd.read_csv(cwd / "results/predict/own_runs/unfinished.csv")
    assert set(unfinished["run"]) == set(convergence.loc[~convergence["converged"], "run"])
    # Rerunning a step from scratch gives the same table (seeded restarts).
    before = (cwd / "results/regression/own_runs/summary.csv").read_text()
    again = run(cwd, "results/regression/own_runs/summary.csv", "--forcerun", "fit_hmm")
    assert again.returncode == 0, again.stderr[-3000:]
    assert (cwd / "results/regression/own_runs/summary.csv").read_text() == before
