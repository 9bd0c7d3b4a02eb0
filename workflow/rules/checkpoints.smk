# Checkpoint experiments: the 14 metrics of every checkpoint in a folder of
# saved checkpoints (MultiBERTs, or the user's own runs) -> the metrics table that the
# analysis reads like a trained setting's. See README, "Analyse a folder of checkpoints".

# Per experiment: the inputs (the folder, and the scores file if any), the keyword
# arguments of trainmap.metrics.checkpoints.checkpoint_metrics, and the job's resources
# (defaults sized for a few hundred BERT-base checkpoints).
CHECKPOINT_INPUTS = {
    name: {
        "folder": e["checkpoints"],
        **({"scores": e["scores"]} if "scores" in e else {}),
    }
    for name, e in CHECKPOINT_EXPERIMENTS.items()
}
CHECKPOINT_OPTIONS = {
    name: {
        key: e[key]
        for key in (
            "pattern",
            "step_scale",
            "include",
            "exclude",
            "state_dict_key",
            "singular_values",
        )
        if key in e
    }
    for name, e in CHECKPOINT_EXPERIMENTS.items()
}
CHECKPOINT_RESOURCES = {
    name: {"threads": 2, "mem_mb": 8000, "runtime": 120, **e.get("resources", {})}
    for name, e in CHECKPOINT_EXPERIMENTS.items()
}


rule checkpoint_metrics:
    input:
        unpack(lambda wc: CHECKPOINT_INPUTS[wc.checkpoint_experiment]),
        files=checkpoint_files,
    output:
        "results/runs/{checkpoint_experiment}/metrics.parquet",
    log:
        "logs/checkpoints/{checkpoint_experiment}/checkpoint_metrics.log",
    benchmark:
        "results/benchmarks/checkpoints/{checkpoint_experiment}/checkpoint_metrics.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: lambda wc: CHECKPOINT_RESOURCES[wc.checkpoint_experiment]["threads"]
    resources:
        mem_mb=lambda wc: CHECKPOINT_RESOURCES[wc.checkpoint_experiment]["mem_mb"],
        runtime=lambda wc: CHECKPOINT_RESOURCES[wc.checkpoint_experiment]["runtime"],
    params:
        code=script_code("checkpoint_metrics.py"),
        options=lambda wc: CHECKPOINT_OPTIONS[wc.checkpoint_experiment],
        # The kernel paths set the rounding (trainmap.numerics).
        numerics=config["numerics"],
        # Not an output: Snakemake must not delete it when the job is killed.
        resume="results/runs/{checkpoint_experiment}/resume/checkpoint_rows.parquet",
    script:
        "../scripts/checkpoint_metrics.py"
