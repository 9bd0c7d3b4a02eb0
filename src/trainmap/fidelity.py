"""Paper against reproduction: each reported number or claim checked on the current run.

The claims (``config/claims.yaml``) name a *check*: a function here that reads the
results tables of the run (never a model, never torch) and returns a :class:`Result`:
the reproduced value, how it was measured, the runs it rests on and, for a threshold
claim, a bootstrap interval. Each claim states in advance its statistic, test,
direction, read-out, tolerance and ``min_sample``; a test also ``alpha`` and ``family``.
How it is judged (:func:`evaluate`, :func:`judge`):

* a result resting on fewer runs than ``min_sample`` is not judged;
* at ``scale: paper`` (and at the other scales a claim lists in ``compared_at``), a
  claim with a ``tolerance`` passes when the reproduced number is within it of the
  paper's number (state counts ±1, R² ±0.1, ...);
* a test (a claim with a ``family``) passes when its p-value, Holm-adjusted within the
  family, is below ``alpha``;
* otherwise the claim's ``expect`` predicate decides (``{op: ">=", value: 0.5}``), at
  both ends of the bootstrap interval where there is one;
* a "no effect" claim needs an equivalence bound (:func:`equivalence_pvalue`);
* a claim with neither at this scale needs paper scale, or its ``stand_in`` data make
  the paper's number meaningless: its value is shown, not judged.

Status is ``✓`` (holds), ``✗`` (does not) or ``–`` (not judged: needs paper scale, the
regression is underpowered and needs more seeds, an interval straddles the threshold,
or this config does not build what it needs). Every row says why in one line, and
whether it is exploratory or confirmatory (:func:`design`).
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import jsonschema
import numpy as np
import pandas as pd
import yaml

from trainmap.analysis.hmm import HMMParams
from trainmap.analysis.phases import chance_pvalue, first_epoch, phase_tests, turn_tests
from trainmap.analysis.training_map import exit_times_pvalue, occupancy_fractions
from trainmap.errors import TrainmapError
from trainmap.sandbox.results import read_logs

HOLDS, FAILS, NOT_JUDGED = "✓", "✗", "–"
COLUMNS = [
    "id",
    "paper",
    "source",
    "claim",
    "paper_value",
    "reproduced",
    "scale",
    "status",
    "reason",
    "design",
]
OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


class Missing(Exception):
    """A table a claim needs is not in this run (not configured or not built)."""


class Underpowered(Exception):
    """The run has too few runs (or events, or observed times) to judge the claim; the
    message says why."""


class Result(NamedTuple):
    """What a check measured.

    ``value``: the reproduced value (a p-value for a claim with an ``alpha``);
    ``note``: how it was measured; ``sample``: the runs (or events) it rests on,
    compared with the claim's ``min_sample``; ``interval``: a 95 % bootstrap
    interval over runs of ``value``, which a threshold claim's interval must clear.
    """

    value: Any
    note: str
    sample: int | None = None
    interval: tuple[float, float] | None = None


#: Resamples and level of the bootstrap intervals of threshold claims.
BOOTSTRAP_RESAMPLES, BOOTSTRAP_LEVEL = 2000, 0.95


def bootstrap_interval(
    statistic: Callable[..., float], *samples: np.ndarray
) -> tuple[float, float]:
    """Percentile interval of ``statistic(*samples)``, each sample's runs resampled with
    replacement on their own (a fixed generator: the same tables give the same interval)."""
    from scipy.stats import bootstrap

    result = bootstrap(
        [np.asarray(x) for x in samples],
        statistic,
        n_resamples=BOOTSTRAP_RESAMPLES,
        confidence_level=BOOTSTRAP_LEVEL,
        method="percentile",
        vectorized=False,
        paired=False,
        rng=np.random.default_rng(0),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def equivalence_pvalue(rsquared: float, runs: int, predictors: int, bound: float) -> float:
    """p-value of "the population R² is at least ``bound``" against a smaller one.

    Under OLS with ``predictors`` predictors, ``runs`` runs and normal errors, the F
    statistic of a sample R² follows a noncentral F distribution with noncentrality
    λ = f² · runs at population R² = ``bound`` (f² = bound / (1 − bound)); the p-value
    is the chance of an F this small or smaller. A p-value below α rules out an effect
    as large as ``bound`` (an equivalence bound); NaN when the fit has no residual
    degrees of freedom.
    """
    from scipy.stats import ncf

    denominator = runs - predictors - 1
    if predictors < 1 or denominator < 1 or not np.isfinite(rsquared):
        return float("nan")
    statistic = rsquared / predictors / (max(1 - rsquared, 1e-12) / denominator)
    return float(ncf.cdf(statistic, predictors, denominator, bound / (1 - bound) * runs))


@dataclass
class Context:
    """Where the results are and the config values the checks need.

    ``thresholds``: convergence threshold per setting; ``blog``: the config's
    ``blog`` section; ``sandbox``: the config's ``sandbox`` section; ``seeds``: the
    seeds this run trained per setting and sandbox experiment.
    """

    root: Path
    scale: str = "small"
    thresholds: Mapping[str, float] = field(default_factory=dict)
    blog: Mapping[str, Any] | None = None
    sandbox: Mapping[str, Any] | None = None
    seeds: Mapping[str, list[int]] = field(default_factory=dict)

    def path(self, relative: str) -> Path:
        path = self.root / relative
        if not path.exists():
            raise Missing(f"{path} not built in this config")
        return path

    def csv(self, relative: str) -> pd.DataFrame:
        return pd.read_csv(self.path(relative))

    def parquet(self, relative: str, columns: list[str] | None = None) -> pd.DataFrame:
        return pd.read_parquet(self.path(relative), columns=columns)


SCHEMA = Path(__file__).parents[2] / "workflow" / "schemas" / "claims.schema.yaml"


@dataclass
class ClaimsFile:
    """The claims file: its claims, the seeds used so far to choose configs and tests
    (setting or experiment -> [first, last]), and the sha256 of its bytes."""

    claims: list[dict[str, Any]]
    seeds_used: dict[str, list[int]]
    sha256: str


def read_claims(path: str | Path, schema: str | Path = SCHEMA) -> ClaimsFile:
    """The claims file ``path``, checked against ``schema``.

    Ids must be unique, every claim's check known, and a claim in a test ``family``
    must state its ``alpha``.
    """
    raw = Path(path).read_bytes()
    document = yaml.safe_load(raw)
    try:
        jsonschema.validate(document, yaml.safe_load(Path(schema).read_text()))
    except jsonschema.ValidationError as error:
        where = "/".join(str(p) for p in error.absolute_path)
        raise TrainmapError(f"{path}: {where}: {error.message}") from error
    claims = document["claims"]
    seen: set[str] = set()
    for claim in claims:
        if claim["id"] in seen:
            raise TrainmapError(f"{path}: claim id {claim['id']!r} appears twice")
        seen.add(claim["id"])
        if claim["check"] not in CHECKS:
            raise TrainmapError(
                f"{path}: claim {claim['id']!r} has unknown check {claim['check']!r} "
                f"(known: {sorted(CHECKS)})"
            )
    return ClaimsFile(claims, document.get("seeds_used", {}), hashlib.sha256(raw).hexdigest())


def load_claims(path: str | Path, schema: str | Path = SCHEMA) -> list[dict[str, Any]]:
    """The claims of the claims file ``path`` (:func:`read_claims`)."""
    return read_claims(path, schema).claims


# ---- checks: each returns (reproduced value, a note on how it was measured) ----------


def _table1_row(ctx: Context, setting: str) -> pd.Series:
    table = ctx.csv("hu2023/table1.csv")
    rows = table[table["name"] == setting]
    if rows.empty:
        raise Missing(f"setting {setting!r} is not in table 1")
    return rows.iloc[0]


def _regression_row(ctx: Context, setting: str) -> pd.Series:
    """Table 1's row of a setting whose regression is powered enough to be judged."""
    row = _table1_row(ctx, setting)
    if str(row.get("Regression", "")).startswith("underpowered"):
        raise Underpowered(
            f"regression {setting}: {row['Regression']}: needs more seeds (paper: 40)"
        )
    return row


