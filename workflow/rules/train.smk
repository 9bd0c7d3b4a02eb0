# Training: every configured setting's seeds, in jobs of `seeds_per_job` seeds trained
# together (at every point of the setting's grid) as one batched model, gathered into
# one metrics table per grid point.


rule train:
    output:
        "results/runs/{setting}/chunks/seeds_{first}-{last}.parquet",
    log:
        "logs/train/{setting}/seeds_{first}-{last}.log",
    benchmark:
        "results/benchmarks/train/{setting}/seeds_{first}-{last}.tsv"
    # Before the sandbox's jobs: training heads the longest chains of jobs.
    priority: 2
    conda:
        "../../envs/torch.yaml"
    threads: lambda wc: setting_resources(wc)["threads"]
    resources:
        **config_resources(setting_resources, "gpu"),
    params:
        **torch_params("results/runs/{setting}/resume/seeds_{first}-{last}.pt"),
        code=script_code("train.py"),
        setting=lambda wc: training_params(wc.setting),
    script:
        "../scripts/train.py"


rule gather_runs:
    input:
        chunk_tables,
    output:
        "results/runs/{trained}/metrics.parquet",
    log:
        "logs/train/{trained}/gather_runs.log",
    benchmark:
        "results/benchmarks/train/{trained}/gather_runs.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        code=script_code("gather_runs.py"),
    script:
        "../scripts/gather_runs.py"
