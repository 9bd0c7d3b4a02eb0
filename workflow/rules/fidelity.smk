# Paper against reproduction: every claim of config/claims.yaml checked on this run's
# results tables -> results/fidelity.md and results/fidelity.csv (trainmap.fidelity).


rule fidelity:
    input:
        **fidelity_inputs(),
    output:
        md=in_report("results/fidelity.md", "Fidelity", "fidelity"),
        csv="results/fidelity.csv",
    log:
        "logs/fidelity.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        code=script_code("fidelity.py"),
        scale=config["scale"],
        thresholds=convergence_thresholds(),
        blog=BLOG,
        sandbox=sandbox_params("success_threshold", "drops", "spikes"),
        seeds=run_seeds(),
    script:
        "../scripts/fidelity.py"


# This run's verdicts against other runs' (config section robustness): a claim whose
# verdict changes with the seeds or the rounding is fragile (trainmap.robustness).
rule robustness:
    input:
        this="results/fidelity.csv",
        others=list(ROBUSTNESS_RUNS.values()),
    output:
        md="results/robustness.md",
        csv="results/robustness.csv",
    log:
        "logs/robustness.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        labels=list(ROBUSTNESS_RUNS),
        code=script_code("robustness.py"),
    script:
        "../scripts/robustness.py"
