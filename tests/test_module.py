"""trainmap as a Snakemake module of another workflow, and its workflow-catalog file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import yaml
from conftest import one_thread, snakemake, succeeded
from workflow_checkout import ROOT, checkout

OUTER = """\
configfile: "config.yaml"


module trainmap:
    snakefile:
        "{snakefile}"
    config:
        config["trainmap"]


use rule * from trainmap as trainmap_*


rule all:
    default_target: True
    input:
        "results/maps/own/map.png",
"""


def outer_workflow(tmp_path: Path) -> Path:
    """A tiny workflow that uses trainmap's rules on one metric table of its own."""
    module = checkout(tmp_path / "trainmap", {})
    outer = tmp_path / "outer"
    outer.mkdir()
    (outer / "Snakefile").write_text(OUTER.format(snakefile=module / "Snakefile"))
    experiment = {
        "title": "Own runs",
        "table": str(ROOT / "config" / "examples" / "own_runs.csv"),
        "columns": {"run": "seed", "step": "iteration", "eval_acc": "val_accuracy"},
        "convergence_threshold": 0.9,
    }
    config = {"trainmap": {"experiments": {"own": experiment}, "analysis": {"k_max": 3}}}
    (outer / "config.yaml").write_text(yaml.safe_dump(config))
    return outer


def run(where: Path, *args: str) -> subprocess.CompletedProcess:
    return succeeded(snakemake(where, *args, cores=1, env=one_thread(), timeout=300))


def test_usable_as_a_module(tmp_path):
    outer = outer_workflow(tmp_path)
    plan = run(outer, "-n").stdout
    for rule in ("import_experiment", "normalize", "fit_hmm", "map_figure"):
        assert f"trainmap_{rule}" in plan
    assert plan.count("rule trainmap_bic_sweep:") == 3  # the module's own config: k_max 3
    assert "rule trainmap_train:" not in plan and "sandbox" not in plan
    # One real job: the module's script is found and writes into the outer workflow.
    run(outer, "results/runs/own/metrics.parquet")
    table = pd.read_parquet(outer / "results" / "runs" / "own" / "metrics.parquet")
    assert table["run_name"].nunique() == 12


def test_workflow_catalog_file():
    catalog = yaml.safe_load((ROOT / ".snakemake-workflow-catalog.yml").read_text())
    deployment = catalog["usage"]["software-stack-deployment"]
    assert deployment["conda"] is True and catalog["usage"]["report"] is True
    for env in (ROOT / "envs").glob("*.yaml"):
        assert yaml.safe_load(env.read_text())["dependencies"], env
