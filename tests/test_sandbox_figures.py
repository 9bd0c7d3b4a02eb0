"""Frames, figures and the video render from saved runs (p = 2 and p = 3), and the
workflow plans every sandbox target."""

import subprocess
import sys
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest

from trainmap.figures.sandbox2025 import figure9, sparsity_figure
from trainmap.figures.sandbox2025_frames import frame_figure
from trainmap.figures.sandbox2025_video import video_of_run
from trainmap.sandbox.plan import JobSpec
from trainmap.sandbox.probe import sparsity_curves, sparsity_groups
from trainmap.sandbox.results import load_snapshots, ranked_runs, read_logs
from trainmap.sandbox.trainer import train_job

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two tiny saved jobs: p = 2 with every epoch's weights, and p = 3."""
    out = tmp_path_factory.mktemp("sandbox")
    common = {"n": 64, "n_test": 64, "hidden": 4, "batch_size": 32, "epochs": 4}
    paths = {}
    for p in (2, 3):
        spec = JobSpec(
            (0, 1), (0.01, 0.01), (1.0, 1.0), (0.0, 0.0), p=p, snapshot_every=1, **common
        )
        paths[p] = (out / f"log{p}.parquet", out / f"w{p}.npz")
        train_job(spec, *paths[p], device="cpu")
    return out, paths


@pytest.mark.parametrize("p", [2, 3])
def test_frame_renders_for_p2_and_p3(runs, p):
    out, paths = runs
    log, weights = paths[p]
    frame_figure([log], [weights], out / f"frame{p}.png", rank=0, epoch=None, scale="t", what="x")
    image = imageio.imread(out / f"frame{p}.png")
    assert image.shape[0] > 500 and image.shape[1] > 500
    assert image[..., :3].std() > 10  # not blank


def test_runs_are_ranked_by_final_test_accuracy(runs):
    log = read_logs([runs[1][2][0]])
    last = log[log.epoch == log.epoch.max()].set_index("run")["test_acc"]
    order = ranked_runs(log)
    assert last[order[0]] >= last[order[1]]


def test_video_has_one_frame_per_saved_epoch(runs):
    out, paths = runs
    frames = video_of_run([paths[2][0]], [paths[2][1]], out / "v.gif", every=3, fps=2)
    assert frames == 3  # epochs 0, 3 and the last, 4
    assert len(imageio.mimread(out / "v.gif")) == 3


def test_figure9_compares_transfer_and_scratch(runs):
    out, paths = runs
    figure9([paths[3][0]], [paths[3][0]], out / "f9.png", scale="t")
    assert imageio.imread(out / "f9.png").shape[1] > 500


def test_sparsity_table_summarises_each_models_curve(runs):
    out, paths = runs
    log, weights = paths[2]
    eps = np.logspace(-5, 2, 60)
    groups = sparsity_groups([log], [weights], eps, by_d=False)
    table = sparsity_figure(groups, eps, out / "f17.png", scale="t", threshold=0.5)
    frame = read_logs([log])
    curves = sparsity_curves(frame, load_snapshots([weights]), eps)
    np.testing.assert_allclose(table["mean_sparsity"], curves.mean(axis=1))
    last = frame[frame.epoch == frame.epoch.max()].set_index("run").sort_index()["test_acc"]
    assert table["success"].tolist() == (last > 0.5).tolist()
    assert ((table["mean_sparsity"] > 0) & (table["mean_sparsity"] < 1)).all()


def test_log_figures_and_results_never_import_torch():
    """The figures read from logs, and the results readers, load without torch."""
    code = (
        "import sys, trainmap.figures.sandbox2025, trainmap.sandbox.results; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_workflow_plans_every_sandbox_target():
    result = subprocess.run(
        [
            sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--quiet", "rules",
            "--configfile", "tests/configs/tiny.yaml", "--",
            *[f"results/sandbox2025/figure{n}.png" for n in range(1, 21)],
            "results/sandbox2025/video.gif",
        ],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    text = result.stdout + result.stderr
    for rule in ("sandbox_train", "sandbox_frame", "sandbox_spikes", "sandbox_sparsity"):
        assert rule in text
