"""Paper against reproduction: each reported number or claim checked on the current run.

The claims (``config/claims.yaml``) name a *check*: a function here that reads the
results tables of the run (never a model, never torch) and returns the reproduced
value. How it is judged:

* at ``scale: paper``, a claim with a ``tolerance`` passes when the reproduced number
  is within it of the paper's number (state counts ±1, R² ±0.1, ...);
* otherwise the claim's ``expect`` predicate decides (``{op: ">=", value: 0.5}``);
* a claim with neither at this scale needs paper scale: its value is shown, not judged.

Status is ``✓`` (holds), ``✗`` (does not) or ``–`` (not judged: needs paper scale, the
regression is underpowered and needs more seeds, or this config does not build what it
needs). Every row says why in one line.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pandas as pd
import yaml

from trainmap.analysis.hmm import HMMParams
from trainmap.analysis.phases import first_epoch
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
    """The run has too few runs (or events) to judge the claim; the message says why."""


@dataclass
class Context:
    """Where the results are and the config values the checks need.

    ``thresholds``: convergence threshold per setting; ``blog``: the config's
    ``blog`` section; ``sandbox``: the config's ``sandbox`` section.
    """

    root: Path
    scale: str = "small"
    thresholds: Mapping[str, float] = field(default_factory=dict)
    blog: Mapping[str, Any] | None = None
    sandbox: Mapping[str, Any] | None = None

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


def load_claims(path: str | Path, schema: str | Path = SCHEMA) -> list[dict[str, Any]]:
    """The claims of ``path`` (its ``claims:`` list), checked against ``schema``.

    Ids must be unique and every claim's check known.
    """
    document = yaml.safe_load(Path(path).read_text())
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
    return claims


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


def _table1(claim: Mapping, ctx: Context) -> tuple[Any, str]:
    regression = claim["column"] in ("R2", "Adjusted R2", "p-value")
    row = (_regression_row if regression else _table1_row)(ctx, claim["setting"])
    value = row[claim["column"]]
    if isinstance(value, (float, np.floating)) and np.isnan(value):
        return np.nan, f"table 1 has no {claim['column']} (no regression: see its log)"
    return (value.item() if hasattr(value, "item") else value), f"table 1, {claim['column']}"


def _detours(claim: Mapping, ctx: Context) -> tuple[Any, str]:
    row = _regression_row(ctx, claim["setting"])
    value = row["Detour states"]
    states = (value if isinstance(value, str) else "").replace(",", " ").split()
    return len(
        states
    ), f"detour states {', '.join(states) or 'none'} (F-test p = {row['p-value']:.3g})"


def _compare(claim: Mapping, ctx: Context) -> tuple[Any, str]:
    column = claim["column"]
    a = float(_table1_row(ctx, claim["setting"])[column])
    b = float(_table1_row(ctx, claim["than"])[column])
    return a - b, f"{column}: {claim['setting']} {a:.3g} − {claim['than']} {b:.3g}"


def _exits(ctx: Context, setting: str) -> pd.DataFrame:
    edges = ctx.csv(f"maps/{setting}/edges.csv")
    return edges[edges["from_start"].astype(bool)].reset_index(drop=True)


def _start_exits(claim: Mapping, ctx: Context) -> tuple[Any, str]:
    exits = _exits(ctx, claim["setting"])
    runs = ", ".join(
        f"{s}→{t}: {r}/{n}"
        for s, t, r, n in exits[["source", "target", "runs", "runs_total"]].itertuples(index=False)
    )
    return len(exits), runs or "no edge out of the start state"


def _exit_times_differ(claim: Mapping, ctx: Context) -> tuple[Any, str]:
    exits = _exits(ctx, claim["setting"]).dropna(subset=["mean_convergence"])
    if len(exits) < 2:
        return False, f"{len(exits)} exit edge(s) with convergence times: nothing to compare"
    sem = exits["sem_convergence"].fillna(0.0)
    fast, slow = exits["mean_convergence"].idxmin(), exits["mean_convergence"].idxmax()
    apart = exits.loc[fast, "mean_convergence"] + 2 * sem[fast] < (
        exits.loc[slow, "mean_convergence"] - 2 * sem[slow]
    )
    times = ", ".join(
        f"{s}→{t}: {m:.4g} ± {e:.3g}"
        for s, t, m, e in zip(
            exits["source"], exits["target"], exits["mean_convergence"], sem, strict=True
        )
    )
    return bool(apart), f"fastest and slowest exits apart by more than 2 SEM each: {times}"


def _l2_changes(ctx: Context, setting: str) -> pd.DataFrame:
    """Exit edges with the change of the learned L2 mean, µ_target − µ_source (z-scores)."""
    exits = _exits(ctx, setting)
    model = HMMParams.load(ctx.path(f"hmm/{setting}/model.npz"))
    if "l2" not in model.metrics:
        raise Missing(f"the {setting!r} HMM has no l2 metric")
    means = model.means[:, model.metrics.index("l2")]
    return exits.assign(l2=means[exits["target"]] - means[exits["source"]])


def _exit_l2(claim: Mapping, ctx: Context) -> tuple[Any, str]:
    exits = _l2_changes(ctx, claim["setting"])

    def listed(edges: pd.DataFrame) -> str:
        return ", ".join(
            f"{s}→{t}: L2 {c:+.2f}"
            for s, t, c in zip(edges["source"], edges["target"], edges["l2"], strict=True)
        )

    mode = claim["mode"]
    if mode == "all_decrease":
        return bool(len(exits) and (exits["l2"] < 0).all()), listed(exits) or "no exit edge"
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


def _times(ctx: Context, setting: str) -> pd.Series:
    return ctx.csv(f"regression/{setting}/convergence.csv")["time"]


def _convergence_ratio(claim: Mapping, ctx: Context) -> tuple[Any, str]:
    fast, slow = _times(ctx, claim["setting"]).mean(), _times(ctx, claim["than"]).mean()
    return (
        slow / fast,
        f"mean convergence {claim['than']} {slow:.4g} / {claim['setting']} {fast:.4g}",
    )


def _convergence_spread(claim: Mapping, ctx: Context) -> tuple[Any, str]:
    def cv(t: pd.Series) -> float:
        return float(t.std(ddof=0) / t.mean())

    a, b = cv(_times(ctx, claim["setting"])), cv(_times(ctx, claim["than"]))
    return a < b, f"coefficient of variation {claim['setting']} {a:.3g} vs {claim['than']} {b:.3g}"


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
    return float(groks.mean()), (
        f"{groks.sum()}/{len(ratios)} runs generalise ≥ {claim['factor']}× after memorising "
        f"(median ratio {median:.2f}; train acc ≥ {memorised_acc:g}, eval acc ≥ "
        f"{ctx.thresholds[setting]:g}; never: ratio 0)"
    )


def _blog_turn_drop(claim: Mapping, ctx: Context) -> tuple[Any, str]:
    if not ctx.blog:
        raise Missing("no blog section in this config")
    events = ctx.csv("blog2025/pca_turn.csv").set_index("event")["epoch"]
    turn, drop = events.iloc[0], events.iloc[1]
    length = float(ctx.parquet("blog2025/pca_trajectory.parquet", ["epoch"])["epoch"].max())
    tolerance = ctx.blog["coincide_tolerance"] * length
    if not np.isfinite(drop):
        return False, f"turn at epoch {turn:g}, the validation loss never falls"
    return bool(abs(turn - drop) <= tolerance), (
        f"turn at epoch {turn:g}, fastest drop at {drop:g} (tolerance {tolerance:g} epochs)"
    )


def _blog_phases(claim: Mapping, ctx: Context) -> tuple[Any, str]:
    if not ctx.blog:
        raise Missing("no blog section in this config")
    setting, run = ctx.blog["setting"], ctx.blog["run"]
    states = ctx.parquet(f"hmm/{setting}/states.parquet")
    states = states[states["run"] == run].sort_values("step")
    rows = ctx.parquet(
        f"runs/{setting}/metrics.parquet", ["run", "step", "epoch", "train_acc", "eval_acc"]
    )
    rows = rows[rows["run"] == run].sort_values("step")
    epochs = rows.set_index("step")["epoch"].reindex(states["step"]).to_numpy()
    changes = epochs[1:][np.diff(states["state"].to_numpy()) != 0]
    memorised = first_epoch(rows, "train_acc", ctx.blog["memorised_acc"])
    generalised = first_epoch(rows, "eval_acc", ctx.thresholds.get(setting, 0.9))
    tolerance = ctx.blog["coincide_tolerance"] * float(rows["epoch"].max())

    def near(epoch: float) -> bool:
        return bool(
            np.isfinite(epoch) and len(changes) and np.abs(changes - epoch).min() <= tolerance
        )

    n_states = states["state"].nunique()
    return near(memorised) and near(generalised), (
        f"run {run}: {n_states} states, changes at epochs {', '.join(f'{e:g}' for e in changes)}; "
        f"memorised {memorised:g}, generalised {generalised:g} (tolerance {tolerance:g})"
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
    return _share(two, len(good), claim, events), f"{two}/{len(good)} {events}"


def _sandbox_transfer(claim: Mapping, ctx: Context) -> tuple[Any, str]:
    from trainmap.sandbox.analysis import final_rows

    stat = claim["statistic"]
    transfer = final_rows(_sandbox_logs(ctx, "transfer"))["test_acc"].agg(stat)
    scratch = final_rows(_sandbox_logs(ctx, "scratch_p3"))["test_acc"].agg(stat)
    return float(transfer - scratch), (
        f"{stat} final test accuracy: transfer {transfer:.3f}, scratch {scratch:.3f}"
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
    return _share(hits, total, claim, events), f"{hits}/{total} {events}"


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
        return 1.0, f"no seed's accuracy changes with {key} ({where})"
    return test.pvalue, (
        f"{test.name} test paired by seed, statistic {test.statistic:.1f}; "
        f"Kruskal-Wallis (unpaired) p = {test.unpaired_pvalue:.2g}; over {where}"
    )


def _sandbox_sparsity(claim: Mapping, ctx: Context) -> tuple[Any, str]:
    if not ctx.sandbox:
        raise Missing("no sandbox section in this config")
    table = ctx.csv("sandbox2025/figure17_sparsity.csv")
    groups = table.groupby("success")["mean_sparsity"].mean()
    if len(groups) < 2:
        return np.nan, f"only {'successful' if groups.index[0] else 'failed'} models: no contrast"
    return float(groups[True] - groups[False]), (
        f"mean sparsity over ε: successful {groups[True]:.3f}, failed {groups[False]:.3f}"
    )


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
    "blog_turn_drop": _blog_turn_drop,
    "blog_phases": _blog_phases,
    "sandbox_two_phase": _sandbox_two_phase,
    "sandbox_transfer": _sandbox_transfer,
    "sandbox_spikes": _sandbox_spikes,
    "sandbox_ablation": _sandbox_ablation,
    "sandbox_sparsity": _sandbox_sparsity,
}


# ---- judging ---------------------------------------------------------------------


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def judge(claim: Mapping, value: Any, scale: str) -> tuple[str, str]:
    """Status and the rule that gave it, for a reproduced ``value``."""
    tolerance = claim.get("tolerance")
    paper, got = _number(claim.get("paper_value")), _number(value)
    if scale == "paper" and tolerance is not None and paper is not None:
        if got is None or not np.isfinite(got):
            return FAILS, f"no number to compare with {paper:g} ± {tolerance:g}"
        ok = abs(got - paper) <= tolerance
        return (HOLDS if ok else FAILS), f"within ± {tolerance:g} of the paper" if ok else (
            f"off the paper by {got - paper:+.3g} (tolerance ± {tolerance:g})"
        )
    expect = claim.get("expect")
    if expect is None:
        return NOT_JUDGED, "needs paper scale (no qualitative check at this scale)"
    if got is not None and not np.isfinite(got):
        return FAILS, "nothing to measure"
    ok = OPS[expect["op"]](value, expect["value"])
    return (HOLDS if ok else FAILS), f"expects {expect['op']} {expect['value']}"


def _show(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    number = _number(value)
    if number is not None and not isinstance(value, str):
        return f"{number:.3g}" if np.isfinite(number) else "n/a"
    return str(value)


def evaluate(claims: list[Mapping[str, Any]], ctx: Context) -> pd.DataFrame:
    """One row per claim: paper value, reproduced value, scale, status and a reason."""
    rows = []
    for claim in claims:
        try:
            value, note = CHECKS[claim["check"]](claim, ctx)
            status, rule = judge(claim, value, ctx.scale)
            reproduced, reason = _show(value), f"{note}; {rule}"
        except Missing as missing:
            reproduced, status, reason = "", NOT_JUDGED, f"not in this run: {missing}"
        except Underpowered as underpowered:
            reproduced, status, reason = "", NOT_JUDGED, str(underpowered)
        rows.append(
            {
                "id": claim["id"],
                "paper": claim["paper"],
                "source": claim["source"],
                "claim": claim["claim"],
                "paper_value": _show(claim.get("paper_value", "")),
                "reproduced": reproduced,
                "scale": ctx.scale,
                "status": status,
                "reason": reason,
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def markdown(table: pd.DataFrame, title: str) -> str:
    """The fidelity report: counts, then one table per paper."""
    counts = table["status"].value_counts()
    lines = [
        f"# {title}",
        "",
        f"Scale: **{table['scale'].iloc[0] if len(table) else '?'}**. "
        f"{counts.get(HOLDS, 0)} claims hold (✓), {counts.get(FAILS, 0)} do not (✗), "
        f"{counts.get(NOT_JUDGED, 0)} not judged (–: needs paper scale, more seeds, or not run).",
        "",
    ]
    for paper, rows in table.groupby("paper", sort=False):
        lines += [
            f"## {paper}",
            "",
            "| | claim | source | paper | reproduced | why |",
            "|---|---|---|---|---|---|",
        ]
        for r in rows.itertuples(index=False):
            cells = [r.status, r.claim, r.source, r.paper_value, r.reproduced, r.reason]
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
