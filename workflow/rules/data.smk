# Data sets. Training never downloads: a setting on MNIST or CIFAR-100 reads
# the files from its `data.root` and stops with a message naming the missing files.
# Run `snakemake --cores 1 download_data` where there is a network (or put the files
# there yourself; files already in place are checked and kept).


# (data set, data folder) of every setting trained on a downloadable data set.
DOWNLOADS = sorted(
    {
        (s["data"]["dataset"], s["data"]["root"])
        for s in SETTINGS.values()
        if s.get("data", {}).get("dataset") in ("mnist", "cifar100")
    }
)


# Login nodes have the network that cluster jobs may lack.
localrules:
    download_data,


rule download_data:
    log:
        "logs/data/download_data.log",
    benchmark:
        "results/benchmarks/data/download_data.tsv"
    conda:
        "../../envs/torch.yaml"
    params:
        code=script_code("download_data.py"),
        downloads=DOWNLOADS,
    script:
        "../scripts/download_data.py"
