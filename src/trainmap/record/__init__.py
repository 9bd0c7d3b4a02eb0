"""Record the 14 weight metrics while you train, in a folder the workflow reads.

* :class:`MetricsRecorder`: for your own training loop;
* :class:`HFCallback`: a ``transformers.TrainerCallback`` (needs ``transformers``);
* :class:`LightningCallback`: a ``lightning.Callback`` (needs ``lightning``).

The callbacks are imported on first use, so this package works without either library.
"""

from __future__ import annotations

import importlib

from trainmap.record.recorder import MetricsRecorder

__all__ = ["HFCallback", "LightningCallback", "MetricsRecorder"]

_CALLBACKS = {
    "HFCallback": "trainmap.record.huggingface",
    "LightningCallback": "trainmap.record.lightning",
}


def __getattr__(name: str) -> object:
    if name in _CALLBACKS:
        return getattr(importlib.import_module(_CALLBACKS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
