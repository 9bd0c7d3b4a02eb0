"""What reruns and what is configured, through the real snakemake command (mostly dry runs).

A rule reruns when, and only when, something that determines its output changed:
titles, resources, logging and thresholds must not retrain; the learning rate must.
A ``--configfile`` is the whole config; layered files merge key by key. An edit to the
package reruns the jobs whose scripts import the edited module, and a script saved
again unchanged reruns nothing.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import one_thread, snakemake
from workflow_checkout import ROOT, checkout, tiny_config

TRAINED = "results/runs/modular/metrics.parquet"


def run(where: Path, *args: str) -> subprocess.CompletedProcess:
    env = one_thread()
    if (where / "src" / "trainmap").is_dir():  # a checkout with its own copy of the package
        env["PYTHONPATH"] = str(where / "src")
    return snakemake(where, *args, env=env)


def planned(where: Path, *args: str) -> dict[str, int]:
    """The jobs a dry run would run, by rule."""
    done = run(where, "-n", *args)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = done.stdout + done.stderr
    if "Nothing to be done" in text:
        return {}
    stats = text[text.index("Job stats:") : text.index("Reasons:")]
    return {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)\s*$", stats, re.MULTILINE)}


def small_config() -> dict:
    """The tiny config's `modular` setting, 4 seeds in 2 jobs of 2 epochs, and a copy of
    it with a grid of 2 x 2 optimizer values (2 seeds in 1 job), nothing else."""
    setting = copy.deepcopy(tiny_config()["settings"]["modular"])
    setting.update(seeds=4, seeds_per_job=2)
    setting["training"].update(epochs=2)
    grid = copy.deepcopy(setting)
    grid.update(seeds=2, grid={"lr": [0.01, 0.02], "weight_decay": [0.0, 1.0]})
    return {"settings": {"modular": setting, "grid": grid}}


def grid_tables(config: dict) -> list[str]:
    """The metrics table of every grid point of the setting `grid`."""
    grid = config["settings"]["grid"]["grid"]
    return [
        f"results/runs/grid.lr-{lr:g}.weight_decay-{wd:g}/metrics.parquet"
        for lr in grid["lr"]
        for wd in grid["weight_decay"]
    ]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A checkout where `modular` (2 training jobs) and an imported table are built."""
    config = small_config()
    config["experiments"] = {
        "own": {
            "title": "Own runs",
            "table": str(ROOT / "config" / "examples" / "own_runs.csv"),
            "columns": {
                "run": "seed",
                "step": "iteration",
                "eval_acc": "val_accuracy",
                "metrics": ["l1", "l2", "spectral", "weight_var"],
            },
            "convergence_threshold": 0.9,
        }
    }
    where = checkout(tmp_path_factory.mktemp("rebuild") / "workflow", config)
    targets = (TRAINED, *grid_tables(config), "results/normalized/own/zscores.parquet")
    done = run(where, *targets, "--configfile", "test.yaml")
    assert done.returncode == 0, done.stderr[-5000:]
    return where, config


def with_change(where: Path, config: dict, change) -> str:
    changed = copy.deepcopy(config)
    change(changed)
    (where / "changed.yaml").write_text(yaml.safe_dump(changed))
    return "changed.yaml"


def modular(c: dict) -> dict:
    return c["settings"]["modular"]


@pytest.mark.parametrize(
    "change",
    [
        lambda c: modular(c).update(title="Another title"),
        lambda c: modular(c)["resources"].update(mem_mb=4000, runtime=60),
        lambda c: modular(c)["training"].update(log_every_seconds=30),
        lambda c: modular(c).update(convergence_threshold=0.5),
    ],
    ids=["title", "resources", "log_every_seconds", "convergence_threshold"],
)
def test_metadata_changes_do_not_retrain(trained, change):
    where, config = trained
    assert planned(where, TRAINED, "--configfile", with_change(where, config, change)) == {}


