# Training: every configured setting's seeds, in jobs of `seeds_per_job` seeds trained
# together (at every point of the setting's grid) as one batched model, gathered into
# one metrics table per grid point.


rule train:
    output:
        "results/runs/{configured_setting}/chunks/seeds_{first}-{last}.parquet",
    log:
        "logs/train/{configured_setting}/seeds_{first}-{last}.log",
    benchmark:
        "results/benchmarks/train/{configured_setting}/seeds_{first}-{last}.tsv"
    # Before the sandbox's jobs: training heads the longest chains of jobs.
    priority: 2
    conda:
        "../../envs/torch.yaml"
    threads: lambda wc: setting_resources(wc)["threads"]
    resources:
        **config_resources(setting_resources, "gpu"),
    params:
        **torch_params(TRAIN_RESUME),
        code=script_code("train.py"),
        setting=lambda wc: training_params(wc.configured_setting),
    script:
        "../scripts/train.py"


rule gather_runs:
    input:
        chunk_tables,
    output:
        "results/runs/{grid_point}/metrics.parquet",
    log:
        "logs/train/{grid_point}/gather_runs.log",
    benchmark:
        "results/benchmarks/train/{grid_point}/gather_runs.tsv"
    # As training: a setting's analysis starts as soon as its own training ends, not after
    # every other training job.
    priority: 2
    conda:
        "../../envs/analysis.yaml"
    params:
        code=script_code("gather_runs.py"),
    script:
        "../scripts/gather_runs.py"
