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
# kernels, MKL's SSE4.2 branch and oneDNN's SSE4.1 code against their AVX2 versions.
MACHINES = {
    "sse": {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "SSE4_2", "ONEDNN_MAX_CPU_ISA": "SSE41"},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
}
# A job as the workflow starts it: the environment first, then torch, then job()'s pin.
JOB = """
import sys
import torch
import yaml
from trainmap.numerics import pin_numerics
from trainmap.training.trainer import train_seeds

print(pin_numerics(sys.argv[1]), file=sys.stderr)
setting = yaml.safe_load(sys.argv[3])
train_seeds(setting, [0, 1], device="cpu").to_parquet(sys.argv[2], index=False)
"""


def table_hash(tmp_path: Path, setting: dict, machine: str, mode: str) -> str:
    """sha256 of the table of a job run under ``machine``'s paths with ``numerics: mode``."""
    env = {**os.environ, **MACHINES[machine], "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    if mode == "pinned":  # what the Snakefile does before it starts a job
        env.update(PINNED_ENVIRONMENT)
    out = tmp_path / f"{machine}-{mode}.parquet"
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
    [{**TINY["modular"], "training": {**TINY["modular"]["training"], "epochs": 4}}, RESNET],
    ids=["transformer", "resnet"],
)
def test_pinning_removes_the_rounding_difference_between_kernel_paths(tmp_path, setting):
    native = {m: table_hash(tmp_path, setting, m, "native") for m in MACHINES}
    assert native["sse"] != native["avx2"]  # the paths really round differently
    pinned = {m: table_hash(tmp_path, setting, m, "pinned") for m in MACHINES}
    assert pinned["sse"] == pinned["avx2"]


def test_torch_loaded_unpinned_is_refused(monkeypatch):
    import torch  # noqa: F401  (loaded with this process's kernel paths)

    for name in PINNED_ENVIRONMENT:
        monkeypatch.setenv(name, "avx2")
    with pytest.raises(TrainmapError, match="before torch is imported"):
        pin_numerics("pinned")
    with pytest.raises(TrainmapError, match="'fast'"):
        pin_numerics("fast")