#: Table 1 columns that come from the regression (not judged when it is underpowered).
REGRESSION_COLUMNS = ("R2", "Adjusted R2", "R2 (held-out runs)", "p-value", "Permutation p")


def _runs(row: pd.Series) -> int | None:
    runs = row.get("runs")
    return int(runs) if runs is not None and pd.notna(runs) else None


def _table1(claim: Mapping, ctx: Context) -> Result:
    """A table 1 column: ``column`` against the paper's number at paper scale, the
    ``expect`` predicate's own column (``expect.column``, default ``column``) otherwise.
    A "no effect" claim (``equivalence``) that its value bears out holds only where
    its R² rules out the effect it denies (:func:`equivalence_pvalue` below
    ``alpha``); otherwise it is not judged."""
    expect = claim.get("expect") or {}
    against_paper = compared_with_paper(claim, ctx.scale)
    column = claim["column"] if against_paper else expect.get("column", claim["column"])
    row = (_regression_row if column in REGRESSION_COLUMNS else _table1_row)(ctx, claim["setting"])
    if column not in row.index:
        raise Missing(f"table 1 has no {column!r} column (an older regression stage?)")
    runs = _runs(row)
    value = row[column]
    if isinstance(value, (float, np.floating)) and np.isnan(value):
        return Result(np.nan, f"table 1 has no {column} (no regression: see its log)", runs)
    note = f"table 1, {column}"
    if "equivalence" in claim and not against_paper and OPS[expect["op"]](value, expect["value"]):
        bound, predictors = claim["equivalence"]["rsquared"], int(row["states"]) - 1
        pvalue = equivalence_pvalue(float(row["R2"]), runs or 0, predictors, bound)
        note += (
            f"; R² {float(row['R2']):.3g} rules out R² ≥ {bound:g} (equivalence p = {pvalue:.3g})"
        )
        if not pvalue < claim["alpha"]:
            raise Underpowered(
                f"{column} {value:.3g}, but R² {float(row['R2']):.3g} with {runs} runs and "
                f"{predictors} predictors does not rule out R² ≥ {bound:g} (equivalence "
                f"p = {pvalue:.3g} ≥ α = {claim['alpha']:g}): no evidence of no effect; "
                "needs more seeds"
            )
    return Result(value.item() if hasattr(value, "item") else value, note, runs)


