"""Bad user input: a clear error naming the key, column and the user's run id, or the
handling README describes (diverged runs dropped with a warning)."""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import snakemake
from snakemake.utils import validate
from workflow_checkout import ROOT, checkout, tiny_config

from trainmap.analysis.experiments import check_experiment_keys, import_table
from trainmap.analysis.normalize import normalize_runs
from trainmap.errors import TrainmapError
from trainmap.metrics.checkpoints import load_state_dict
from trainmap.tables import (
    DIVERGED,
    RUN_NAME,
    atomic_output,
    read_metrics_table,
    read_recorded,
    write_table,
)
from trainmap.training.tasks import task_names

METRICS = ["l1", "l2", "spectral", "weight_var"]


def user_table(tmp_path, edit=None) -> dict:
    """The example experiment (12 runs seed_0..seed_11, 80 rows each), edited, as a config."""
    table = pd.read_csv(ROOT / "config" / "examples" / "own_runs.csv")
    if edit is not None:
        table = edit(table)
    path = tmp_path / "runs.csv"
    table.to_csv(path, index=False)
    columns = {"run": "seed", "step": "iteration", "eval_acc": "val_accuracy", "metrics": METRICS}
    if "flag" in table.columns:
        columns["diverged"] = "flag"
    return {"title": "t", "table": str(path), "columns": columns, "convergence_threshold": 0.9}


def normalize(table: pd.DataFrame, min_length: int = 1):
    return normalize_runs(table, METRICS, min_length=min_length)


def test_accuracy_in_percent_is_named(tmp_path):
    config = user_table(tmp_path, lambda t: t.assign(val_accuracy=100 * t["val_accuracy"]))
    with pytest.raises(
        TrainmapError, match=r"experiments\.mine\.columns\.eval_acc.*val_accuracy.*fraction"
    ):
        import_table(config, "mine")


def test_diverged_blanks_and_no_mean_not_diverged(tmp_path, caplog):
    def flags(t):
        flag = np.where(t["seed"] == "seed_3", "yes", np.where(t["seed"] == "seed_4", "no", ""))
        return t.assign(flag=flag)

    table = import_table(user_table(tmp_path, flags), "mine")
    flagged = set(table.loc[table[DIVERGED], RUN_NAME])
    assert flagged == {"seed_3"}
    with caplog.at_level(logging.WARNING):
        zscores, _ = normalize(table)
    assert zscores["run"].nunique() == 11
    assert "dropping 1 diverged run" in caplog.text


def test_unknown_diverged_flags_are_named(tmp_path):
    config = user_table(tmp_path, lambda t: t.assign(flag="maybe"))
    with pytest.raises(TrainmapError, match=r"columns\.diverged.*'maybe'"):
        import_table(config, "mine")


def test_nan_metrics_after_divergence_are_dropped_not_rejected(tmp_path):
    def diverge(t):
        late = (t["seed"] == "seed_5") & (t["iteration"] >= 400)
        t.loc[late, "l1"] = np.nan
        return t.assign(flag=late)

    table = import_table(user_table(tmp_path, diverge), "mine")
    zscores, _ = normalize(table)
    assert zscores["run"].nunique() == 11 and np.isfinite(zscores[METRICS]).all().all()


def test_values_overflowing_the_zscore_are_named(tmp_path):
    def huge(t):
        t.loc[t["seed"] == "seed_7", "l2"] *= 1e300
        return t

    with pytest.raises(TrainmapError, match=r"'l2'.*seed_7.*too large"):
        import_table(user_table(tmp_path, huge), "mine")


def test_a_run_shorter_than_k_max_is_named_by_its_own_id(tmp_path):
    def shorten(t):
        return t[(t["seed"] != "seed_2") | (t["iteration"] < 30)]

    table = import_table(user_table(tmp_path, shorten), "mine")
    with pytest.raises(TrainmapError, match=r"seed_2.*only 3 checkpoint.*k_max"):
        normalize(table, min_length=8)


def test_all_runs_diverged_says_so(tmp_path):
    table = import_table(user_table(tmp_path), "mine").assign(**{DIVERGED: True})
    with pytest.raises(TrainmapError, match="all 12 runs diverged"):
        normalize(table)
    config = user_table(tmp_path, lambda t: t.assign(flag="true"))
    with pytest.raises(TrainmapError, match="every one of the 12 runs is marked diverged"):
        import_table(config, "mine")


def test_a_misspelt_experiment_key_is_named():
    experiments = {"mine": {"title": "t", "tabel": "runs.csv"}}
    with pytest.raises(TrainmapError, match=r"experiments\.mine: unknown key 'tabel'.*'table'"):
        check_experiment_keys(experiments, ROOT / "workflow" / "schemas")


def test_the_schema_knows_exactly_the_registered_tasks():
    schema = yaml.safe_load((ROOT / "workflow/schemas/settings.schema.yaml").read_text())
    assert sorted(schema["properties"]["task"]["enum"]) == task_names()
    config = tiny_config()
    config["settings"]["modular"]["task"] = "modular_adition"
    with pytest.raises(Exception, match="modular_adition"):
        validate(config, str(ROOT / "workflow/schemas/config.schema.yaml"))


