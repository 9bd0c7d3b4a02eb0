# Tables and figures of Hu et al. (2023) from the analysis outputs -> results/hu2023/.
# Tables 1, 2 and 4 and figures 10 and 11 have a row or panel per analysed setting or
# experiment; each training-map figure belongs to one setting (MAP_FIGURES).

HU2023 = "results/hu2023"
CATEGORY = "Hu et al. 2023"

# Paper figure -> the setting whose training map it shows. Adding a setting to the
# config (e.g. cifar100) adds its figure.
MAP_FIGURES = {
    "figure2": "modular",
    "figure3": "cifar100",
    "figure4": "cifar100_destabilized",
    "figure5": "modular_stabilized",
    "figure7": "multiberts",
    "figure8": "parities",
    "figure9": "mnist",
}
HU2023_MAPS = {figure: name for figure, name in MAP_FIGURES.items() if name in ANALYSED}
# Figure 11 needs convergence times: the names with a convergence threshold.
CONVERGING = [name for name in ANALYSED if analysed(name).get("convergence_threshold")]


def hu2023_targets():
    """Every table and figure of the paper that the configured settings make."""
    if not ANALYSED:
        return []
    tables = expand(f"{HU2023}/table{{n}}.{{ext}}", n=(1, 2, 4), ext=("csv", "md"))
    maps = expand(
        f"{HU2023}/{{figure}}{{suffix}}",
        figure=HU2023_MAPS,
        suffix=(".png", ".svg", "_edges.csv", "_edges.md"),
    )
    figures = [f"{HU2023}/figure10.png"]
    if CONVERGING:
        figures.append(f"{HU2023}/figure11.png")
    return tables + maps + figures


def per_name(pattern, names=None):
    """One input path per analysed name (in config order)."""
    return [
        pattern.format(name=name) for name in (ANALYSED if names is None else names)
    ]


def panels(names=None):
    """trainmap.figures.hu2023.Panel fields (less the run count) per analysed name."""
    names = ANALYSED if names is None else names
    return [{"name": name, "title": analysed(name)["title"]} for name in names]


rule hu2023_table1:
    input:
        summaries=per_name("results/regression/{name}/summary.csv"),
    output:
        csv=report(
            f"{HU2023}/table1.csv",
            caption="../report/hu2023_table1.rst",
            category=CATEGORY,
        ),
        md=f"{HU2023}/table1.md",
    log:
        "logs/hu2023/table1.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        panels=panels(),
    script:
        "../scripts/hu2023_table1.py"


rule hu2023_table2:
    input:
        coefficients=per_name("results/regression/{name}/coefficients.csv"),
        summaries=per_name("results/regression/{name}/summary.csv"),
    output:
        csv=report(
            f"{HU2023}/table2.csv",
            caption="../report/hu2023_table2.rst",
            category=CATEGORY,
        ),
        md=f"{HU2023}/table2.md",
    log:
        "logs/hu2023/table2.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        panels=panels(),
    script:
        "../scripts/hu2023_table2.py"


rule hu2023_table4:
    input:
        hmm=per_name("results/bic/{name}/selection.csv"),
        baselines=per_name("results/baselines/{name}/selection.csv"),
        splits=per_name("results/normalized/{name}/split.csv"),
    output:
        csv=report(
            f"{HU2023}/table4.csv",
            caption="../report/hu2023_table4.rst",
            category=CATEGORY,
        ),
        md=f"{HU2023}/table4.md",
    log:
        "logs/hu2023/table4.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        panels=panels(),
    script:
        "../scripts/hu2023_table4.py"


rule hu2023_map:
    input:
        edges=lambda wc: f"results/maps/{HU2023_MAPS[wc.figure]}/edges.csv",
        nodes=lambda wc: f"results/maps/{HU2023_MAPS[wc.figure]}/nodes.csv",
    output:
        png=report(
            f"{HU2023}/{{figure}}.png",
            caption="../report/hu2023_map.rst",
            category=CATEGORY,
        ),
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
        title=lambda wc: analysed(HU2023_MAPS[wc.figure])["title"],
        scale=config["scale"],
        top=ANALYSIS["top_features"],
    script:
        "../scripts/map_figure.py"


rule hu2023_figure10:
    input:
        selections=per_name("results/bic/{name}/selection.csv"),
        splits=per_name("results/normalized/{name}/split.csv"),
    output:
        report(
            f"{HU2023}/figure10.png",
            caption="../report/hu2023_figure10.rst",
            category=CATEGORY,
        ),
    log:
        "logs/hu2023/figure10.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        panels=panels(),
        scale=config["scale"],
    script:
        "../scripts/hu2023_figure10.py"


rule hu2023_figure11:
    input:
        convergence=per_name("results/regression/{name}/convergence.csv", CONVERGING),
    output:
        report(
            f"{HU2023}/figure11.png",
            caption="../report/hu2023_figure11.rst",
            category=CATEGORY,
        ),
    log:
        "logs/hu2023/figure11.log",
    conda:
        "../../envs/analysis.yaml"
    params:
        panels=panels(CONVERGING),
        thresholds={
            name: analysed(name)["convergence_threshold"] for name in CONVERGING
        },
        scale=config["scale"],
    script:
        "../scripts/hu2023_figure11.py"
