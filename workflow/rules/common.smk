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
    configured_setting=name_pattern(CONFIGURED),
    grid_point=name_pattern(SETTINGS),
    own_runs=name_pattern(EXPERIMENTS),
    own_table=name_pattern(TABLE_EXPERIMENTS),
    own_checkpoints=name_pattern(CHECKPOINT_EXPERIMENTS),
    analysed=name_pattern(ANALYSED),
    k=r"\d+",
    first=r"\d+",
    last=r"\d+",


# The workflow's own scripts, also when it runs as a module of another workflow.
SCRIPTS = Path(workflow.current_basedir).parent / "scripts"


def script_code(script):
    """A param that reruns a rule's jobs when the code they run changes, and only then.

    The digest of workflow/scripts/<script> and of every trainmap module it imports
    (trainmap.sources). The profile leaves out Snakemake's `code` trigger, which reruns
    on a newer script file even when its text is the same.
    """
    return code_digest(SCRIPTS / script)


def caption(name):
    """The caption of a report item, workflow/report/<name>.rst (report() reads it
    relative to the rule file)."""
    return f"../report/{name}.rst"


def in_report(path, category, name):
    """An output shown in the report under `category`, with the caption `name`."""
    return report(path, caption=caption(name), category=category)


def config_resources(resources_of, *more):
    """A rule's mem_mb, runtime (and `more`) per job, from the config section
    `resources_of(wildcards)`.

    For rules whose jobs the config sizes (a setting's training, a checkpoint
    experiment): the profiles' set-resources are per rule, the same for every job.
    Every other rule takes its resources from the profiles alone.
    """

    def one(key):
        return lambda wildcards: resources_of(wildcards)[key]

    return {key: one(key) for key in ("mem_mb", "runtime", *more)}


def torch_params(resume, device=True):
    """The params of a job that runs torch besides its own: the device; the numerics,
    as the kernel paths set the rounding (trainmap.numerics); its resume file, which is
    no output so that Snakemake does not delete it when the job is killed."""
    params = {"device": config["device"]} if device else {}
    return {**params, "numerics": config["numerics"], "resume": resume}


def analysed(name):
    """The config of a trained setting or a user experiment."""
    return ANALYSED[name]


# ---- train.smk ----

# A training job's resume file (torch_params).
TRAIN_RESUME = "results/runs/{configured_setting}/resume/seeds_{first}-{last}.pt"


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


def setting_resources(wildcards):
    """The `resources:` of a training job's setting (GPU jobs get `sbatch --gpus`)."""
    return CONFIGURED[wildcards.configured_setting]["resources"]


def chunk_tables(wildcards):
    """The training jobs' tables that hold a grid point's runs (with the other points')."""
    setting = GRID_POINTS[wildcards.grid_point].setting
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
    folder = Path(CHECKPOINT_EXPERIMENTS[wildcards.own_checkpoints]["checkpoints"])
    return sorted(str(f) for f in folder.rglob("*") if f.is_file() and f.name[0] != ".")


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


def checkpoint_inputs(wildcards):
    """A checkpoint experiment's folder (and scores file), and every file in it."""
    inputs = CHECKPOINT_INPUTS[wildcards.own_checkpoints]
    return {**inputs, "files": checkpoint_files(wildcards)}


def checkpoint_resources(wildcards):
    """A checkpoint experiment's job resources (CHECKPOINT_RESOURCES)."""
    return CHECKPOINT_RESOURCES[wildcards.own_checkpoints]


def checkpoint_params():
    """What rule checkpoint_metrics passes on besides the digest of its script."""
    resume = "results/runs/{own_checkpoints}/resume/checkpoint_rows.parquet"
    return {
        "options": lambda wc: CHECKPOINT_OPTIONS[wc.own_checkpoints],
        **torch_params(resume, device=False),
    }


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


def sweep_params(**more):
    """The params of a BIC sweep and of the choice of k from it (with `more`)."""
    aligned = ANALYSIS["normalization"] == "aligned"
    return {"options": fit_options(), "aligned": aligned, **more}


