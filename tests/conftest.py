"""What the tests share: the real `snakemake` command, run as the README runs it.

Import the helpers (`from conftest import snakemake, succeeded`): the tests folder
is on sys.path, as for workflow_checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# The snakemake of this environment, not whichever one PATH finds first.
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def snakemake(
    where: Path,
    *args: str,
    cores: int | None = 2,
    config: str | Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess:
    """`snakemake --cores <cores> <args> --configfile <config>` in `where`, output captured.

    The config file comes last: --configfile and --forcerun take several values, so
    targets must come before them. `cores=None` leaves --cores to `args` (or a profile).
    """
    command = [SNAKEMAKE, *(["--cores", str(cores)] if cores else []), *args]
    if config is not None:
        command += ["--configfile", str(config)]
    return subprocess.run(
        command, cwd=where, env=env, capture_output=True, text=True, timeout=timeout
    )


def one_thread(**more: str) -> dict[str, str]:
    """This environment with one OpenMP thread per job: parallel jobs share the CPUs."""
    return {**os.environ, "OMP_NUM_THREADS": "1", **more}


def succeeded(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    """`done`, once it has exited 0 (else the ends of its output as the failure)."""
    command = " ".join(done.args[1:])
    assert done.returncode == 0, (
        f"snakemake {command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    )
    return done
