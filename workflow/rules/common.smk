# Helpers shared by every stage: which names exist, wildcard constraints.

import re
from pathlib import Path

from trainmap.jobs import seed_chunks
from trainmap.sources import code_digest
from trainmap.training.grid import expand_grids
from trainmap.training.settings import training_determinants

# The settings as configured: each one's training jobs train its seeds at every point
# of its grid together.
CONFIGURED = config["settings"]
# What is trained and analysed: every grid point of every setting, each a setting of
# its own (a setting without a grid is its one point, under its own name).
GRID_POINTS = expand_grids(CONFIGURED)
SETTINGS = {name: point.config for name, point in GRID_POINTS.items()}
EXPERIMENTS = config.get("experiments") or {}
# The user's runs come as a metrics table or as a folder of checkpoints.
TABLE_EXPERIMENTS = {n: e for n, e in EXPERIMENTS.items() if "table" in e}
CHECKPOINT_EXPERIMENTS = {n: e for n, e in EXPERIMENTS.items() if "checkpoints" in e}
# Everything the analysis runs on: trained settings and the user's own runs.
ANALYSED = {**SETTINGS, **EXPERIMENTS}


def name_pattern(names):
    """A wildcard regex that matches exactly these names (and nothing when empty)."""
    return "|".join(re.escape(name) for name in sorted(names)) or "(?!)"


wildcard_constraints:
    setting=name_pattern(CONFIGURED),
    trained=name_pattern(SETTINGS),
    experiment=name_pattern(EXPERIMENTS),
    table_experiment=name_pattern(TABLE_EXPERIMENTS),
    checkpoint_experiment=name_pattern(CHECKPOINT_EXPERIMENTS),
    name=name_pattern(ANALYSED),
    k=r"\d+",


# The workflow's own scripts, also when it runs as a module of another workflow.
SCRIPTS = Path(workflow.current_basedir).parent / "scripts"


def script_code(script):
    """A param that reruns a rule's jobs when the code they run changes, and only then.

    The digest of workflow/scripts/<script> and of every trainmap module it imports
    (trainmap.sources). The profile leaves out Snakemake's `code` trigger, which reruns
    on a newer script file even when its text is the same.
    """
    return code_digest(SCRIPTS / script)


def analysed(name):
    """The config of a trained setting or a user experiment."""
    return ANALYSED[name]


# ---- train.smk ----


def setting_chunks(setting):
    """The (first, last) seeds of each training job of a configured setting."""
    configured = CONFIGURED[setting]
    return seed_chunks(
        configured["seeds"], configured["seeds_per_job"], configured["first_seed"]
    )


def training_params(setting):
    """The part of a configured setting that determines its training jobs' tables.

    The trainer fingerprints its resume state on the same part, so that changing
    anything else (title, resources, progress logging) neither reruns nor discards it.
    """
    return training_determinants(CONFIGURED[setting])


def chunk_tables(wildcards):
    """The training jobs' tables that hold a grid point's runs (with the other points')."""
    setting = GRID_POINTS[wildcards.trained].setting
    return [
        f"results/runs/{setting}/chunks/seeds_{a}-{b}.parquet"
        for a, b in setting_chunks(setting)
    ]


def train_targets():
    """The metrics table of every configured setting."""
    return [f"results/runs/{s}/metrics.parquet" for s in SETTINGS]


# ---- checkpoints.smk ----


def checkpoint_files(wildcards):
    """Every file in an experiment's checkpoint folder: adding or overwriting one reruns.

    (The folder alone is one input whose time changes only when its top level does.)
    """
    folder = Path(
        CHECKPOINT_EXPERIMENTS[wildcards.checkpoint_experiment]["checkpoints"]
    )
    return sorted(str(f) for f in folder.rglob("*") if f.is_file() and f.name[0] != ".")


# ---- analysis.smk ----

ANALYSIS = config["analysis"]
K_RANGE = range(1, ANALYSIS["k_max"] + 1)


def fit_options():
    """trainmap.analysis.hmm.FitOptions fields from the config."""
    return {
        key: ANALYSIS[key]
        for key in (
            "restarts",
            "seed",
            "n_iter",
            "tol",
            "min_covar",
            "covariance_type",
            "init",
        )
    }


def alignment_params():
    """What the per-run alignment of normalization aligned depends on (nothing otherwise)."""
    if ANALYSIS["normalization"] != "aligned":
        return {}
    return {
        "k_max": ANALYSIS["k_max"],
        "options": fit_options(),
    }


def split_params():
    """What rule normalize's split of runs into folds depends on."""
    keys = ("selection", "seed")
    keys += ("folds",) if ANALYSIS["selection"] == "kfold" else ("held_out_fraction",)
    return {key: ANALYSIS[key] for key in keys}


