"""What every workflow script does first (logging, thread caps, clear errors), and how
runs are split into jobs.

A rule's ``threads`` become the cap for BLAS, OpenMP and torch: on a 2-core
machine an oversubscribed BLAS made an HMM fit 7x slower.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

from trainmap.errors import TrainmapError
from trainmap.numerics import pin_numerics

_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)

log = logging.getLogger("trainmap")


def seed_chunks(n_seeds: int, per_job: int | None, first_seed: int = 0) -> list[tuple[int, int]]:
    """Seeds ``first_seed..first_seed+n_seeds-1`` in jobs of ``per_job`` (``None``: one
    job): ``[(first, last), ...]``, inclusive."""
    per_job = per_job or n_seeds
    end = first_seed + n_seeds
    return [(a, min(a + per_job, end) - 1) for a in range(first_seed, end, per_job)]


def limit_threads(threads: int) -> None:
    """Cap BLAS/OpenMP (and torch, if loaded) at ``threads`` threads."""
    for name in _THREAD_VARIABLES:
        os.environ[name] = str(threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        torch.set_num_threads(threads)
        with contextlib.suppress(RuntimeError):  # only settable before first parallel work
            torch.set_num_interop_threads(threads)


@contextlib.contextmanager
def job(smk: Any) -> Iterator[logging.Logger]:
    """Run a workflow script: log to ``smk.log[0]``, cap threads, pin the kernel paths
    (config key ``numerics``, :mod:`trainmap.numerics`), report errors plainly.

    A :class:`TrainmapError` or an OS error ends the job with its message (naming
    the key, file, column or run) as the last line of the log and of stderr; any
    other error with its traceback there too, so that the job's own log holds it.
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if smk.log:
        handlers.append(logging.FileHandler(smk.log[0], mode="w"))
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    logging.captureWarnings(True)
    limit_threads(smk.threads)
    try:
        log.info(pin_numerics(smk.config.get("numerics", "pinned")))
        yield log
    except (TrainmapError, OSError) as error:
        log.error("%s (rule %s)", error, smk.rule)
        sys.exit(1)
    except Exception:
        log.exception("the job failed (rule %s)", smk.rule)
        sys.exit(1)
