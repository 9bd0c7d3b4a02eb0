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
    wildcard_constraints:
        first=r"\d+",
        last=r"\d+",
    # Before the sandbox's jobs: a setting's training heads the longest chain of jobs
    # (normalize, sweep, select, fit, ...), a sandbox job a chain of one or two.
    priority: 2
    conda:
        "../../envs/torch.yaml"
    threads: lambda wc: CONFIGURED[wc.setting]["resources"]["threads"]
    resources:
        mem_mb=lambda wc: CONFIGURED[wc.setting]["resources"]["mem_mb"],
        runtime=lambda wc: CONFIGURED[wc.setting]["resources"]["runtime"],
        gpu=lambda wc: CONFIGURED[wc.setting]["resources"]["gpu"],
    params:
        code=script_code("train.py"),
        setting=lambda wc: training_params(wc.setting),
        device=config["device"],
        # The kernel paths set the rounding (trainmap.numerics).
        numerics=config["numerics"],
        # Not an output: Snakemake must not delete it when the job is killed.
        resume="results/runs/{setting}/resume/seeds_{first}-{last}.pt",
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
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        code=script_code("gather_runs.py"),
    script:
        "../scripts/gather_runs.py"
