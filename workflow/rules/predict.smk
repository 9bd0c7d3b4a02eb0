# Convergence predicted from a run's first checkpoints (beyond the papers), per
# analysed name with a convergence threshold: K-fold evaluation against three
# baselines, and predictions for an experiment's runs that have not converged yet.


rule predict_evaluation:
    input:
        table="results/runs/{name}/metrics.parquet",
        zscores="results/normalized/{name}/zscores.parquet",
        selection="results/bic/{name}/selection.csv",
        convergence="results/regression/{name}/convergence.csv",
    output:
        evaluation="results/predict/{name}/evaluation.csv",
        predictions="results/predict/{name}/predictions.csv",
    log:
        "logs/predict/{name}/predict_evaluation.log",
    benchmark:
        "results/benchmarks/predict/{name}/predict_evaluation.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        code=script_code("predict_evaluation.py"),
        threshold=lambda wc: analysed(wc.name)["convergence_threshold"],
        options=fit_options(),
        level=ANALYSIS["prediction_level"],
        window=ANALYSIS["zscore_checkpoints"],
    script:
        "../scripts/predict_evaluation.py"


rule predict_unfinished:
    input:
        table="results/runs/{name}/metrics.parquet",
        zscores="results/normalized/{name}/zscores.parquet",
        selection="results/bic/{name}/selection.csv",
        convergence="results/regression/{name}/convergence.csv",
    output:
        "results/predict/{name}/unfinished.csv",
    log:
        "logs/predict/{name}/predict_unfinished.log",
    benchmark:
        "results/benchmarks/predict/{name}/predict_unfinished.tsv"
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        code=script_code("predict_unfinished.py"),
        threshold=lambda wc: analysed(wc.name)["convergence_threshold"],
        options=fit_options(),
        level=ANALYSIS["prediction_level"],
        window=ANALYSIS["zscore_checkpoints"],
    script:
        "../scripts/predict_unfinished.py"