def _detours(claim: Mapping, ctx: Context) -> Result:
    row = _regression_row(ctx, claim["setting"])
    value = row["Detour states"]
    states = (value if isinstance(value, str) else "").replace(",", " ").split()
    return Result(
        len(states),
        f"detour states {', '.join(states) or 'none'} (F-test p = {row['p-value']:.3g})",
        _runs(row),
    )


def pairwise_dissimilarity(occupancy: np.ndarray) -> np.ndarray:
    """Runs × runs Wasserstein distances of table 1's dissimilarity (state indices as
    support): the summed absolute difference of the cumulative state distributions."""
    cdf = np.cumsum(np.asarray(occupancy, dtype=float), axis=1)
    return np.abs(cdf[:, None, :] - cdf[None, :, :]).sum(axis=-1)


def mean_pair_distance(distances: np.ndarray, runs: np.ndarray) -> float:
    """Mean distance over the pairs of a (re)sample of runs."""
    sub = distances[np.ix_(runs, runs)]
    return float(sub[np.triu_indices(len(runs), k=1)].mean())


def _compare(claim: Mapping, ctx: Context) -> Result:
    column = claim["column"]
    rows = [_table1_row(ctx, name) for name in (claim["setting"], claim["than"])]
    a, b = (float(row[column]) for row in rows)
    note = f"{column}: {claim['setting']} {a:.3g} − {claim['than']} {b:.3g}"
    runs = [_runs(row) for row in rows]
    sample = min(runs) if None not in runs else None
    if column != "Dissimilarity":
        return Result(a - b, note, sample)
    distances = [
        pairwise_dissimilarity(occupancy_fractions(ctx.parquet(f"hmm/{name}/states.parquet")))
        for name in (claim["setting"], claim["than"])
    ]
    interval = bootstrap_interval(
        lambda x, y: mean_pair_distance(distances[0], x) - mean_pair_distance(distances[1], y),
        *(np.arange(len(d)) for d in distances),
    )
    return Result(a - b, note + "; runs resampled", min(len(d) for d in distances), interval)


def _exits(ctx: Context, setting: str) -> pd.DataFrame:
    edges = ctx.csv(f"maps/{setting}/edges.csv")
    return edges[edges["from_start"].astype(bool)].reset_index(drop=True)


def _start_exits(claim: Mapping, ctx: Context) -> Result:
    exits = _exits(ctx, claim["setting"])
    runs = ", ".join(
        f"{s}→{t}: {r}/{n}"
        for s, t, r, n in exits[["source", "target", "runs", "runs_total"]].itertuples(index=False)
    )
    total = int(exits["runs_total"].iloc[0]) if len(exits) else None
    return Result(len(exits), runs or "no edge out of the start state", total)


def _exit_times_differ(claim: Mapping, ctx: Context) -> Result:
    """One-way ANOVA of the convergence times of the runs, grouped by their exit edge."""
    _times(ctx, claim["setting"])  # not judged on censored times
    exits = _exits(ctx, claim["setting"])
    times = ctx.csv(f"regression/{claim['setting']}/convergence.csv").set_index("run")["time"]
    groups = [
        times.reindex([int(r) for r in str(ids).split()]).dropna().to_numpy()
        for ids in exits["run_ids"]
    ]
    shown = ", ".join(
        f"{s}→{t}: {g.mean():.4g} (n = {len(g)})" if len(g) else f"{s}→{t}: no time"
        for s, t, g in zip(exits["source"], exits["target"], groups, strict=True)
    )
    pvalue = exit_times_pvalue(groups)
    if not np.isfinite(pvalue):
        raise Underpowered(f"no within-edge spread to test against: {shown or 'no exit edge'}")
    return Result(pvalue, f"one-way ANOVA over exit edges: {shown}", sum(map(len, groups)))


def _l2_changes(ctx: Context, setting: str) -> pd.DataFrame:
    """Exit edges with the change of the learned L2 mean, µ_target − µ_source (z-scores)."""
    exits = _exits(ctx, setting)
    model = HMMParams.load(ctx.path(f"hmm/{setting}/model.npz"))
    if "l2" not in model.metrics:
        raise Missing(f"the {setting!r} HMM has no l2 metric")
    means = model.means[:, model.metrics.index("l2")]
    return exits.assign(l2=means[exits["target"]] - means[exits["source"]])