def test_an_empty_checkpoint_file_has_a_reason(tmp_path):
    (tmp_path / "step_0.pt").write_bytes(b"")
    with pytest.raises(TrainmapError, match=r"step_0\.pt is empty \(0 bytes\)"):
        load_state_dict(tmp_path / "step_0.pt")


def renamed(config: dict, section: str, name: str) -> dict:
    """The tiny config with an entry of `settings` or `experiments` under a new name,
    or an experiment of that name added to the sandbox's (whose names are fixed)."""
    if section == "experiments":
        config["experiments"] = {name: {"title": "t", "table": "runs.csv"}}
    elif section == "settings":
        config["settings"][name] = config["settings"].pop("modular")
    else:
        config["sandbox"]["experiments"][name] = {"seeds": 1}
    return config


TRAVERSALS = ["../evil", "a/b", "..", ".hidden", "x..y", "/abs", "a b"]


@pytest.mark.parametrize("section", ["settings", "experiments", "sandbox"])
@pytest.mark.parametrize("name", TRAVERSALS)
def test_a_name_that_is_no_plain_folder_name_is_refused(section, name):
    config = renamed(tiny_config(), section, name)
    with pytest.raises(Exception, match=r"does not match") as error:
        validate(config, str(ROOT / "workflow/schemas/config.schema.yaml"))
    assert repr(name) in str(error.value)


@pytest.mark.parametrize("section", ["settings", "experiments", "sandbox"])
def test_dots_dashes_and_underscores_make_a_name(section):
    config = renamed(tiny_config(), section, "cifar-100_v2.1")
    validate(config, str(ROOT / "workflow/schemas/config.schema.yaml"))


@pytest.mark.slow
def test_a_traversal_name_runs_nothing_and_writes_nothing_outside(tmp_path):
    config = {"experiments": {"../../../escaped": user_table(tmp_path)}}
    where = checkout(tmp_path / "deep" / "er" / "workflow", config)
    before = {p for p in tmp_path.rglob("*") if where not in p.parents}
    done = snakemake(where, cores=1, config="test.yaml", timeout=300)
    assert done.returncode != 0
    assert "'../../../escaped' does not match" in done.stderr + done.stdout
    assert {p for p in tmp_path.rglob("*") if where not in p.parents} == before
    assert not (where / "results").exists() and not (where / "logs").exists()


def test_a_damaged_metrics_table_is_named(tmp_path):
    (tmp_path / "metrics.parquet").write_bytes(b"PAR1" + bytes(100) + b"PAR1")
    with pytest.raises(TrainmapError, match=r"cannot read .*metrics\.parquet: \w+"):
        read_metrics_table(tmp_path / "metrics.parquet")


def test_a_damaged_part_of_a_recorders_folder_is_named(tmp_path):
    (tmp_path / "seed_0").mkdir()
    (tmp_path / "seed_0" / "0-10.parquet").write_text("run,step\n0,0\n")
    with pytest.raises(TrainmapError, match=r"cannot read .*seed_0/0-10\.parquet: \w+"):
        read_recorded(tmp_path)


def test_a_misspelt_metric_column_gets_the_closest_name(tmp_path):
    config = user_table(tmp_path)
    config["columns"]["metrics"] = ["l1", "l2", "spectal"]
    with pytest.raises(
        TrainmapError,
        match=r"experiments\.mine\.columns\.metrics: metric column 'spectal' not in the table; "
        r"did you mean 'spectral'\?",
    ):
        import_table(config, "mine")


def test_a_metrics_table_without_a_step_column_gets_the_closest_name(tmp_path):
    pd.DataFrame({"run": [0], "steps": [0], "l2": [1.0]}).to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(TrainmapError, match=r"m\.csv lacks column 'step'; did you mean 'steps'\?"):
        read_metrics_table(tmp_path / "m.csv")


def test_a_write_that_fails_names_its_file(tmp_path):
    """A full disk: the OS's error from write() names no file."""
    with pytest.raises(TrainmapError, match=r"cannot write .*out\.csv: No space left on device"):
        with atomic_output(tmp_path / "out.csv"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    (tmp_path / "file").write_text("")
    with pytest.raises(TrainmapError, match=r"cannot write .*file/out\.csv: \w+"):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "file" / "out.csv")


JOB = """
import sys
from types import SimpleNamespace
from trainmap.jobs import job

smk = SimpleNamespace(log=[sys.argv[1]], threads=1, rule="my_rule", config={"numerics": "native"})
with job(smk):
    exec(sys.argv[2])
"""


@pytest.mark.parametrize(
    ("body", "last_line"),
    [
        ("open('/nonexistent/dir/out.csv', 'w')",
         "[Errno 2] No such file or directory: '/nonexistent/dir/out.csv' (rule my_rule)"),
        ("raise OSError(28, 'No space left on device')",
         "[Errno 28] No space left on device (rule my_rule)"),
        ("{}['key']", "KeyError: 'key'"),
    ],
    ids=["os_error", "disk_full", "bug"],
)  # fmt: skip
def test_a_jobs_own_log_holds_its_error(tmp_path, body, last_line):
    log = tmp_path / "job.log"
    done = subprocess.run(
        [sys.executable, "-c", JOB, str(log), body], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert log.read_text().strip().splitlines()[-1].endswith(last_line)
    assert done.stderr.strip().splitlines()[-1].endswith(last_line)