def selection_params():
    """What rule select_states's choice of k depends on (beyond the sweep's files)."""
    return {
        "criterion": ANALYSIS["criterion"],
        "one_standard_error": ANALYSIS["one_standard_error"],
        "k_limit": ANALYSIS["k_max"] + ANALYSIS["k_extend"],
    }


def regression_params():
    """trainmap.analysis.regression.RegressionOptions fields from the config."""
    keys = (
        "alpha",
        "bootstrap",
        "seed",
        "detour_rule",
        "min_detour_runs",
        "min_runs_per_state",
        "permutations",
    )
    return {key: ANALYSIS[key] for key in keys}


def import_params(experiment):
    """What rule import_experiment reads of a table experiment.

    Not its title; of the threshold only whether there is one (the import checks that
    it comes with an accuracy column), so that changing it reruns only what uses it.
    """
    params = dict(TABLE_EXPERIMENTS[experiment])
    params.pop("title")
    if params.get("convergence_threshold") is not None:
        params["convergence_threshold"] = True
    return params


def metrics_of(name):
    """The metric columns an experiment declares (None: the 14 paper metrics present)."""
    return (analysed(name).get("columns") or {}).get("metrics")


from pathlib import Path

from trainmap.tables import RECORDED_PARTS


def table_files(table):
    """A table experiment's input: its file, or every part file of a recorder's folder."""
    if not Path(table).is_dir():
        return table
    return sorted(str(p) for p in Path(table).glob(RECORDED_PARTS)) or table


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
HU2023_CATEGORY = "Hu et al. 2023"

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
    tables = expand(
        f"{HU2023}/{{table}}.{{ext}}",
        table=("table1", "table2", "table4", "stability"),
        ext=("csv", "md"),
    )
    maps = expand(
        f"{HU2023}/{{figure}}{{suffix}}",
        figure=HU2023_MAPS,
        suffix=(".png", ".svg", "_edges.csv", "_edges.md"),
    )
    figures = [f"{HU2023}/figure10.png"]
    if CONVERGING:
        figures += [f"{HU2023}/figure11.png", f"{HU2023}/prediction.png"]
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


# ---- predict.smk ----


def predict_targets():
    """Per name with a convergence threshold: the prediction's evaluation; per such
    experiment also the predictions for its unfinished runs."""
    evaluations = per_name("results/predict/{name}/evaluation.csv", CONVERGING)
    unfinished = [
        f"results/predict/{name}/unfinished.csv"
        for name in CONVERGING
        if name in EXPERIMENTS
    ]
    return evaluations + unfinished


# ---- blog.smk ----