def _exit_l2(claim: Mapping, ctx: Context) -> tuple[Any, str]:  # descriptive: no sample
    exits = _l2_changes(ctx, claim["setting"])

    def listed(edges: pd.DataFrame) -> str:
        return ", ".join(
            f"{s}→{t}: L2 {c:+.2f}"
            for s, t, c in zip(edges["source"], edges["target"], edges["l2"], strict=True)
        )

    mode = claim["mode"]
    if mode == "all_decrease":
        return bool(len(exits) and (exits["l2"] < 0).all()), listed(exits) or "no exit edge"
    _times(ctx, claim["setting"])  # not judged on censored times
    timed = exits.dropna(subset=["mean_convergence"]).sort_values("mean_convergence")
    shown = listed(timed)
    if mode == "just_right":
        if len(timed) < 3:
            return False, f"needs 3 timed exit edges, has {len(timed)}; {shown}"
        drops = timed["l2"].to_numpy()
        return bool(drops[1:].min() < drops[0] < drops[1:].max()), f"fastest first: {shown}"
    if mode == "slow_up_fast_down":
        if len(timed) < 2:
            return False, f"needs 2 timed exit edges, has {len(timed)}; {shown}"
        fast, slow = timed["l2"].iloc[0], timed["l2"].iloc[-1]
        return bool(slow > 0 > fast), f"fastest first: {shown}"
    raise TrainmapError(f"claim {claim['id']!r}: unknown exit_l2 mode {mode!r}")


def _times(ctx: Context, setting: str) -> np.ndarray:
    """A setting's convergence times; :class:`Underpowered` if any run is censored.

    A censored run's time is only a lower bound, so means, ratios and spreads of
    the times would be biased in an unknown direction.
    """
    times = ctx.csv(f"regression/{setting}/convergence.csv")
    censored = int((~times["converged"].astype(bool)).sum())
    if censored:
        raise Underpowered(
            f"convergence {setting}: {censored} of {len(times)} runs censored (never reach the "
            "threshold): their times are lower bounds"
        )
    return times["time"].to_numpy(dtype=float)


def ratio_of_means(fast: np.ndarray, slow: np.ndarray) -> float:
    """Mean of ``slow`` over mean of ``fast``."""
    return float(np.mean(slow) / np.mean(fast))


def coefficient_of_variation(times: np.ndarray) -> float:
    """Standard deviation (ddof 0) over mean."""
    return float(np.std(times) / np.mean(times))


def cv_difference(a: np.ndarray, b: np.ndarray) -> float:
    """Coefficient of variation of ``a`` minus that of ``b``."""
    return coefficient_of_variation(a) - coefficient_of_variation(b)


def _convergence_contrast(
    claim: Mapping,
    ctx: Context,
    statistic: Callable[[np.ndarray, np.ndarray], float],
    summary: Callable[[np.ndarray], float],
    label: str,
) -> Result:
    """``statistic(setting's times, than's times)`` with its bootstrap interval."""
    a, b = _times(ctx, claim["setting"]), _times(ctx, claim["than"])
    return Result(
        statistic(a, b),
        f"{label}: {claim['setting']} {summary(a):.4g}, {claim['than']} {summary(b):.4g}; "
        "runs resampled",
        min(len(a), len(b)),
        bootstrap_interval(statistic, a, b),
    )


def _convergence_ratio(claim: Mapping, ctx: Context) -> Result:
    return _convergence_contrast(claim, ctx, ratio_of_means, np.mean, "mean convergence")


def _convergence_spread(claim: Mapping, ctx: Context) -> Result:
    return _convergence_contrast(
        claim, ctx, cv_difference, coefficient_of_variation, "coefficient of variation"
    )


def _grokking(claim: Mapping, ctx: Context) -> tuple[Any, str]:
    setting = claim["setting"]
    if setting not in ctx.thresholds:
        raise Missing(f"setting {setting!r} has no convergence threshold in this config")
    memorised_acc = (ctx.blog or {}).get("memorised_acc", 0.99)
    table = ctx.parquet(
        f"runs/{setting}/metrics.parquet", ["run", "epoch", "train_acc", "eval_acc"]
    )
    ratios = []
    for _, rows in table.sort_values(["run", "epoch"]).groupby("run"):
        memorised = first_epoch(rows, "train_acc", memorised_acc)
        generalised = first_epoch(rows, "eval_acc", ctx.thresholds[setting])
        ratios.append(generalised / max(memorised, 1e-9) if np.isfinite(memorised) else np.nan)
    ratios = np.array(ratios)
    groks = np.nan_to_num(ratios, nan=0.0) >= claim["factor"]
    median = np.nanmedian(ratios) if np.isfinite(ratios).any() else np.nan
    return Result(
        float(groks.mean()),
        f"{groks.sum()}/{len(ratios)} runs generalise ≥ {claim['factor']}× after memorising "
        f"(median ratio {median:.2f}; train acc ≥ {memorised_acc:g}, eval acc ≥ "
        f"{ctx.thresholds[setting]:g}; never: ratio 0)",
        len(ratios),
    )


def _blog_setting(ctx: Context) -> tuple[str, float]:
    if not ctx.blog:
        raise Missing("no blog section in this config")
    setting = ctx.blog["setting"]
    if setting not in ctx.thresholds:
        raise Missing(f"setting {setting!r} has no convergence threshold in this config")
    return setting, ctx.thresholds[setting]