def test_a_learning_rate_change_retrains_every_job(trained):
    where, config = trained
    changed = with_change(where, config, lambda c: modular(c)["optimizer"].update(lr=0.02))
    assert planned(where, TRAINED, "--configfile", changed) == {
        "train": 2,
        "gather_runs": 1,
        "total": 3,
    }


def test_more_seeds_train_only_the_new_chunk(trained):
    where, config = trained
    changed = with_change(where, config, lambda c: modular(c).update(seeds=6))
    jobs = run(where, "-n", TRAINED, "--configfile", changed)
    assert "seeds_4-5.parquet" in jobs.stdout
    assert planned(where, TRAINED, "--configfile", changed)["train"] == 1


def test_a_grid_edit_retrains_only_its_setting(trained):
    where, config = trained
    changed = with_change(where, config, lambda c: c["settings"]["grid"]["grid"].update(lr=[0.03]))
    targets = (TRAINED, *grid_tables(yaml.safe_load((where / changed).read_text())))
    # One job trains both new grid points; each is gathered into its own table.
    assert planned(where, *targets, "--configfile", changed) == {
        "train": 1,
        "gather_runs": 2,
        "total": 3,
    }


@pytest.mark.parametrize(
    "change",
    [
        lambda c: c["settings"]["grid"].update(title="Another title"),
        lambda c: c["settings"]["grid"]["resources"].update(mem_mb=4000),
    ],
    ids=["title", "resources"],
)
def test_a_grid_setting_metadata_change_does_not_retrain(trained, change):
    where, config = trained
    changed = with_change(where, config, change)
    assert planned(where, *grid_tables(config), "--configfile", changed) == {}


def test_every_grid_point_is_analysed_on_its_own(trained):
    where, config = trained
    points = [t.split("/")[2] for t in grid_tables(config)]
    maps = [f"results/maps/{point}/map.png" for point in points]
    jobs = planned(where, *maps, "--configfile", "test.yaml")
    assert "train" not in jobs and "gather_runs" not in jobs
    for rule in ("normalize", "select_states", "fit_hmm", "training_map"):
        assert jobs[rule] == len(points), rule
    text = run(where, "-n", maps[0], "--configfile", "test.yaml").stdout
    assert f"results/runs/{points[0]}/metrics.parquet" in text


@pytest.mark.parametrize(
    "change", [{"title": "New"}, {"convergence_threshold": 0.5}], ids=["title", "threshold"]
)
def test_a_table_experiment_title_or_threshold_reruns_no_import(trained, change):
    where, config = trained
    changed = with_change(where, config, lambda c: c["experiments"]["own"].update(change))
    assert planned(where, "results/normalized/own/zscores.parquet", "--configfile", changed) == {}


def test_a_new_or_overwritten_checkpoint_reruns_its_metrics(tmp_path):
    folder = tmp_path / "checkpoints"
    (folder / "seed_0").mkdir(parents=True)
    (folder / "seed_0" / "step_0.pt").write_bytes(b"x")
    config = {"experiments": {"ck": {"title": "ck", "checkpoints": str(folder)}}}
    where = checkout(tmp_path / "workflow", config)
    output = where / "results" / "runs" / "ck" / "metrics.parquet"
    output.parent.mkdir(parents=True)
    output.write_bytes(b"made after the checkpoints")
    target = "results/runs/ck/metrics.parquet"
    assert planned(where, target, "--configfile", "test.yaml") == {}
    time.sleep(0.01)
    (folder / "seed_0" / "step_5.pt").write_bytes(b"y")  # a new checkpoint, one level down
    assert planned(where, target, "--configfile", "test.yaml") == {
        "checkpoint_metrics": 1,
        "total": 1,
    }
    (folder / "seed_0" / "step_5.pt").unlink()
    os.utime(output)
    time.sleep(0.01)
    (folder / "seed_0" / "step_0.pt").write_bytes(b"overwritten")
    assert planned(where, target, "--configfile", "test.yaml") == {
        "checkpoint_metrics": 1,
        "total": 1,
    }


