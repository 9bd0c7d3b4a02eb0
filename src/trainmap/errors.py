"""Errors for bad input that the user can fix."""


class TrainmapError(ValueError):
    """Bad input: the message names the config key, file, column or run at fault."""