def normalize_params():
    """What rule normalize's z-scores and split depend on (beyond its table)."""
    return {
        "metrics": lambda wc: metrics_of(wc.analysed),
        "max_checkpoints": ANALYSIS["zscore_checkpoints"],
        "min_length": ANALYSIS["k_max"],
        "normalization": ANALYSIS["normalization"],
        "alignment": alignment_params(),
        "split": split_params(),
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

# The analysis outputs per analysed name that later rules read, by input name.
ANALYSIS_FILES = {
    "table": "results/runs/{analysed}/metrics.parquet",
    "zscores": "results/normalized/{analysed}/zscores.parquet",
    "split": "results/normalized/{analysed}/split.csv",
    "selection": "results/bic/{analysed}/selection.csv",
    "model": "results/hmm/{analysed}/model.npz",
    "states": "results/hmm/{analysed}/states.parquet",
    "convergence": "results/regression/{analysed}/convergence.csv",
    "edges": "results/maps/{analysed}/edges.csv",
}


def analysis_inputs(*keys):
    """Named inputs per analysed name (ANALYSIS_FILES): `input: **analysis_inputs(...)`."""
    return {key: ANALYSIS_FILES[key] for key in keys}


def map_figure_params(name_of):
    """The params of a training-map figure of the name `name_of(wildcards)`."""
    return {
        "title": lambda wc: analysed(name_of(wc))["title"],
        "scale": config["scale"],
        "top": ANALYSIS["top_features"],
    }


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
        pattern.format(analysed=name) for name in (ANALYSED if names is None else names)
    ]


def convergence_thresholds():
    """The convergence threshold of every name that has one."""
    return {name: analysed(name)["convergence_threshold"] for name in CONVERGING}


def hu2023_report(file, name=None):
    """A file of results/hu2023 in the report (caption: hu2023_<name or the file's stem>)."""
    return in_report(
        f"{HU2023}/{file}", HU2023_CATEGORY, f"hu2023_{name or Path(file).stem}"
    )


def panels(names=None):
    """trainmap.figures.hu2023.Panel fields (less the run count) per analysed name."""
    names = ANALYSED if names is None else names
    return [{"name": name, "title": analysed(name)["title"]} for name in names]


# ---- predict.smk ----


def predict_params():
    """What both predictions of convergence depend on (beyond their inputs)."""
    return {
        "threshold": lambda wc: analysed(wc.analysed)["convergence_threshold"],
        "options": fit_options(),
        "level": ANALYSIS["prediction_level"],
        "window": ANALYSIS["zscore_checkpoints"],
    }


def predict_targets():
    """Per name with a convergence threshold: the prediction's evaluation; per such
    experiment also the predictions for its unfinished runs."""
    evaluations = per_name("results/predict/{analysed}/evaluation.csv", CONVERGING)
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


# What rule blog_pca makes of the run, by name (other blog rules read it).
BLOG_PCA = {
    "trajectory": f"{BLOG_DIR}/pca_trajectory.parquet",
    "variance": f"{BLOG_DIR}/pca_explained_variance.csv",
    "turn": f"{BLOG_DIR}/pca_turn.csv",
}


def blog_inputs(*keys):
    """ANALYSIS_FILES of the blog's setting, by input name (`metrics`: its table)."""
    files = {**ANALYSIS_FILES, "metrics": ANALYSIS_FILES["table"]}
    return {key: files[key].format(analysed=BLOG["setting"]) for key in keys}


def blog_report(file):
    """A file of the blog post in the report (caption: blog2025_<the file's stem>)."""
    return in_report(f"{BLOG_DIR}/{file}", BLOG_CATEGORY, f"blog2025_{Path(file).stem}")


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


def sandbox_runs(experiment):
    """The logs and weights of an experiment's jobs, by input name; `experiment` is a
    name or a function of the wildcards that returns one."""

    def files(kind):
        if callable(experiment):
            return lambda wc: sandbox_files(experiment(wc), kind)
        return sandbox_files(experiment, kind)

    return {"logs": files("log.parquet"), "weights": files("weights.npz")}


def sandbox_ablation_logs():
    """The logs of every ablation (by the hyperparameter it varies) and of `base`."""
    logs = {k: sandbox_files(f"ablation_{k}", "log.parquet") for k in SANDBOX_ABLATIONS}
    return {**logs, "base": sandbox_files("base", "log.parquet")}


def sandbox_params(*keys):
    """The ``sandbox`` keys a job reads (None without a ``sandbox`` section)."""
    return {key: SANDBOX[key] for key in keys} if SANDBOX else None


def sandbox_report(file, name=None):
    """A sandbox figure or the video in the report (caption: sandbox2025_<name or the
    file's stem>)."""
    stem = name or Path(file).stem
    return in_report(f"{SANDBOX_DIR}/{file}", SANDBOX_CATEGORY, f"sandbox2025_{stem}")


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
        files["maps"] = per_name("results/maps/{analysed}/edges.csv")
        files["models"] = per_name("results/hmm/{analysed}/model.npz")
        files["states"] = per_name("results/hmm/{analysed}/states.parquet")
        files["convergence"] = per_name(
            "results/regression/{analysed}/convergence.csv", CONVERGING
        )
        files["predictions"] = per_name(
            "results/predict/{analysed}/evaluation.csv", CONVERGING
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
