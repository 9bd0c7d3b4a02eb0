"""Whether saved work is still valid: saved under the options that determine it now.

The engine's resume state, the checkpoint reader's rows so far and a recorder's
folder are each reused only if the options they were saved under equal today's.
Equal means one thing for all three: the same canonical JSON (sorted keys; an
object JSON cannot hold written as its ``str``), so a value read back from JSON
equals the one written. A saved file holds either the :func:`fingerprint` of its
options, or, where a refusal should name what changed, the options themselves
(:func:`changed`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def fingerprint(options: Any) -> str:
    """The sha256 (hex) of ``options``' canonical JSON."""
    text = json.dumps(options, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def changed(saved: Mapping[str, Any], options: Mapping[str, Any]) -> list[str]:
    """The keys of ``options`` whose value differs from ``saved``'s (absent counts as None)."""
    return [k for k in options if fingerprint(saved.get(k)) != fingerprint(options[k])]