SANDBOX_LOGS = tuple(
    f"results/sandbox2025/runs/{job}/log.parquet"
    for job in ("ablation_lr", "ablation_mlp_discount")
)


@pytest.fixture(scope="module")
def sandbox_trained(tmp_path_factory):
    """A checkout where two tiny sandbox jobs are built."""
    config = {"sandbox": tiny_config()["sandbox"]}
    where = checkout(tmp_path_factory.mktemp("sandbox") / "workflow", config)
    done = run(where, *SANDBOX_LOGS, "--configfile", "test.yaml")
    assert done.returncode == 0, done.stderr[-5000:]
    return where, config


def sandbox_experiment(c: dict, name: str) -> dict:
    return c["sandbox"]["experiments"][name]


@pytest.mark.parametrize(
    "change",
    [
        lambda c: sandbox_experiment(c, "ablation_lr")["grid"].update(lr=[1e-3, 3e-2]),
        lambda c: sandbox_experiment(c, "ablation_lr")["grid"].update(weight_decay=[0, 0.1]),
    ],
    ids=["lr", "weight_decay"],
)
def test_a_sandbox_member_grid_edit_retrains_only_its_job(sandbox_trained, change):
    where, config = sandbox_trained
    changed = with_change(where, config, change)
    assert planned(where, *SANDBOX_LOGS, "--configfile", changed) == {
        "sandbox_train": 1,
        "total": 1,
    }


def test_a_sandbox_figure_setting_does_not_retrain(sandbox_trained):
    where, config = sandbox_trained
    changed = with_change(where, config, lambda c: c["sandbox"].update(success_threshold=0.5))
    assert planned(where, *SANDBOX_LOGS, "--configfile", changed) == {}


@pytest.fixture(scope="module")
def repository(tmp_path_factory):
    """A checkout that runs the README's commands as written (no --configfile rewriting)."""
    return checkout(tmp_path_factory.mktemp("readme") / "workflow", {})


def test_a_configfile_is_the_whole_config(repository):
    jobs = planned(repository, "--configfile", "config/examples/own_runs.yaml")
    assert jobs["import_experiment"] == 1
    for rule in ("train", "sandbox_train", "blog_pca"):
        assert rule not in jobs, f"{rule} runs though the file names no such stage"


def test_a_file_layered_over_the_default_adds_to_it(repository):
    default = planned(repository)
    layered = planned(
        repository, "--configfile", "config/config.yaml", "config/examples/own_runs.yaml"
    )
    assert layered["train"] == default["train"]
    assert layered["sandbox_train"] == default["sandbox_train"]
    assert layered["import_experiment"] == 1 and "import_experiment" not in default


def test_left_out_sections_take_the_schema_defaults(repository):
    own = yaml.safe_load((ROOT / "config" / "examples" / "own_runs.yaml").read_text())
    (repository / "k3.yaml").write_text(yaml.safe_dump({**own, "analysis": {"k_max": 3}}))
    sweep = "results/bic/own_runs/sweep.csv"
    assert planned(repository, sweep, "--configfile", "k3.yaml")["bic_sweep"] == 3
    schema = yaml.safe_load((ROOT / "workflow/schemas/analysis.schema.yaml").read_text())
    default = schema["properties"]["k_max"]["default"]
    jobs = planned(repository, sweep, "--configfile", "config/examples/own_runs.yaml")
    assert jobs["bic_sweep"] == default


def readme_commands() -> list[list[str]]:
    """Every `.venv/bin/snakemake ...` command in README.md and config/examples/*.yaml."""
    texts = [ROOT / "README.md", *sorted((ROOT / "config" / "examples").glob("*.yaml"))]
    found = []
    for path in texts:
        text = re.sub(r"\\\n\s*(#\s*)?", " ", path.read_text())
        for line in text.splitlines():
            match = re.search(r"\.venv/bin/snakemake ([^#`]*)", line)
            if match:
                found.append(match.group(1).split())
    return found


