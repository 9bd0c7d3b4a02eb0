# Convergence predicted from a run's first checkpoints (beyond the papers), per
# analysed name with a convergence threshold: K-fold evaluation against three
# baselines, and predictions for an experiment's runs that have not converged yet.


rule predict_evaluation:
    input:
        **analysis_inputs("table", "zscores", "selection", "convergence"),
    output:
        evaluation="results/predict/{analysed}/evaluation.csv",
        predictions="results/predict/{analysed}/predictions.csv",
    log:
        "logs/predict/{analysed}/predict_evaluation.log",
    benchmark:
        "results/benchmarks/predict/{analysed}/predict_evaluation.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        **predict_params(),
        code=script_code("predict_evaluation.py"),
    script:
        "../scripts/predict_evaluation.py"


rule predict_unfinished:
    input:
        **analysis_inputs("table", "zscores", "selection", "convergence"),
    output:
        "results/predict/{analysed}/unfinished.csv",
    log:
        "logs/predict/{analysed}/predict_unfinished.log",
    benchmark:
        "results/benchmarks/predict/{analysed}/predict_unfinished.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        **predict_params(),
        code=script_code("predict_unfinished.py"),
    script:
        "../scripts/predict_unfinished.py"