def _blog_turn_window(claim: Mapping, ctx: Context) -> Result:
    """The PCA turn inside the generalisation window, in more runs than chance gives
    (:func:`trainmap.analysis.phases.turn_tests`)."""
    setting, converged = _blog_setting(ctx)
    turns = turn_tests(
        ctx.parquet(f"runs/{setting}/metrics.parquet"),
        examples=ctx.blog["examples"],
        window=ctx.blog["turn_window"],
        min_step=ctx.blog["turn_min_step"],
        generalising_acc=ctx.blog["generalising_acc"],
        converged_acc=converged,
    )
    tested = turns[turns["chance"] > 0]
    pvalue = chance_pvalue(tested["hit"].to_numpy(), tested["chance"].to_numpy())
    blog_run = turns[turns["run"] == ctx.blog["run"]]
    shown = ""
    if len(blog_run):
        r = blog_run.iloc[0]
        shown = (
            f"run {r['run']}: turn at epoch {r['turn']:g}, window "
            f"{r['generalisation_starts']:g}-{r['generalised']:g}; "
        )
    return Result(
        pvalue,
        f"{shown}{int(tested['hit'].sum())}/{len(tested)} runs turn inside their window, "
        f"{tested['chance'].sum():.2f} expected for a random turn",
        len(tested),
    )


def _blog_phases(claim: Mapping, ctx: Context) -> Result:
    """The HMM's states change at memorisation and at generalisation (``mode:
    changes``), or the three phases have three different states (``mode:
    three_phases``), in more runs than chance gives
    (:func:`trainmap.analysis.phases.phase_tests`)."""
    setting, converged = _blog_setting(ctx)
    table = phase_tests(
        ctx.parquet(f"hmm/{setting}/states.parquet"),
        ctx.parquet(
            f"runs/{setting}/metrics.parquet", ["run", "step", "epoch", "train_acc", "eval_acc"]
        ),
        memorised_acc=ctx.blog["memorised_acc"],
        converged_acc=converged,
        tolerance=claim.get("window", 0),
    )
    key = "change" if claim["mode"] == "changes" else "three_phase"
    tested = table[table[f"{key}_chance"] > 0]
    pvalue = chance_pvalue(tested[f"{key}_hit"].to_numpy(), tested[f"{key}_chance"].to_numpy())
    what = (
        f"a state change within ± {claim.get('window', 0)} checkpoints of both events"
        if key == "change"
        else "three different states in the three phases"
    )
    return Result(
        pvalue,
        f"{int(tested[f'{key}_hit'].sum())}/{len(tested)} runs with {what}, "
        f"{tested[f'{key}_chance'].sum():.2f} expected by chance "
        f"(median {table['changes'].median() if len(table) else 0:g} changes per run)",
        len(tested),
    )


def _sandbox_logs(ctx: Context, experiment: str) -> pd.DataFrame:
    if not ctx.sandbox:
        raise Missing("no sandbox section in this config")
    # Job folders are <experiment>[.<grid key>-<value>][.s<first>-<last>] (sandbox.plan).
    folder = ctx.path("sandbox2025/runs")
    jobs = sorted(p for p in folder.iterdir() if p.name.split(".")[0] == experiment)
    paths = [p / "log.parquet" for p in jobs if (p / "log.parquet").exists()]
    if not paths:
        raise Missing(f"no sandbox logs of experiment {experiment!r}")
    return read_logs(paths)


def _share(hits: int, total: int, claim: Mapping, events: str) -> float:
    """``hits / total``, or :class:`Underpowered` when its 95 % Wilson interval contains
    the claim's threshold: then so few ``events`` cannot say on which side it lies."""
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(hits, total, alpha=0.05, method="wilson")
    threshold = claim["expect"]["value"]
    if low < threshold < high:
        raise Underpowered(
            f"{hits}/{total} {events}: 95% interval {low:.2f}-{high:.2f} contains "
            f"{threshold:g}; needs more runs"
        )
    return hits / total


def _run_curves(log: pd.DataFrame):
    return log.sort_values("epoch").groupby("run", sort=True)


def _sandbox_two_phase(claim: Mapping, ctx: Context) -> tuple[Any, str]:
    from trainmap.sandbox.analysis import final_rows, loss_drops

    log = _sandbox_logs(ctx, "base")
    threshold = ctx.sandbox["success_threshold"]
    success = final_rows(log).set_index("run")["test_acc"] > threshold
    drops = {
        key: len(loss_drops(r["train_loss"].to_numpy(), **ctx.sandbox["drops"]))
        for key, r in _run_curves(log)
    }
    good = [key for key, ok in success.items() if ok]
    if not good:
        return 0.0, f"no run of base reaches test accuracy > {threshold:g}"
    two = sum(drops[key] >= 2 for key in good)
    events = "successful base runs with ≥ 2 loss drops"
    return Result(_share(two, len(good), claim, events), f"{two}/{len(good)} {events}", len(good))


def _sandbox_transfer(claim: Mapping, ctx: Context) -> tuple[Any, str]:
    from trainmap.sandbox.analysis import final_rows

    aggregate = getattr(np, claim["aggregate"])
    transfer, scratch = (
        final_rows(_sandbox_logs(ctx, name))["test_acc"].to_numpy()
        for name in ("transfer", "scratch_p3")
    )
    return Result(
        float(aggregate(transfer) - aggregate(scratch)),
        f"{claim['aggregate']} final test accuracy: transfer {aggregate(transfer):.3f}, "
        f"scratch {aggregate(scratch):.3f}; runs resampled",
        min(len(transfer), len(scratch)),
        bootstrap_interval(lambda x, y: aggregate(x) - aggregate(y), transfer, scratch),
    )


