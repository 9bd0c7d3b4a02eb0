"""Paper tables and figures from the results, each paper's under its own name.

``hu2023``: Hu et al. (2023), training maps, tables 1, 2, 4, figures 10, 11;
``blog2025`` and ``blog2025_summary``: the ICLR 2025 blog post's figures and its
Markdown summary; ``sandbox2025``, ``sandbox2025_frames`` and ``sandbox2025_video``:
the visual case study's figures from the logs, the frames and the figures built from
them, the training video. Only the frames and the video run the sandbox model (torch,
through :mod:`trainmap.sandbox.probe`); every other figure reads tables.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from trainmap.tables import atomic_output


def save_png(
    figure: Figure, path: str | Path, dpi: float | str = "figure", tight: bool = False
) -> None:
    """Write a matplotlib figure as PNG, atomically, and close it.

    Parameters
    ----------
    figure
        The figure.
    path
        The PNG file.
    dpi
        Resolution; ``"figure"`` keeps the figure's own (the sandbox frames set theirs).
    tight
        Crop to the drawn content (``bbox_inches="tight"``).
    """
    with atomic_output(path) as tmp:
        figure.savefig(tmp, dpi=dpi, bbox_inches="tight" if tight else None)
    plt.close(figure)
