# Checkpoint experiments: the 14 metrics of every checkpoint in a folder of
# saved checkpoints (MultiBERTs, or the user's own runs) -> the metrics table that the
# analysis reads like a trained setting's. See README, "Analyse a folder of checkpoints".


rule checkpoint_metrics:
    input:
        unpack(checkpoint_inputs),
    output:
        "results/runs/{own_checkpoints}/metrics.parquet",
    log:
        "logs/checkpoints/{own_checkpoints}/checkpoint_metrics.log",
    benchmark:
        "results/benchmarks/checkpoints/{own_checkpoints}/checkpoint_metrics.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: lambda wc: checkpoint_resources(wc)["threads"]
    resources:
        **config_resources(checkpoint_resources),
    params:
        **checkpoint_params(),
        code=script_code("checkpoint_metrics.py"),
    script:
        "../scripts/checkpoint_metrics.py"
