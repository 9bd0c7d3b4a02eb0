"""The training video of one run (rule sandbox_video)."""

from trainmap.figures.sandbox2025_video import video_of_run
from trainmap.jobs import job

with job(snakemake) as log:
    video = snakemake.params.video
    frames = video_of_run(
        snakemake.input.logs,
        snakemake.input.weights,
        snakemake.output[0],
        rank=video["rank"],
        every=video["every"],
        fps=video["fps"],
        scale=snakemake.params.scale,
    )
    log.info("wrote %d frames to %s", frames, snakemake.output[0])
