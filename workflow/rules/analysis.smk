# The analysis (Hu et al. 2023 section 2), per analysed name (trained setting
# or experiment): z-scores -> BIC sweep (one job per k) -> HMM fit and decoding ->
# training map, convergence regression, baselines. The user's metric tables enter
# through import_experiment.


rule import_experiment:
    input:
        lambda wc: table_files(TABLE_EXPERIMENTS[wc.table_experiment]["table"]),
    output:
        "results/runs/{table_experiment}/metrics.parquet",
    log:
        "logs/analysis/{table_experiment}/import_experiment.log",
    benchmark:
        "results/benchmarks/analysis/{table_experiment}/import_experiment.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        code=script_code("import_experiment.py"),
        experiment=lambda wc: import_params(wc.table_experiment),
    script:
        "../scripts/import_experiment.py"


rule normalize:
    input:
        "results/runs/{name}/metrics.parquet",
    output:
        zscores="results/normalized/{name}/zscores.parquet",
        pooled="results/normalized/{name}/pooled.parquet",
        split="results/normalized/{name}/split.csv",
    log:
        "logs/analysis/{name}/normalize.log",
    benchmark:
        "results/benchmarks/analysis/{name}/normalize.tsv"
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
        zscores="results/normalized/{name}/pooled.parquet",
        split="results/normalized/{name}/split.csv",
    output:
        "results/bic/{name}/k{k}.csv",
    log:
        "logs/analysis/{name}/bic_sweep_k{k}.log",
    benchmark:
        "results/benchmarks/analysis/{name}/bic_sweep_k{k}.tsv"
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
        sweep=expand("results/bic/{{name}}/k{k}.csv", k=K_RANGE),
        zscores="results/normalized/{name}/pooled.parquet",
        split="results/normalized/{name}/split.csv",
    output:
        sweep="results/bic/{name}/sweep.csv",
        selection="results/bic/{name}/selection.csv",
    log:
        "logs/analysis/{name}/select_states.log",
    benchmark:
        "results/benchmarks/analysis/{name}/select_states.tsv"
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
        model="results/hmm/{name}/model.pkl",
        arrays="results/hmm/{name}/model.npz",
        states="results/hmm/{name}/states.parquet",
    log:
        "logs/analysis/{name}/fit_hmm.log",
    benchmark:
        "results/benchmarks/analysis/{name}/fit_hmm.tsv"
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
        "results/regression/{name}/convergence.csv",
    log:
        "logs/analysis/{name}/convergence.log",
    benchmark:
        "results/benchmarks/analysis/{name}/convergence.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        code=script_code("convergence.py"),
        threshold=lambda wc: analysed(wc.name).get("convergence_threshold"),
        unconverged=ANALYSIS["unconverged"],
    script:
        "../scripts/convergence.py"


rule training_map:
    input:
        **analysis_inputs("zscores", "model", "states", "convergence"),
    output:
        edges="results/maps/{name}/edges.csv",
        edges_md="results/maps/{name}/edges.md",
        nodes="results/maps/{name}/nodes.csv",
    log:
        "logs/analysis/{name}/training_map.log",
    benchmark:
        "results/benchmarks/analysis/{name}/training_map.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        code=script_code("training_map.py"),
        top=ANALYSIS["top_features"],
    script:
        "../scripts/training_map.py"


rule map_figure:
    input:
        edges="results/maps/{name}/edges.csv",
        nodes="results/maps/{name}/nodes.csv",
    output:
        png="results/maps/{name}/map.png",
        svg="results/maps/{name}/map.svg",
        table="results/maps/{name}/map_table.md",
    log:
        "logs/analysis/{name}/map_figure.log",
    benchmark:
        "results/benchmarks/analysis/{name}/map_figure.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        **map_figure_params(lambda wc: wc.name),
        code=script_code("map_figure.py"),
    script:
        "../scripts/map_figure.py"


rule regression:
    input:
        **analysis_inputs("model", "states", "convergence"),
    output:
        summary="results/regression/{name}/summary.csv",
        coefficients="results/regression/{name}/coefficients.csv",
    log:
        "logs/analysis/{name}/regression.log",
    benchmark:
        "results/benchmarks/analysis/{name}/regression.tsv"
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
        replicates="results/stability/{name}/replicates.csv",
        edges="results/stability/{name}/edges.csv",
    log:
        "logs/analysis/{name}/stability.log",
    benchmark:
        "results/benchmarks/analysis/{name}/stability.tsv"
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
        sweep="results/baselines/{name}/sweep.csv",
        selection="results/baselines/{name}/selection.csv",
    log:
        "logs/analysis/{name}/baselines.log",
    benchmark:
        "results/benchmarks/analysis/{name}/baselines.tsv"
    conda:
        "../../envs/analysis.yaml"
    params:
        code=script_code("baselines.py"),
        k_max=ANALYSIS["baseline_k_max"],
        options=fit_options(),
        criterion=ANALYSIS["criterion"],
    script:
        "../scripts/baselines.py"