def _sandbox_spikes(claim: Mapping, ctx: Context) -> tuple[Any, str]:
    from trainmap.sandbox.analysis import loss_spikes

    log = _sandbox_logs(ctx, "base")
    grads = [c for c in log.columns if c.startswith("grad_")]
    if not grads:
        raise Missing("the base logs have no gradient norms")
    hits = total = 0
    for _, run in _run_curves(log):
        norm = np.sqrt((run[grads].to_numpy() ** 2).sum(1))
        top = np.nanquantile(norm, 0.75)
        for event in loss_spikes(run["train_loss"].to_numpy(), **ctx.sandbox["spikes"]):
            total += 1
            hits += bool(np.nanmax(norm[event.start : event.end + 2]) >= top)
    if not total:
        return np.nan, "no loss spike in the base runs"
    events = "spikes reach the top quartile of their run's gradient norm"
    return Result(_share(hits, total, claim, events), f"{hits}/{total} {events}", total)


def _sandbox_ablation(claim: Mapping, ctx: Context) -> tuple[Any, str]:
    """Final test accuracy against one hyperparameter, tested within seeds
    (``sandbox.analysis.ablation_test``)."""
    from trainmap.sandbox.analysis import ablation_test, final_rows, with_shared_runs

    key = claim["hyperparameter"]
    log = _sandbox_logs(ctx, f"ablation_{key}")
    try:
        log = with_shared_runs(log, _sandbox_logs(ctx, "base"), key)
    except Missing:
        pass
    last = final_rows(log)
    accuracy = last.pivot_table(index="seed", columns=key, values="test_acc").dropna()
    if accuracy.shape[1] < 2 or len(accuracy) < 2:
        raise Missing(
            f"ablation_{key} has {accuracy.shape[1]} value(s) of {key} over "
            f"{len(accuracy)} seed(s) run at every value: nothing to compare"
        )
    means = ", ".join(f"{value:g}: {acc.mean():.2f}" for value, acc in accuracy.items())
    where = f"{accuracy.shape[1]} values x {len(accuracy)} seeds; mean final test accuracy {means}"
    test = ablation_test(accuracy)
    if test.name == "none":
        return Result(1.0, f"no seed's accuracy changes with {key} ({where})", len(accuracy))
    return Result(
        test.pvalue,
        f"{test.name} test paired by seed, statistic {test.statistic:.1f}; "
        f"Kruskal-Wallis (unpaired) p = {test.unpaired_pvalue:.2g}; over {where}",
        len(accuracy),
    )


def _sandbox_sparsity(claim: Mapping, ctx: Context) -> tuple[Any, str]:
    if not ctx.sandbox:
        raise Missing("no sandbox section in this config")
    table = ctx.csv("sandbox2025/figure17_sparsity.csv")
    groups = {ok: rows["mean_sparsity"].to_numpy() for ok, rows in table.groupby("success")}
    if len(groups) < 2:
        only = "successful" if next(iter(groups)) else "failed"
        return Result(np.nan, f"only {only} models: no contrast")
    good, bad = groups[True], groups[False]
    return Result(
        float(good.mean() - bad.mean()),
        f"mean sparsity over ε: successful {good.mean():.3f}, failed {bad.mean():.3f}; "
        "models resampled",
        min(len(good), len(bad)),
        bootstrap_interval(lambda x, y: float(np.mean(x) - np.mean(y)), good, bad),
    )


def _prediction(claim: Mapping, ctx: Context) -> Result:
    """Whether the map's predicted convergence beats every baseline at a prefix: the
    largest of the one-sided sign-flip p-values against the baselines (an
    intersection-union test: it holds at level α only if each comparison does)."""
    summary = ctx.csv(f"predict/{claim['setting']}/evaluation.csv")
    rows = summary[(summary["fraction"] == claim["fraction"]) & (summary["method"] != "map")]
    if rows.empty:
        raise Underpowered(f"prediction {claim['setting']}: too few converged runs to evaluate")
    gains = ", ".join(f"{r.method} {r.map_gain:+.2f}" for r in rows.itertuples())
    note = f"map's gain in mean |log error| over {gains} at {claim['fraction']:.0%}"
    return Result(float(rows["p_map_better"].max()), note, int(rows["runs"].min()))


CHECKS: dict[str, Callable[[Mapping, Context], tuple[Any, str]]] = {
    "table1": _table1,
    "detours": _detours,
    "compare": _compare,
    "start_exits": _start_exits,
    "exit_times_differ": _exit_times_differ,
    "exit_l2": _exit_l2,
    "convergence_ratio": _convergence_ratio,
    "convergence_spread": _convergence_spread,
    "grokking": _grokking,
    "blog_turn_window": _blog_turn_window,
    "blog_phases": _blog_phases,
    "sandbox_two_phase": _sandbox_two_phase,
    "sandbox_transfer": _sandbox_transfer,
    "sandbox_spikes": _sandbox_spikes,
    "sandbox_ablation": _sandbox_ablation,
    "sandbox_sparsity": _sandbox_sparsity,
    "prediction": _prediction,
}


