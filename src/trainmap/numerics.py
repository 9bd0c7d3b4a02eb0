"""Kernel paths pinned so that a job's floating-point rounding does not depend on the CPU.

torch and numpy pick their kernels by the CPU they run on: ATen's vectorised kernels
(AVX-512, AVX2 or plain), MKL's matrix products (a branch per instruction set, another
on AMD), oneDNN's convolutions (JIT code per instruction set and cache size), numpy's
SIMD loops and OpenBLAS's kernels (one per core type). Each sums in its own order, the
last bits differ, and training and Baum-Welch amplify them until verdicts change.
Pinned, every job uses the paths of an x86-64-v3 CPU (AVX2 and FMA, which x86-64
CPUs have had since 2013 for Intel and 2017 for AMD), whatever more it offers:

* ``ATEN_CPU_CAPABILITY=avx2``: ATen's AVX2 kernels, never its AVX-512 ones;
* ``MKL_CBWR=AVX2,STRICT``: MKL's conditional numerical reproducibility on its AVX2
  branch, with a fixed blocking whatever the cache sizes and alignment (its SSE2
  branch, ``COMPATIBLE``, doubled the training time of the transformers:
  docs/decisions.md);
* oneDNN off (``torch.backends.mkldnn``): its JIT convolutions block by cache size;
  convolutions fall back to ATen's own, whose products go through the pinned MKL;
* ``OPENBLAS_CORETYPE=Haswell``: numpy's and scipy's OpenBLAS on its AVX2 kernels;
* ``NPY_DISABLE_CPU_FEATURES``: none of the AVX-512 loops numpy dispatches to (the
  names of numpy 1.26 to 2.4; a name a numpy does not dispatch is ignored with an
  ImportWarning).

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
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": "AVX2,STRICT",
    "OPENBLAS_CORETYPE": "Haswell",
    "NPY_DISABLE_CPU_FEATURES": " ".join(
        (
            *("AVX512F", "AVX512CD", "AVX512_KNL", "AVX512_KNM", "AVX512_SKX"),
            *("AVX512_CLX", "AVX512_CNL", "AVX512_ICL", "AVX512_SPR", "X86_V4"),
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
