"""Errors for bad input that the user can fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class TrainmapError(ValueError):
    """Bad input: the message names the config key, file, column or run at fault."""


def did_you_mean(name: object, choices: Iterable[object]) -> str:
    """``"; did you mean 'x'?"`` with the choice closest to a misspelt name ('' if none is)."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1)
    return f"; did you mean {close[0]!r}?" if close else ""
