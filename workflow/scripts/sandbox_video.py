"""The training video of one run (rule sandbox_video)."""

from trainmap.jobs import job
from trainmap.sandbox.video import video_of_run

with job(snakemake) as log:  # noqa: F821
    video = snakemake.params.video  # noqa: F821
    frames = video_of_run(
        snakemake.input.logs,  # noqa: F821
        snakemake.input.weights,  # noqa: F821
        snakemake.output[0],  # noqa: F821
        rank=video["rank"],
        every=video["every"],
        fps=video["fps"],
        scale=snakemake.params.scale,  # noqa: F821
    )
    log.info("wrote %d frames to %s", frames, snakemake.output[0])  # noqa: F821