BLOG = config.get("blog")
BLOG_DIR = "results/blog2025"
BLOG_CATEGORY = "Blog post (Hu et al. 2025)"
BLOG_FILES = [
    "phase_events.csv",
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


def blog_params(*keys):
    """The ``blog`` keys a job reads (a change to any other key does not rerun it)."""
    return {key: BLOG[key] for key in keys}


def blog_targets():
    """Every file of the blog post (nothing if the config has no ``blog`` section)."""
    return [f"{BLOG_DIR}/{name}" for name in BLOG_FILES] if BLOG else []


# ---- sandbox.smk ----

from typing import NamedTuple

from trainmap.sandbox.plan import experiment_jobs, plan_jobs

SANDBOX = config.get("sandbox")
SANDBOX_JOBS = plan_jobs(SANDBOX) if SANDBOX else {}
SANDBOX_DIR = "results/sandbox2025"
SANDBOX_RUNS = f"{SANDBOX_DIR}/runs"
SANDBOX_CATEGORY = "Visual sandbox (2025)"


class SandboxFrame(NamedTuple):
    experiment: str
    rank: int  # 0: the best run
    epoch: int | None  # None: the last epoch
    what: str


class SandboxGradnorm(NamedTuple):
    experiment: str
    batch: str


class SandboxSparsity(NamedTuple):
    experiment: str
    by_d: bool


# Figures 1-4: final frames of the best, 2nd, ... run of `base`; 10, 11: the best transfer
# run at the start (p = 2 weights, p = 3 data) and at the end of fine-tuning.
SANDBOX_FRAMES = {
    "1": SandboxFrame("base", 0, None, "Figure 1: best run"),
    "2": SandboxFrame("base", 1, None, "Figure 2: 2nd best run"),
    "3": SandboxFrame("base", 2, None, "Figure 3: 3rd best run"),
    "4": SandboxFrame("base", 3, None, "Figure 4: 4th best run"),
    "10": SandboxFrame(
        "transfer",
        0,
        0,
        "Figure 10: p=2 circuit with a 3rd token, before fine-tuning",
    ),
    "11": SandboxFrame("transfer", 0, None, "Figure 11: after fine-tuning on p=3"),
}
SANDBOX_ABLATIONS = ("batch_size", "lr", "mlp_discount", "hidden")
# Gradient-norm figures: experiment and what it shows.
SANDBOX_GRADNORMS = {
    "15": SandboxGradnorm("fullbatch", "full batch, d=2"),
    "16": SandboxGradnorm("base", "mini-batch, d=2"),
    "18": SandboxGradnorm("fullbatch_d3", "full batch, d=3"),
    "19": SandboxGradnorm("minibatch_d3", "mini-batch, d=3"),
}
# Activation-sparsity figures: the experiment whose final models they measure, and
# whether they draw one panel per width d.
SANDBOX_SPARSITY = {
    "17": SandboxSparsity("base", False),
    "20": SandboxSparsity("width", True),
}


def sandbox_files(experiment, kind):
    """``log.parquet`` or ``weights.npz`` of every job of an experiment."""
    jobs = experiment_jobs(SANDBOX_JOBS, experiment)
    return [f"{SANDBOX_RUNS}/{j}/{kind}" for j in jobs]


def sandbox_targets():
    """Every sandbox figure and the video."""
    if not SANDBOX:
        return []
    figures = [*SANDBOX_FRAMES, "5", "6", "7", "8", "9", "12", "13", "14"]
    figures += [*SANDBOX_GRADNORMS, *SANDBOX_SPARSITY]
    video = f"{SANDBOX_DIR}/video.{SANDBOX['video']['format']}"
    return [f"{SANDBOX_DIR}/figure{n}.png" for n in figures] + [video]


wildcard_constraints:
    job="|".join(re.escape(j) for j in SANDBOX_JOBS) or "(?!)",
    frame="|".join(SANDBOX_FRAMES),
    ablation_figure="6|7",
    spike_figure="12|13|14",
    gradnorm_figure="|".join(SANDBOX_GRADNORMS),
    sparsity_figure="|".join(SANDBOX_SPARSITY),


def sandbox_init_weights(wildcards):
    source = SANDBOX_JOBS[wildcards.job].init_from
    return sandbox_files(source, "weights.npz") if source else []


# ---- fidelity.smk ----

FIDELITY_CLAIMS = "config/claims.yaml"


def fidelity_inputs():
    """Every results table a claim reads that this config builds."""
    files = {
        "claims": FIDELITY_CLAIMS,
        "schema": "workflow/schemas/claims.schema.yaml",
        "runs": train_targets(),
    }
    if ANALYSED:
        files["table1"] = f"{HU2023}/table1.csv"
        files["maps"] = per_name("results/maps/{name}/edges.csv")
        files["models"] = per_name("results/hmm/{name}/model.npz")
        files["states"] = per_name("results/hmm/{name}/states.parquet")
        files["convergence"] = per_name(
            "results/regression/{name}/convergence.csv", CONVERGING
        )
        files["predictions"] = per_name(
            "results/predict/{name}/evaluation.csv", CONVERGING
        )
    if BLOG:
        files["blog"] = [
            f"results/runs/{BLOG['setting']}/metrics.parquet",
            f"results/hmm/{BLOG['setting']}/states.parquet",
        ]
    if SANDBOX:
        files["sandbox"] = [
            *sandbox_files("base", "log.parquet"),
            *sandbox_files("transfer", "log.parquet"),
            *sandbox_files("scratch_p3", "log.parquet"),
            *[
                log
                for key in SANDBOX_ABLATIONS
                for log in sandbox_files(f"ablation_{key}", "log.parquet")
            ],
            f"{SANDBOX_DIR}/figure17_sparsity.csv",
        ]
    return files


def run_seeds():
    """The seeds each trained setting and sandbox experiment runs, from its first_seed
    (default 0): they decide whether a claim is exploratory or confirmatory."""
    seeds = {}
    for name, setting in SETTINGS.items():
        first = setting.get("first_seed", 0)
        seeds[name] = list(range(first, first + setting["seeds"]))
    if SANDBOX:
        defaults = SANDBOX["defaults"]
        for name, experiment in SANDBOX["experiments"].items():
            first = experiment.get("first_seed", defaults.get("first_seed", 0))
            count = experiment.get("seeds", defaults["seeds"])
            seeds[name] = list(range(first, first + count))
    return seeds


def fidelity_targets():
    """The fidelity report."""
    return ["results/fidelity.md", "results/fidelity.csv"]


# Other runs' fidelity tables, by label (none: no robustness report).
ROBUSTNESS_RUNS = (config.get("robustness") or {}).get("runs", {})


def robustness_targets():
    """The robustness report, when the config names other runs to compare with."""
    return (
        ["results/robustness.md", "results/robustness.csv"] if ROBUSTNESS_RUNS else []
    )
