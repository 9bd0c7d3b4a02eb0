"""End to end on a real SLURM: `snakemake --profile profiles/slurm` on a tiny config.

A single-node SLURM cluster on localhost (tests/slurm_cluster.py: Debian's
slurmctld, slurmd, munge; no accounting database) runs a few jobs of the tiny
test config through Snakemake's SLURM executor plugin and the repository's
profile. The outputs must equal those of a local run, every job must have been
submitted (the short jobs after a setting's HMM fit together, as the profile groups
them, the others one by one) and have completed, and the training job of a
setting that asks for a GPU must have been submitted with ``--gpus=1`` (the node
advertises a fake GPU, so SLURM schedules the job; training runs on the CPU).

Needs root (to install the Debian packages with apt-get if missing and to run the
daemons) and no SLURM configuration of its own on the machine: skipped with the
reason otherwise, and fails instead under CI=true.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import snakemake, succeeded
from slurm_cluster import LocalSlurm, unavailable_reason
from workflow_checkout import ROOT, checkout, tiny_config

pytestmark = pytest.mark.slow

GPU_SETTING = "parities"  # asks for one GPU in the test config
CPU_SETTING = "modular"
TARGETS = (
    f"results/runs/{CPU_SETTING}/metrics.parquet",
    f"results/runs/{GPU_SETTING}/metrics.parquet",
    f"results/normalized/{GPU_SETTING}/zscores.parquet",
    f"results/normalized/{GPU_SETTING}/split.csv",
    f"results/maps/{GPU_SETTING}/map.png",
    f"results/regression/{GPU_SETTING}/summary.csv",
)
# Rules that profiles/slurm groups into one submission per setting (its `groups:`).
GROUPED = ("convergence", "training_map", "map_figure", "regression")
# The jobs of TARGETS, as the plugin names them in the SLURM job comment.
EXPECTED_JOBS = {
    f"rule_train_wildcards_{CPU_SETTING}_0_3",
    f"rule_train_wildcards_{CPU_SETTING}_4_7",
    f"rule_gather_runs_wildcards_{CPU_SETTING}",
    f"rule_train_wildcards_{GPU_SETTING}_0_7",
    f"rule_gather_runs_wildcards_{GPU_SETTING}",
    f"rule_normalize_wildcards_{GPU_SETTING}",
    *(f"rule_bic_sweep_wildcards_{GPU_SETTING}_{k}" for k in range(1, 5)),  # tiny k_max 4
    f"rule_select_states_wildcards_{GPU_SETTING}",
    f"rule_fit_hmm_wildcards_{GPU_SETTING}",
}


def config_with_a_gpu_job() -> dict:
    """The tiny test config, with one setting asking for a GPU."""
    config = tiny_config()
    config["settings"][GPU_SETTING]["resources"]["gpu"] = 1
    assert config["settings"][CPU_SETTING]["resources"]["gpu"] == 0
    return config


def run(where: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    env = {**env, "OMP_NUM_THREADS": "1"}
    done = snakemake(where, *TARGETS, *args, cores=None, config="test.yaml", env=env, timeout=900)
    return succeeded(done)


@pytest.fixture(scope="module")
def cluster():
    reason = unavailable_reason()
    if reason:
        message = f"no local SLURM cluster: {reason}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the SLURM test; {message}")
        pytest.skip(message)
    with LocalSlurm() as running:
        yield running


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    """The targets built locally and on SLURM; the SLURM run's log and wall time."""
    base = tmp_path_factory.mktemp("slurm-e2e")
    local = checkout(base / "local", config_with_a_gpu_job())
    run(local, "--cores", "2", env=dict(os.environ))
    on_slurm = checkout(base / "slurm", config_with_a_gpu_job())
    start = time.monotonic()
    done = run(
        on_slurm,
        "--profile",
        "profiles/slurm",
        # The profile waits 40 s before the first status check; a test need not.
        "--slurm-init-seconds-before-status-checks",
        "3",
        "--verbose",
        env=cluster.env,
    )
    wall = time.monotonic() - start
    return local, on_slurm, done.stderr + done.stdout, wall


