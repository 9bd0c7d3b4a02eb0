# Tables and figures of Hu et al. (2023) from the analysis outputs -> results/hu2023/.
# Tables 1, 2 and 4 and figures 10 and 11 have a row or panel per analysed setting or
# experiment; each training-map figure belongs to one setting (MAP_FIGURES).


rule hu2023_table1:
    input:
        summaries=per_name("results/regression/{analysed}/summary.csv"),
        selections=per_name("results/bic/{analysed}/selection.csv"),
        splits=per_name("results/normalized/{analysed}/split.csv"),
    output:
        csv=hu2023_report("table1.csv"),
        md=f"{HU2023}/table1.md",
    log:
        "logs/hu2023/table1.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        code=script_code("hu2023_table1.py"),
        panels=panels(),
        normalization=ANALYSIS["normalization"],
    script:
        "../scripts/hu2023_table1.py"


rule hu2023_table2:
    input:
        coefficients=per_name("results/regression/{analysed}/coefficients.csv"),
        splits=per_name("results/normalized/{analysed}/split.csv"),
    output:
        csv=hu2023_report("table2.csv"),
        md=f"{HU2023}/table2.md",
    log:
        "logs/hu2023/table2.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        code=script_code("hu2023_table2.py"),
        panels=panels(),
    script:
        "../scripts/hu2023_table2.py"


rule hu2023_table4:
    input:
        hmm=per_name("results/bic/{analysed}/selection.csv"),
        baselines=per_name("results/baselines/{analysed}/selection.csv"),
        splits=per_name("results/normalized/{analysed}/split.csv"),
    output:
        csv=hu2023_report("table4.csv"),
        md=f"{HU2023}/table4.md",
    log:
        "logs/hu2023/table4.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        code=script_code("hu2023_table4.py"),
        panels=panels(),
    script:
        "../scripts/hu2023_table4.py"


rule hu2023_map:
    input:
        edges=lambda wc: f"results/maps/{HU2023_MAPS[wc.figure]}/edges.csv",
        nodes=lambda wc: f"results/maps/{HU2023_MAPS[wc.figure]}/nodes.csv",
    output:
        png=hu2023_report("{figure}.png", "map"),
        svg=f"{HU2023}/{{figure}}.svg",
        csv=f"{HU2023}/{{figure}}_edges.csv",
        md=f"{HU2023}/{{figure}}_edges.md",
    log:
        "logs/hu2023/{figure}.log",
    wildcard_constraints:
        figure=name_pattern(HU2023_MAPS),
    conda:
        "../../envs/analysis.yaml"
    params:
        **map_figure_params(lambda wc: HU2023_MAPS[wc.figure]),
        code=script_code("map_figure.py"),
    script:
        "../scripts/map_figure.py"


rule hu2023_figure10:
    input:
        selections=per_name("results/bic/{analysed}/selection.csv"),
        splits=per_name("results/normalized/{analysed}/split.csv"),
    output:
        hu2023_report("figure10.png"),
    log:
        "logs/hu2023/figure10.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        code=script_code("hu2023_figure10.py"),
        panels=panels(),
        scale=config["scale"],
    script:
        "../scripts/hu2023_figure10.py"


rule hu2023_stability:
    input:
        replicates=per_name("results/stability/{analysed}/replicates.csv"),
        edges=per_name("results/stability/{analysed}/edges.csv"),
        splits=per_name("results/normalized/{analysed}/split.csv"),
    output:
        csv=hu2023_report("stability.csv"),
        md=f"{HU2023}/stability.md",
    log:
        "logs/hu2023/stability.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        code=script_code("hu2023_stability.py"),
        panels=panels(),
    script:
        "../scripts/hu2023_stability.py"


rule hu2023_figure11:
    input:
        convergence=per_name(
            "results/regression/{analysed}/convergence.csv", CONVERGING
        ),
        splits=per_name("results/normalized/{analysed}/split.csv", CONVERGING),
    output:
        hu2023_report("figure11.png"),
    log:
        "logs/hu2023/figure11.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        code=script_code("hu2023_figure11.py"),
        panels=panels(CONVERGING),
        thresholds=convergence_thresholds(),
        scale=config["scale"],
    script:
        "../scripts/hu2023_figure11.py"


rule hu2023_prediction:
    input:
        evaluations=per_name("results/predict/{analysed}/evaluation.csv", CONVERGING),
        splits=per_name("results/normalized/{analysed}/split.csv", CONVERGING),
    output:
        hu2023_report("prediction.png"),
    log:
        "logs/hu2023/prediction.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        code=script_code("hu2023_prediction.py"),
        panels=panels(CONVERGING),
        seeds=run_seeds(),
        scale=config["scale"],
    script:
        "../scripts/hu2023_prediction.py"
