"""Pinned kernel paths: the same training job rounds alike whatever paths the CPU offers."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from trainmap.errors import TrainmapError
from trainmap.numerics import PINNED_ENVIRONMENT, pin_numerics

ROOT = Path(__file__).resolve().parents[1]
TINY = yaml.safe_load((ROOT / "tests/configs/tiny.yaml").read_text())["settings"]
RESNET = {
    **TINY["parities"],
    "task": "image_resnet",
    "model": {"widths": [4, 8], "blocks": [1, 1], "batch_norm": True, "residual": True},
    "data": {"dataset": "digits", "eval_fraction": 0.3, "normalize": True, "seed": 0},
    "optimizer": {"name": "adamw", "lr": 0.001, "weight_decay": 1.0},
    "training": {**TINY["parities"]["training"], "epochs": 1, "batch_size": 256},
}
# Two kernel paths of every AVX2 CPU, as two machines would pick them: ATen's plain
# kernels, MKL's SSE4.2 branch, oneDNN's SSE4.1 code, OpenBLAS's Nehalem kernels and
# numpy's baseline loops, against their AVX2 versions (the pinned paths are AVX2's, so
# pinning changes the first machine's paths, as it does an AVX-512 machine's).
MACHINES = {
    "sse": {
        "ATEN_CPU_CAPABILITY": "default",
        "MKL_CBWR": "SSE4_2",
        "ONEDNN_MAX_CPU_ISA": "SSE41",
        "OPENBLAS_CORETYPE": "Nehalem",
        "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR",
    },
    "avx2": {
        "ATEN_CPU_CAPABILITY": "avx2",
        "MKL_CBWR": "AVX2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "OPENBLAS_CORETYPE": "Haswell",
        "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
    },
}
# A job as the workflow starts it: the environment first, then numpy and torch, then
# job()'s check. It trains a setting, or fits a Gaussian HMM (mode, output, setting).
JOB = """
import sys
import numpy as np
import torch
import yaml
from trainmap.analysis.hmm import FitOptions, fit_restart
from trainmap.numerics import pin_numerics
from trainmap.training.trainer import train_seeds

print(pin_numerics(sys.argv[1]), file=sys.stderr)
setting = yaml.safe_load(sys.argv[3])
if setting == "hmm":
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(m, 1, size=(300, 14)) for m in (0, 2, 5)])
    options = FitOptions(n_iter=50, tol=1e-6, covariance_type="full", init="kmeans")
    model = fit_restart(X, np.array([300, 300, 300]), 4, 0, options)
    np.save(sys.argv[2], np.concatenate([model.means_.ravel(), model.covars_.ravel()]))
else:
    train_seeds(setting, [0, 1], device="cpu").to_parquet(sys.argv[2], index=False)
"""


def table_hash(tmp_path: Path, setting: dict | str, machine: str, mode: str) -> str:
    """sha256 of the table of a job run under ``machine``'s paths with ``numerics: mode``."""
    env = {**os.environ, **MACHINES[machine], "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    if mode == "pinned":  # what the Snakefile does before it starts a job
        env.update(PINNED_ENVIRONMENT)
    out = tmp_path / f"{machine}-{mode}.{'npy' if setting == 'hmm' else 'parquet'}"
    subprocess.run(
        [sys.executable, "-c", JOB, mode, str(out), yaml.safe_dump(setting)],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return hashlib.sha256(out.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "setting",
    [{**TINY["modular"], "training": {**TINY["modular"]["training"], "epochs": 4}}, RESNET, "hmm"],
    ids=["transformer", "resnet", "hmm"],
)
def test_pinning_removes_the_rounding_difference_between_kernel_paths(tmp_path, setting):
    """A training job (torch) and a Baum-Welch fit (numpy, OpenBLAS): the two machines'
    paths give different bytes unless pinned."""
    native = {m: table_hash(tmp_path, setting, m, "native") for m in MACHINES}
    assert native["sse"] != native["avx2"]  # the paths really round differently
    pinned = {m: table_hash(tmp_path, setting, m, "pinned") for m in MACHINES}
    assert pinned["sse"] == pinned["avx2"]


def test_torch_loaded_unpinned_is_refused(monkeypatch):
    import torch  # noqa: F401  (loaded with this process's kernel paths)

    for name in PINNED_ENVIRONMENT:
        monkeypatch.setenv(name, "avx2")
    with pytest.raises(TrainmapError, match="loaded under"):
        pin_numerics("pinned")
    with pytest.raises(TrainmapError, match="'fast'"):
        pin_numerics("fast")