def test_every_readme_command_dry_runs(repository):
    commands = readme_commands()
    assert len(commands) >= 10
    # The example checkpoint folder, as the README makes it, but empty files: a dry run
    # reads no checkpoint.
    folder = repository / "data" / "own_checkpoints" / "seed_0"
    folder.mkdir(parents=True)
    (folder / "step_0.pt").write_bytes(b"")
    (folder.parent / "scores.csv").write_text("run,step,eval_acc\n")
    # The recorder's folder that config/examples/record_digits.py writes.
    (repository / "data" / "record_digits").mkdir()
    (repository / "my_changes.yaml").write_text(yaml.safe_dump({"scale": "mine"}))
    # Commands that differ only in their targets run as one dry run.
    runs: dict[tuple[str, ...], list[str]] = {}
    for command in commands:
        # Cores come from run() here; the SLURM profile needs a cluster.
        args = " ".join(command).replace("--profile profiles/slurm", "")
        args = re.sub(r"--cores \w+", "", args).split()
        if "--report" in args or "download_data" in args:
            continue
        targets = [a for a in args if a.startswith("results/")]
        if "--configfile" in args:  # it takes every file name after it, targets too
            after = args[args.index("--configfile") :]
            assert not set(after) & set(targets), f"targets after --configfile: {command}"
        options = tuple(a for a in args if a not in targets)
        runs.setdefault(options, []).extend(targets)
    for options, targets in runs.items():
        done = run(repository, "-n", *targets, *options)
        assert done.returncode == 0, f"snakemake {targets} {options}:\n{done.stderr[-3000:]}"


ANALYSED = (
    "results/regression/modular/summary.csv",
    "results/maps/modular/edges.csv",
    "results/hu2023/table1.csv",
    "results/hu2023/table2.csv",
)


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """A checkout with its own copy of the package where tiny `modular` is analysed."""
    tiny = tiny_config()
    config = {
        "device": "cpu",
        "settings": {"modular": tiny["settings"]["modular"]},
        "analysis": tiny["analysis"],
    }
    where = checkout(tmp_path_factory.mktemp("package") / "workflow", config)
    shutil.copytree(
        ROOT / "src" / "trainmap",
        where / "src" / "trainmap",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    done = run(where, *ANALYSED, "--configfile", "test.yaml")
    assert done.returncode == 0, done.stderr[-5000:]
    assert planned(where, *ANALYSED, "--configfile", "test.yaml") == {}
    return where


def test_a_package_edit_reruns_the_jobs_that_import_it_and_no_training(analysed):
    module = analysed / "src" / "trainmap" / "analysis" / "regression.py"
    text = module.read_text()
    module.write_text(text + "\n# an edit\n")
    try:
        # Convergence times are computed by analysis/regression.py too.
        assert planned(analysed, *ANALYSED, "--configfile", "test.yaml") == {
            "convergence": 1,
            "training_map": 1,
            "regression": 1,
            "hu2023_table1": 1,
            "hu2023_table2": 1,
            "total": 5,
        }
    finally:
        module.write_text(text)
    assert planned(analysed, *ANALYSED, "--configfile", "test.yaml") == {}


def test_a_script_saved_again_or_reverted_reruns_nothing(analysed):
    script = analysed / "workflow" / "scripts" / "regression.py"
    text = script.read_text()
    script.write_text(text + "\n# an edit\n")
    assert planned(analysed, *ANALYSED, "--configfile", "test.yaml")["regression"] == 1
    time.sleep(0.01)
    script.write_text(text)  # reverted: newer than every output, the same text
    assert planned(analysed, *ANALYSED, "--configfile", "test.yaml") == {}
