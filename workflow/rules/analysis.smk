# The analysis (Hu et al. 2023 section 2), per analysed name (trained setting
# or experiment): z-scores -> BIC sweep (one job per k) -> HMM fit and decoding ->
# training map, convergence regression, baselines. The user's metric tables enter
# through import_experiment.


rule import_experiment:
    input:
        lambda wc: table_files(TABLE_EXPERIMENTS[wc.own_table]["table"]),
    output:
        "results/runs/{own_table}/metrics.parquet",
    log:
        "logs/analysis/{own_table}/import_experiment.log",
    benchmark:
        "results/benchmarks/analysis/{own_table}/import_experiment.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        code=script_code("import_experiment.py"),
        experiment=lambda wc: import_params(wc.own_table),
    script:
        "../scripts/import_experiment.py"


rule normalize:
    input:
        "results/runs/{analysed}/metrics.parquet",
    output:
        zscores="results/normalized/{analysed}/zscores.parquet",
        pooled="results/normalized/{analysed}/pooled.parquet",
        split="results/normalized/{analysed}/split.csv",
    log:
        "logs/analysis/{analysed}/normalize.log",
    benchmark:
        "results/benchmarks/analysis/{analysed}/normalize.tsv"
    priority: 1  # on the critical path, after the training (rule train)
    conda:
        "../../envs/analysis.yaml"
    params:
        **normalize_params(),
        code=script_code("normalize.py"),
    script:
        "../scripts/normalize.py"


rule bic_sweep:
    input:
        zscores="results/normalized/{analysed}/pooled.parquet",
        split="results/normalized/{analysed}/split.csv",
    output:
        "results/bic/{analysed}/k{k}.csv",
    log:
        "logs/analysis/{analysed}/bic_sweep_k{k}.log",
    benchmark:
        "results/benchmarks/analysis/{analysed}/bic_sweep_k{k}.tsv"
    priority: 1  # on the critical path, after the training (rule train)
    conda:
        "../../envs/analysis.yaml"
    params:
        **sweep_params(),
        code=script_code("bic_sweep.py"),
    script:
        "../scripts/bic_sweep.py"


rule select_states:
    input:
        sweep=expand("results/bic/{{analysed}}/k{k}.csv", k=K_RANGE),
        zscores="results/normalized/{analysed}/pooled.parquet",
        split="results/normalized/{analysed}/split.csv",
    output:
        sweep="results/bic/{analysed}/sweep.csv",
        selection="results/bic/{analysed}/selection.csv",
    log:
        "logs/analysis/{analysed}/select_states.log",
    benchmark:
        "results/benchmarks/analysis/{analysed}/select_states.tsv"
    priority: 1  # on the critical path, after the training (rule train)
    conda:
        "../../envs/analysis.yaml"
    params:
        **sweep_params(selection=selection_params()),
        code=script_code("select_states.py"),
    script:
        "../scripts/select_states.py"


rule fit_hmm:
    input:
        **analysis_inputs("zscores", "selection"),
    output:
        model="results/hmm/{analysed}/model.pkl",
        arrays="results/hmm/{analysed}/model.npz",
        states="results/hmm/{analysed}/states.parquet",
    log:
        "logs/analysis/{analysed}/fit_hmm.log",
    benchmark:
        "results/benchmarks/analysis/{analysed}/fit_hmm.tsv"
    priority: 1  # on the critical path, after the training (rule train)
    conda:
        "../../envs/analysis.yaml"
    params:
        code=script_code("fit_hmm.py"),
        options=fit_options(),
    script:
        "../scripts/fit_hmm.py"


rule convergence:
    input:
        **analysis_inputs("table", "states"),
    output:
        "results/regression/{analysed}/convergence.csv",
    log:
        "logs/analysis/{analysed}/convergence.log",
    benchmark:
        "results/benchmarks/analysis/{analysed}/convergence.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        code=script_code("convergence.py"),
        threshold=lambda wc: analysed(wc.analysed).get("convergence_threshold"),
        unconverged=ANALYSIS["unconverged"],
    script:
        "../scripts/convergence.py"


rule training_map:
    input:
        **analysis_inputs("zscores", "model", "states", "convergence"),
    output:
        edges="results/maps/{analysed}/edges.csv",
        edges_md="results/maps/{analysed}/edges.md",
        nodes="results/maps/{analysed}/nodes.csv",
    log:
        "logs/analysis/{analysed}/training_map.log",
    benchmark:
        "results/benchmarks/analysis/{analysed}/training_map.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        code=script_code("training_map.py"),
        top=ANALYSIS["top_features"],
    script:
        "../scripts/training_map.py"


rule map_figure:
    input:
        edges="results/maps/{analysed}/edges.csv",
        nodes="results/maps/{analysed}/nodes.csv",
    output:
        png="results/maps/{analysed}/map.png",
        svg="results/maps/{analysed}/map.svg",
        table="results/maps/{analysed}/map_table.md",
    log:
        "logs/analysis/{analysed}/map_figure.log",
    benchmark:
        "results/benchmarks/analysis/{analysed}/map_figure.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        **map_figure_params(lambda wc: wc.analysed),
        code=script_code("map_figure.py"),
    script:
        "../scripts/map_figure.py"


rule regression:
    input:
        **analysis_inputs("model", "states", "convergence"),
    output:
        summary="results/regression/{analysed}/summary.csv",
        coefficients="results/regression/{analysed}/coefficients.csv",
    log:
        "logs/analysis/{analysed}/regression.log",
    benchmark:
        "results/benchmarks/analysis/{analysed}/regression.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        code=script_code("regression.py"),
        options=regression_params(),
    script:
        "../scripts/regression.py"


rule stability:
    input:
        **analysis_inputs("zscores", "states"),
    output:
        replicates="results/stability/{analysed}/replicates.csv",
        edges="results/stability/{analysed}/edges.csv",
    log:
        "logs/analysis/{analysed}/stability.log",
    benchmark:
        "results/benchmarks/analysis/{analysed}/stability.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        code=script_code("stability.py"),
        options=fit_options(),
        resamples=ANALYSIS["stability_resamples"],
    script:
        "../scripts/stability.py"


rule baselines:
    input:
        **analysis_inputs("zscores", "split"),
    output:
        sweep="results/baselines/{analysed}/sweep.csv",
        selection="results/baselines/{analysed}/selection.csv",
    log:
        "logs/analysis/{analysed}/baselines.log",
    benchmark:
        "results/benchmarks/analysis/{analysed}/baselines.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        code=script_code("baselines.py"),
        k_max=ANALYSIS["baseline_k_max"],
        options=fit_options(),
        criterion=ANALYSIS["criterion"],
    script:
        "../scripts/baselines.py"