# ---- judging ---------------------------------------------------------------------


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def compared_with_paper(claim: Mapping, scale: str) -> bool:
    """Whether ``claim`` is judged by its ``tolerance`` around the paper's number at ``scale``."""
    return "tolerance" in claim and scale in claim.get("compared_at", ["paper"])


def judge(
    claim: Mapping, value: Any, scale: str, interval: tuple[float, float] | None = None
) -> tuple[str, str]:
    """Status and the rule that gave it, for a reproduced ``value``.

    At paper scale (or a scale in its ``compared_at``) a claim with a ``tolerance``
    compares ``value`` with the paper's number. A claim with a ``family`` is a test:
    ``value`` is its p-value (already Holm-adjusted within the family) and the claim
    holds when it is below ``alpha``.
    Otherwise the ``expect`` predicate decides; with a bootstrap ``interval`` an
    ordering predicate must hold at both ends of it (fails at neither end: ✗; at one
    end: not judged, the interval contains the threshold).
    """
    tolerance = claim.get("tolerance")
    paper, got = _number(claim.get("paper_value")), _number(value)
    if compared_with_paper(claim, scale) and paper is not None:
        if got is None or not np.isfinite(got):
            return FAILS, f"no number to compare with {paper:g} ± {tolerance:g}"
        ok = abs(got - paper) <= tolerance
        return (HOLDS if ok else FAILS), f"within ± {tolerance:g} of the paper" if ok else (
            f"off the paper by {got - paper:+.3g} (tolerance ± {tolerance:g})"
        )
    if "family" in claim:
        alpha = claim["alpha"]
        if got is None or not np.isfinite(got):
            return FAILS, "no p-value"
        ok = got < alpha
        return (HOLDS if ok else FAILS), (
            f"Holm-adjusted p = {got:.3g} {'<' if ok else '≥'} α = {alpha:g} "
            f"(family {claim['family']})"
        )
    expect = claim.get("expect")
    if expect is None and "stand_in" in claim:
        return NOT_JUDGED, f"stand-in data: {claim['stand_in']}"
    if expect is None:
        return NOT_JUDGED, "needs paper scale (no qualitative check at this scale)"
    if got is not None and not np.isfinite(got):
        return FAILS, "nothing to measure"
    op, threshold = OPS[expect["op"]], expect["value"]
    rule = f"expects {expect['op']} {threshold}"
    if interval is not None and expect["op"] in ("<", "<=", ">", ">="):
        low, high = interval
        ends = op(low, threshold), op(high, threshold)
        where = f"{BOOTSTRAP_LEVEL:.0%} bootstrap interval {low:.3g} to {high:.3g}"
        if all(ends):
            return HOLDS, f"{rule}: all of the {where}"
        if not any(ends):
            return FAILS, f"{rule}: none of the {where}"
        return NOT_JUDGED, f"{rule}: the {where} contains {threshold}; needs more runs"
    ok = op(value, threshold)
    return (HOLDS if ok else FAILS), rule


