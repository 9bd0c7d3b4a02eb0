"""Kernel paths pinned so that a job's floating-point rounding does not depend on the CPU.

torch and numpy pick their kernels by the CPU they run on: ATen's vectorised kernels
(AVX-512, AVX2 or plain), MKL's matrix products (a branch per instruction set, another
on AMD), oneDNN's convolutions (JIT code per instruction set and cache size), numpy's
SIMD loops and OpenBLAS's kernels (one per core type). Each sums in its own order, the
last bits differ, and training and Baum-Welch amplify them until verdicts change.
Pinned, every job uses paths that any x86-64-v2 CPU has:

* ``ATEN_CPU_CAPABILITY=default``: ATen's non-vectorised kernels;
* ``MKL_CBWR=COMPATIBLE,STRICT``: MKL's conditional numerical reproducibility on its
  SSE2 branch without the approximate reciprocals (``rcpps``/``rsqrtps``) that differ
  between Intel and AMD, with a fixed blocking whatever the cache sizes and alignment;
* oneDNN off (``torch.backends.mkldnn``): convolutions fall back to ATen's own,
  whose products go through the pinned MKL;
* ``OPENBLAS_CORETYPE=Nehalem``: numpy's and scipy's OpenBLAS on its SSE4.2 kernels;
* ``NPY_DISABLE_CPU_FEATURES``: numpy's loops at its baseline, none of the AVX2 or
  AVX-512 versions it dispatches to (the names of numpy 1.26 to 2.4; a name a numpy
  does not dispatch is ignored with an ImportWarning).

The variables are read when torch and numpy load, before a job's first line runs:
the Snakefile sets them for every job it starts, and :func:`pin_numerics` (in every
job) checks them.
"""

from __future__ import annotations

import os
import sys

from trainmap.errors import TrainmapError

#: Environment of a pinned job.
PINNED_ENVIRONMENT = {
    "ATEN_CPU_CAPABILITY": "default",
    "MKL_CBWR": "COMPATIBLE,STRICT",
    "OPENBLAS_CORETYPE": "Nehalem",
    "NPY_DISABLE_CPU_FEATURES": " ".join(
        (
            *("SSSE3", "SSE41", "POPCNT", "SSE42", "AVX", "F16C", "FMA3", "AVX2"),
            *("AVX512F", "AVX512CD", "AVX512_KNL", "AVX512_KNM", "AVX512_SKX"),
            *("AVX512_CLX", "AVX512_CNL", "AVX512_ICL", "AVX512_SPR", "X86_V3", "X86_V4"),
        )
    ),
}
#: The values of config key ``numerics``.
MODES = ("pinned", "native")


def pin_environment() -> None:
    """Set the pinned kernel paths for this process and the processes it starts."""
    os.environ.update(PINNED_ENVIRONMENT)


def pin_numerics(mode: str = "pinned") -> str:
    """Check that this job runs on the pinned kernel paths (``mode`` ``pinned``) or
    leave the CPU's (``native``); returns a line for the job's log.

    Raises :class:`TrainmapError` naming the variables that were not pinned when
    numpy or torch loaded: their kernels are then already chosen.
    """
    if mode not in MODES:
        raise TrainmapError(f"numerics: {mode!r} is not one of {list(MODES)}")
    if mode == "native":
        return "numerics: native (kernel paths chosen by this CPU)"
    unpinned = {
        k: os.environ.get(k) for k, v in PINNED_ENVIRONMENT.items() if os.environ.get(k) != v
    }
    loaded = [name for name in ("numpy", "torch") if name in sys.modules]
    if unpinned and loaded:
        raise TrainmapError(
            f"numerics: pinned, but {' and '.join(loaded)} loaded under {unpinned}: set "
            "trainmap.numerics.PINNED_ENVIRONMENT before they are imported (the Snakefile does)"
        )
    pin_environment()
    torch = sys.modules.get("torch")
    if torch is None:
        return f"numerics: pinned {PINNED_ENVIRONMENT}"
    torch.backends.mkldnn.enabled = False
    capability = torch.backends.cpu.get_cpu_capability()
    return f"numerics: pinned {PINNED_ENVIRONMENT}, oneDNN off, ATen CPU capability {capability}"
