"""Kernel paths pinned so that a job's floating-point rounding does not depend on the CPU.

torch picks its kernels by the CPU it runs on: ATen's vectorised kernels (AVX-512,
AVX2 or plain), MKL's matrix products (a branch per instruction set, another on AMD)
and oneDNN's convolutions (JIT code per instruction set and cache size). Each sums in
its own order, the last bits of a step differ, and training amplifies them until
verdicts change. Pinned, every job uses the paths any x86-64 CPU has:

* ``ATEN_CPU_CAPABILITY=default``: ATen's non-vectorised kernels;
* ``MKL_CBWR=COMPATIBLE,STRICT``: MKL's conditional numerical reproducibility on its
  SSE2 branch without the approximate reciprocals (``rcpps``/``rsqrtps``) that differ
  between Intel and AMD, with a fixed blocking whatever the cache sizes and alignment;
* oneDNN off (``torch.backends.mkldnn``): convolutions fall back to ATen's own,
  whose products go through the pinned MKL.

The variables are read when torch first dispatches, so they must be in the
environment before torch is imported: the Snakefile sets them for every job it
starts, and :func:`pin_numerics` (in every job) sets them again and checks them.
"""

from __future__ import annotations

import os
import sys

from trainmap.errors import TrainmapError

#: Environment of a pinned job.
PINNED_ENVIRONMENT = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE,STRICT"}
#: The values of config key ``numerics``.
MODES = ("pinned", "native")


def pin_environment() -> None:
    """Set the pinned kernel paths for this process and the processes it starts."""
    os.environ.update(PINNED_ENVIRONMENT)


def pin_numerics(mode: str = "pinned") -> str:
    """Pin this job's kernel paths (``mode`` ``pinned``) or leave the CPU's (``native``).

    Returns a line for the job's log. Raises :class:`TrainmapError` if torch was
    imported before the environment was pinned: its kernels are then already chosen.
    """
    if mode not in MODES:
        raise TrainmapError(f"numerics: {mode!r} is not one of {list(MODES)}")
    if mode == "native":
        return "numerics: native (kernel paths chosen by this CPU)"
    unpinned = {
        k: os.environ.get(k) for k, v in PINNED_ENVIRONMENT.items() if os.environ.get(k) != v
    }
    pin_environment()
    torch = sys.modules.get("torch")
    if torch is None:
        return f"numerics: pinned {PINNED_ENVIRONMENT}"
    if unpinned:
        raise TrainmapError(
            f"numerics: pinned, but torch was imported under {unpinned}: its kernels are "
            f"chosen; set {PINNED_ENVIRONMENT} before torch is imported (the Snakefile does)"
        )
    torch.backends.mkldnn.enabled = False
    capability = torch.backends.cpu.get_cpu_capability()
    return f"numerics: pinned {PINNED_ENVIRONMENT}, oneDNN off, ATen CPU capability {capability}"