def _show(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    number = _number(value)
    if number is not None and not isinstance(value, str):
        return f"{number:.3g}" if np.isfinite(number) else "n/a"
    return str(value)


#: The sandbox experiments each sandbox check reads (their seeds decide its design).
SANDBOX_EXPERIMENTS: dict[str, tuple[str, ...]] = {
    "sandbox_two_phase": ("base",),
    "sandbox_spikes": ("base",),
    "sandbox_sparsity": ("base",),
    "sandbox_transfer": ("transfer", "scratch_p3"),
}


def claim_sources(claim: Mapping, ctx: Context) -> list[str]:
    """The settings and sandbox experiments whose runs a claim reads."""
    check = claim["check"]
    if check.startswith("blog_"):
        return [ctx.blog["setting"]] if ctx.blog else []
    if check == "sandbox_ablation":
        return [f"ablation_{claim['hyperparameter']}", "base"]
    if check in SANDBOX_EXPERIMENTS:
        return list(SANDBOX_EXPERIMENTS[check])
    return [claim[key] for key in ("setting", "than") if key in claim]


def design(claim: Mapping, ctx: Context, seeds_used: Mapping[str, list[int]]) -> str:
    """``exploratory`` when the claim's runs include a seed that guided a choice of
    config or test (``seeds_used``: setting or experiment -> [first, last]),
    ``confirmatory`` when none does, ``unknown`` when this run's seeds are not known."""
    sources = claim_sources(claim, ctx)
    if not sources or any(name not in ctx.seeds for name in sources):
        return "unknown"
    for name in sources:
        first, last = seeds_used.get(name, (0, -1))
        if any(first <= seed <= last for seed in ctx.seeds[name]):
            return "exploratory"
    return "confirmatory"


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (the family-wise error rate stays ≤ α)."""
    from statsmodels.stats.multitest import multipletests

    return multipletests(pvalues, method="holm")[1].tolist() if pvalues else []


def evaluate(
    claims: list[Mapping[str, Any]],
    ctx: Context,
    seeds_used: Mapping[str, list[int]] | None = None,
) -> pd.DataFrame:
    """One row per claim: paper value, reproduced value, scale, status, a reason and
    the design (exploratory or confirmatory, :func:`design`).

    A claim whose result rests on fewer runs than its ``min_sample`` is not judged; a
    test's p-value is Holm-adjusted within its ``family`` (over the claims of the
    family that were tested).
    """
    results, failed = _run_checks(claims, ctx)
    adjusted = _holm_by_family(claims, results)
    rows = []
    for claim in claims:
        key = claim["id"]
        if key in results:
            result = results[key]
            value = adjusted.get(key, result.value)
            status, rule = judge(claim, value, ctx.scale, result.interval)
            raw = f"raw p = {_number(result.value):.3g}; " if key in adjusted else ""
            reproduced, reason = _show(result.value), f"{result.note}; {raw}{rule}"
        else:
            reproduced, status, reason = "", NOT_JUDGED, failed[key]
        rows.append(
            {
                "id": key,
                "paper": claim["paper"],
                "source": claim["source"],
                "claim": claim["claim"],
                "paper_value": _show(claim.get("paper_value", "")),
                "reproduced": reproduced,
                "scale": ctx.scale,
                "status": status,
                "reason": reason,
                "design": design(claim, ctx, seeds_used or {}),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def _run_checks(
    claims: list[Mapping[str, Any]], ctx: Context
) -> tuple[dict[str, Result], dict[str, str]]:
    """Every claim's result, or why it has none (missing, underpowered, too few runs)."""
    results: dict[str, Result] = {}
    failed: dict[str, str] = {}
    for claim in claims:
        try:
            result = Result(*CHECKS[claim["check"]](claim, ctx))
        except Missing as missing:
            failed[claim["id"]] = f"not in this run: {missing}"
            continue
        except Underpowered as underpowered:
            failed[claim["id"]] = str(underpowered)
            continue
        needs = claim.get("min_sample", 0)
        if result.sample is not None and result.sample < needs:
            failed[claim["id"]] = f"{result.note}; rests on {result.sample}, needs ≥ {needs}"
            continue
        results[claim["id"]] = result
    return results, failed


def _holm_by_family(
    claims: list[Mapping[str, Any]], results: Mapping[str, Result]
) -> dict[str, float]:
    """Holm-adjusted p-values of the tested claims of each family, by claim id."""
    adjusted: dict[str, float] = {}
    families: dict[str, list[str]] = {}
    for claim in claims:
        if "family" in claim and claim["id"] in results:
            families.setdefault(claim["family"], []).append(claim["id"])
    for ids in families.values():
        raw = [_number(results[i].value) for i in ids]
        finite = [i for i, p in zip(ids, raw, strict=True) if p is not None and np.isfinite(p)]
        adjusted.update(zip(finite, holm([float(results[i].value) for i in finite]), strict=True))
    return adjusted


#: Report sections that are not a paper.
SECTIONS = {"beyond": "beyond the papers"}


def markdown(table: pd.DataFrame, title: str, claims_sha256: str | None = None) -> str:
    """The fidelity report: counts, the claims file's hash, then one table per paper."""
    counts = table["status"].value_counts()
    designs = table["design"].value_counts()
    lines = [
        f"# {title}",
        "",
        f"Scale: **{table['scale'].iloc[0] if len(table) else '?'}**. "
        f"{counts.get(HOLDS, 0)} claims hold (✓), {counts.get(FAILS, 0)} do not (✗), "
        f"{counts.get(NOT_JUDGED, 0)} not judged (–: needs paper scale, more seeds, or not run).",
        "",
        f"{designs.get('confirmatory', 0)} claims are confirmatory (judged on seeds that "
        f"never guided a choice), {designs.get('exploratory', 0)} exploratory, "
        f"{designs.get('unknown', 0)} of unknown design.",
        "",
    ]
    if claims_sha256:
        lines += [f"Claims file sha256: `{claims_sha256}`", ""]
    for paper, rows in table.groupby("paper", sort=False):
        lines += [
            f"## {SECTIONS.get(paper, paper)}",
            "",
            "| | claim | source | paper | reproduced | design | why |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in rows.itertuples(index=False):
            cells = [r.status, r.claim, r.source, r.paper_value, r.reproduced, r.design, r.reason]
            lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def table_hashes(paths: Iterable[str | Path]) -> str:
    """A Markdown section: the sha256 of every results table the claims read.

    The same config and seeds give byte-identical tables on any x86-64 machine
    (``numerics: pinned``), so a run elsewhere compares its report with this one file
    by file, and the first file that differs shows where the runs parted.
    """
    lines = [
        "## Tables",
        "",
        "sha256 of each results table the claims read (`sha256sum` of the file).",
        "",
        "| table | sha256 |",
        "|---|---|",
    ]
    for path in sorted(set(map(str, paths))):
        lines.append(f"| {path} | `{hashlib.sha256(Path(path).read_bytes()).hexdigest()}` |")
    return "\n".join(lines)
