"""The training video of the visual sandbox: one 16-panel frame per saved epoch (or every n-th)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import imageio.v2 as imageio
import numpy as np

from trainmap.errors import TrainmapError
from trainmap.figures.sandbox2025_frames import FrameRenderer
from trainmap.sandbox.results import (
    describe,
    load_snapshots,
    member_params,
    ranked_runs,
    read_logs,
    task_of,
)
from trainmap.tables import atomic_output

log = logging.getLogger("trainmap.sandbox")


def video_of_run(
    logs: Sequence[str | Path],
    weights: Sequence[str | Path],
    output: str | Path,
    rank: int = 0,
    every: int = 1,
    fps: int = 8,
    scale: str = "",
    dpi: int = 50,
) -> int:
    """Render every ``every``-th saved epoch (and the last) of the ``rank``-th best run.

    The format follows the suffix of ``output``: ``.mp4`` (H.264 through
    imageio-ffmpeg) or ``.gif`` (the fallback without ffmpeg).

    Returns
    -------
    int
        The number of frames written.
    """
    suffix = Path(output).suffix
    if suffix not in (".mp4", ".gif"):
        raise TrainmapError(f"sandbox.video.format: {suffix!r} is not mp4 or gif")
    table, snapshots = read_logs(logs), load_snapshots(weights)
    run = ranked_runs(table)[rank]
    history = table[table["run"] == run]
    seed = int(history["seed"].iloc[0])
    label = f"Training video — seed {seed}; {describe(history, scale, 1)}"
    saved = [int(e) for e in snapshots["epochs"]]
    epochs = saved[::every] + ([saved[-1]] if (len(saved) - 1) % every else [])
    renderer = FrameRenderer(task_of(table), history, label, dpi=dpi, annotate=False)
    options = {"fps": fps, "macro_block_size": 1} if suffix == ".mp4" else {"duration": 1 / fps}
    with atomic_output(output) as tmp, imageio.get_writer(tmp, **options) as writer:
        for i, epoch in enumerate(epochs):
            figure = renderer.draw(member_params(snapshots, epoch, run), epoch)
            figure.canvas.draw()
            writer.append_data(np.asarray(figure.canvas.buffer_rgba())[..., :3])
            if i % 10 == 0:
                log.info("video frame %d/%d (epoch %d)", i + 1, len(epochs), epoch)
    return len(epochs)
