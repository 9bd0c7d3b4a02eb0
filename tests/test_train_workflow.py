"""The train rules through the real snakemake command: bad configs, a tiny end-to-end run."""

import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import snakemake

from trainmap import tables

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "configs" / "tiny.yaml"


def workdir(tmp_path: Path) -> Path:
    """A copy of the workflow to run in, so that tests never touch the repository's results."""
    for part in ("Snakefile", "workflow", "config", "envs"):
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, tmp_path / part)
        elif source.exists():
            shutil.copy(source, tmp_path / part)
    return tmp_path


def run(cwd: Path, config: Path, *args: str) -> subprocess.CompletedProcess:
    return snakemake(cwd, *args, config=config)


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda c: c["settings"]["modular"]["model"].update(d_modle=64), "d_modle"),
        (lambda c: c["settings"]["parities"]["training"].update(epochs="many"), "epochs"),
        (lambda c: c["settings"]["parities"].update(seed=3), "seed"),
        (
            lambda c: c["settings"]["modular"].update(grid={"momentum": [0.9]}),
            "settings.modular.grid",
        ),
    ],
)
def test_bad_config_stops_with_the_key_named(tmp_path, edit, named):
    cwd = workdir(tmp_path)
    config = yaml.safe_load(TINY.read_text())
    edit(config)
    bad = cwd / "bad.yaml"
    bad.write_text(yaml.safe_dump(config))
    result = run(cwd, bad, "-n", *[f"results/runs/{s}/metrics.parquet" for s in config["settings"]])
    assert result.returncode != 0
    assert named in result.stdout + result.stderr


@pytest.mark.slow
def test_tiny_end_to_end(tmp_path):
    cwd = workdir(tmp_path)
    config = yaml.safe_load(TINY.read_text())
    targets = [f"results/runs/{s}/metrics.parquet" for s in config["settings"]]
    result = run(cwd, TINY, *targets)
    assert result.returncode == 0, result.stderr[-3000:]
    for name, setting in config["settings"].items():
        table = tables.read_metrics_table(cwd / f"results/runs/{name}/metrics.parquet")
        assert sorted(table[tables.RUN].unique()) == list(range(setting["seeds"]))
        assert (table.groupby(tables.RUN)[tables.STEP].min() == 0).all()
        assert list((cwd / f"results/runs/{name}").glob("resume/*.pt")) == []  # cleaned up
        log = (cwd / f"logs/train/{name}/seeds_0-{setting['seeds_per_job'] - 1}.log").read_text()
        assert "run-epochs/s" in log
    # The modular setting was split over two jobs; gathering them equals one job of all seeds.
    modular = pd.read_parquet(cwd / "results/runs/modular/metrics.parquet")
    assert len(list((cwd / "results/runs/modular/chunks").glob("*.parquet"))) == 2
    from trainmap.training.trainer import train_seeds

    alone = train_seeds(config["settings"]["modular"], range(8), device="cpu")
    pd.testing.assert_frame_equal(modular, alone, check_exact=False, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_first_seed_trains_the_same_runs_under_their_true_seeds(tmp_path):
    """Seeds 1..2 (first_seed 1) are seeds 1 and 2 of the block 0..2, under their numbers."""
    config = yaml.safe_load(TINY.read_text())
    modular = {**config["settings"]["modular"], "seeds_per_job": 1}
    modular["training"] = {**modular["training"], "epochs": 6}
    metrics = {}
    for first_seed, seeds in ((0, 3), (1, 2)):
        (tmp_path / str(first_seed)).mkdir()
        cwd = workdir(tmp_path / str(first_seed))
        path = cwd / "fresh.yaml"
        settings = {"modular": {**modular, "first_seed": first_seed, "seeds": seeds}}
        path.write_text(yaml.safe_dump({**config, "settings": settings}))
        result = run(cwd, path, "results/runs/modular/metrics.parquet")
        assert result.returncode == 0, result.stderr[-3000:]
        chunks = sorted(p.name for p in (cwd / "results/runs/modular/chunks").iterdir())
        assert chunks == [f"seeds_{s}-{s}.parquet" for s in range(first_seed, first_seed + seeds)]
        assert (
            "numerics: pinned"
            in (cwd / f"logs/train/modular/seeds_{first_seed}-{first_seed}.log").read_text()
        )
        metrics[first_seed] = pd.read_parquet(cwd / "results/runs/modular/metrics.parquet")
    assert sorted(metrics[1][tables.RUN].unique()) == [1, 2]
    overlap = metrics[0][metrics[0][tables.RUN] >= 1].reset_index(drop=True)
    pd.testing.assert_frame_equal(metrics[1], overlap, check_exact=True)
    assert not overlap[tables.TRAIN_LOSS].equals(metrics[0][tables.TRAIN_LOSS].iloc[: len(overlap)])
