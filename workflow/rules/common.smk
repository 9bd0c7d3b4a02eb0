# Helpers shared by every stage: which names exist, wildcard constraints.


SETTINGS = config["settings"]
EXPERIMENTS = config.get("experiments") or {}
# The user's runs come as a metrics table or as a folder of checkpoints.
TABLE_EXPERIMENTS = {n: e for n, e in EXPERIMENTS.items() if "table" in e}
CHECKPOINT_EXPERIMENTS = {n: e for n, e in EXPERIMENTS.items() if "checkpoints" in e}
# Everything the analysis runs on: trained settings and the user's own runs.
ANALYSED = {**SETTINGS, **EXPERIMENTS}


def name_pattern(names):
    """A wildcard regex that matches exactly these names (and nothing when empty)."""
    return "|".join(sorted(names)) or "(?!)"


wildcard_constraints:
    setting=name_pattern(SETTINGS),
    experiment=name_pattern(EXPERIMENTS),
    table_experiment=name_pattern(TABLE_EXPERIMENTS),
    checkpoint_experiment=name_pattern(CHECKPOINT_EXPERIMENTS),
    name=name_pattern(ANALYSED),
    k=r"\d+",


def analysed(name):
    """The config of a trained setting or a user experiment."""
    return ANALYSED[name]


# ---- train.smk ----


def seed_chunks(setting):
    """The (first, last) seeds of each training job of a setting."""
    n, per_job = SETTINGS[setting]["seeds"], SETTINGS[setting]["seeds_per_job"]
    return [(a, min(a + per_job, n) - 1) for a in range(0, n, per_job)]


def chunk_tables(wildcards):
    return [
        f"results/runs/{wildcards.setting}/chunks/seeds_{a}-{b}.parquet"
        for a, b in seed_chunks(wildcards.setting)
    ]


def train_targets():
    """The metrics table of every configured setting."""
    return [f"results/runs/{s}/metrics.parquet" for s in SETTINGS]


# ---- analysis.smk ----

ANALYSIS = config["analysis"]
K_RANGE = range(1, ANALYSIS["k_max"] + 1)


def fit_options():
    """trainmap.analysis.hmm.FitOptions fields from the config."""
    return {
        key: ANALYSIS[key] for key in ("restarts", "seed", "n_iter", "tol", "min_covar")
    }


def metrics_of(name):
    """The metric columns an experiment declares (None: the 14 paper metrics present)."""
    return (analysed(name).get("columns") or {}).get("metrics")


def analysis_targets():
    """Per experiment: its training map, regression and baselines."""
    return [
        f"results/{path}"
        for name in EXPERIMENTS
        for path in (
            f"maps/{name}/map.png",
            f"regression/{name}/summary.csv",
            f"baselines/{name}/selection.csv",
        )
    ]


# ---- hu2023.smk ----

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


# ---- blog.smk ----

BLOG = config.get("blog")
BLOG_DIR = "results/blog2025"
BLOG_FILES = [
    "loss_curve.png",
    "pca_loss_curve.png",
    "pca_trajectory.parquet",
    "pca_explained_variance.csv",
    "pca_turn.csv",
    "pca.html",
    "pca.png",
    "pca_training_curve.html",
    "pca_training_curve.png",
    "hmm_training_curve.html",
    "hmm_training_curve.png",
    "graph.png",
    "summary.md",
]


def blog_targets():
    """Every file of the blog post (nothing if the config has no ``blog`` section)."""
    return [f"{BLOG_DIR}/{name}" for name in BLOG_FILES] if BLOG else []
