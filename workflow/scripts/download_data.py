"""Download the configured settings' data sets into their data folders (rule download_data)."""

from trainmap.jobs import job
from trainmap.training.vision import download

with job(snakemake) as log:
    downloads = snakemake.params.downloads
    if not downloads:
        log.info("no configured setting uses MNIST or CIFAR-100: nothing to download")
    for dataset, root in downloads:
        files = download(dataset, root)
        log.info("%s in %s: %s", dataset, root, ", ".join(map(str, files)))