def slurm_jobs(cluster) -> list[dict[str, str]]:
    """Every job the cluster knows of: id, state, comment (rule and wildcards), TRES."""
    fields = ("id", "state", "comment", "cpus", "memory", "time_limit")
    out = cluster.run("squeue", "--states=all", "--noheader", "--format=%i|%T|%k|%C|%m|%l")
    return [dict(zip(fields, line.split("|"), strict=True)) for line in out.splitlines()]


def sbatch_calls(log: str) -> dict[str, str]:
    """The plugin's sbatch command lines (from --verbose), by job comment."""
    calls = re.findall(r"sbatch call: (sbatch .*)", log)
    return {re.search(r"--comment (\S+)", call).group(1): call for call in calls}


def test_outputs_equal_a_local_run(runs):
    local, on_slurm, _, _ = runs
    for target in TARGETS:
        if target.endswith(".png"):
            continue  # figures: made from the tables compared here
        read = pd.read_parquet if target.endswith(".parquet") else pd.read_csv
        expected, got = read(local / target), read(on_slurm / target)
        assert len(got) > 0, target
        pd.testing.assert_frame_equal(got, expected, check_exact=True, obj=target)


def test_every_job_ran_on_slurm(runs, cluster):
    _, _, log, wall = runs
    jobs = slurm_jobs(cluster)
    print(f"\nSLURM run: {wall:.0f} s wall time, {len(jobs)} jobs submitted:")
    for job in jobs:
        print("  " + "  ".join(f"{k}={v}" for k, v in job.items()))
    # One job per ungrouped rule job, one for the grouped jobs of the setting.
    ungrouped = {job["comment"] for job in jobs} & EXPECTED_JOBS
    assert ungrouped == EXPECTED_JOBS
    assert len(jobs) == len(EXPECTED_JOBS) + 1, "a job was submitted twice or not grouped"
    assert {job["state"] for job in jobs} == {"COMPLETED"}
    assert set(sbatch_calls(log)) >= EXPECTED_JOBS and len(sbatch_calls(log)) == len(jobs)
    comments = {job["comment"] for job in jobs}
    assert not [c for c in comments for r in GROUPED if c.startswith(f"rule_{r}_")]
    grouped_jobs = len(GROUPED)  # one job of each grouped rule for the one setting
    print(f"sbatch submissions: {len(jobs)} (without groups: {len(jobs) - 1 + grouped_jobs})")


def test_gpu_job_requests_a_gpu(runs, cluster):
    _, _, log, _ = runs
    calls = sbatch_calls(log)
    gpu_job = f"rule_train_wildcards_{GPU_SETTING}_0_7"
    assert " --gpus=1" in calls[gpu_job]
    cpu_jobs = [c for c in calls if c != gpu_job]
    assert all("--gpus" not in calls[c] and "--gres" not in calls[c] for c in cpu_jobs)
    # SLURM granted it: the job holds the node's (fake) GPU.
    job_id = next(j["id"] for j in slurm_jobs(cluster) if j["comment"] == gpu_job)
    assert "TresPerJob=gres:gpu:1" in cluster.run("scontrol", "show", "job", job_id)


def test_profile_resources_reach_sbatch(runs):
    """Per-rule threads, memory and time of profiles/slurm end up in the sbatch calls."""
    _, _, log, _ = runs
    profile = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    for rule in ("gather_runs", "normalize"):
        resources = profile["set-resources"][rule]
        threads = profile["set-threads"][rule]
        calls = [c for name, c in sbatch_calls(log).items() if name.startswith(f"rule_{rule}_")]
        assert calls, rule
        for call in calls:
            assert f"--mem {resources['mem_mb']}" in call
            assert f"-t {resources['runtime']}" in call
            assert f"--cpus-per-task={threads}" in call
    # Training takes its resources from the setting's config, not from the profile.
    train = sbatch_calls(log)[f"rule_train_wildcards_{CPU_SETTING}_0_3"]
    wanted = tiny_config()["settings"][CPU_SETTING]["resources"]
    assert f"--mem {wanted['mem_mb']}" in train and f"-t {wanted['runtime']}" in train
