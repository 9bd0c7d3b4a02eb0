"""Convergence time against the path through the map: OLS, detour states, dissimilarity.

Hu et al. (2023), sections 2.3 and 3.4: regress each run's convergence time on its
empirical state distribution (the fraction of checkpoints in each state); a
detour state has a positive coefficient and is skipped by at least one run.
Here the coefficients and R² also get bootstrap intervals (runs resampled with
replacement), R² a held-out counterpart and a permutation p-value; a detour needs
enough runs visiting and skipping it, its coefficient's interval on the slow side
of zero and the runs visiting it to converge later than those skipping it (every
transient state of a fork has a positive coefficient: a run spending all its
time there would converge late, so the sign alone calls fork branches detours);
a regression with too few runs per state is flagged as underpowered.
Trajectory dissimilarity (eq. 1) is the mean pairwise Wasserstein distance
between the runs' state distributions.
"""

from __future__ import annotations

import itertools
import logging
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy.optimize import linprog
from scipy.spatial.distance import cdist
from scipy.stats import ttest_ind, wasserstein_distance

from trainmap.analysis.hmm import HMMParams
from trainmap.analysis.training_map import is_forking, node_table, occupancy_fractions, transitions
from trainmap.errors import TrainmapError
from trainmap.tables import EPOCH, EVAL_ACC, RUN, STEP

log = logging.getLogger(__name__)

UNCONVERGED = ("censor", "drop")


def convergence_times(
    table: pd.DataFrame, threshold: float, unconverged: str = "censor"
) -> pd.DataFrame:
    """The first checkpoint of each run whose evaluation accuracy exceeds ``threshold``.

    Time is in epochs when the table has finite epochs, else in steps (column
    ``unit``). A run that never exceeds the threshold is censored at its last
    checkpoint (``converged`` False) or, with ``unconverged="drop"``, left out;
    either way a warning names it.
    """
    if unconverged not in UNCONVERGED:
        raise TrainmapError(
            f"analysis.unconverged must be one of {list(UNCONVERGED)}, not {unconverged!r}"
        )
    if EVAL_ACC not in table.columns:
        raise TrainmapError(f"the table has no {EVAL_ACC!r} column to measure convergence")
    unit = EPOCH if EPOCH in table.columns and np.isfinite(table[EPOCH]).all() else STEP
    table = table.sort_values([RUN, STEP], kind="stable")
    rows = []
    for run, group in table.groupby(RUN, sort=True):
        above = (group[EVAL_ACC] > threshold).to_numpy()
        converged = bool(above.any())
        at = group.iloc[int(np.argmax(above)) if converged else -1]
        rows.append(
            {
                RUN: run,
                "converged": converged,
                STEP: at[STEP],
                "time": float(at[unit]),
                "unit": unit,
            }
        )
    times = pd.DataFrame(rows)
    late = times.loc[~times["converged"], RUN].tolist()
    if late:
        action = "censored at their last checkpoint" if unconverged == "censor" else "left out"
        log.warning(
            "%d run(s) never exceed evaluation accuracy %g, %s: %s",
            len(late),
            threshold,
            action,
            late,
        )
        if unconverged == "drop":
            times = times[times["converged"]].reset_index(drop=True)
    return times


DETOUR_RULES = ("interval", "positive")


@dataclass(frozen=True)
class RegressionOptions:
    """How the convergence regression is judged (``analysis`` section of the config)."""

    #: R² intervals are at level 1 - alpha; the coefficients' and slowdowns' intervals
    #: at 1 - alpha / m, m the number of states some runs skip (the possible detours),
    #: so that they hold together (Bonferroni) and the chance of calling any false
    #: detour stays below alpha.
    alpha: float = 0.05
    #: Resamples of the runs for the bootstrap intervals, at least: more are drawn when
    #: the corrected tails need them (:func:`bootstrap_resamples`); 0: OLS t-intervals
    #: of the coefficients, no R² interval.
    bootstrap: int = 500
    seed: int = 0
    #: ``interval``: a detour's coefficient interval lies above zero, and so does the
    #: interval of its slowdown (runs visiting it minus runs skipping it), and at least
    #: ``min_detour_runs`` runs visit it and as many skip it; ``positive``: its
    #: coefficient is positive and at least one run skips it (the paper).
    detour_rule: str = "interval"
    #: Runs that must visit a state, and runs that must skip it, before the interval
    #: rule judges it: with fewer, the resamples of its visitors repeat the same few
    #: times and its interval understates their spread.
    min_detour_runs: int = 3
    #: Fewer regressed runs per visited state than this: the regression is underpowered.
    min_runs_per_state: float = 3.0
    #: Shuffles of the convergence times for the permutation p-value of R²; 0: none.
    permutations: int = 999


#: Draws beyond each bound of a corrected bootstrap interval, at least.
TAIL_DRAWS = 20


def bootstrap_resamples(minimum: int, alpha: float, family: int) -> int:
    """Resamples enough for :data:`TAIL_DRAWS` beyond each bound at level 1 - alpha / family."""
    return max(minimum, int(np.ceil(TAIL_DRAWS * 2 * family / alpha)))


def _r_squared(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares coefficients and centred R² of y on X (whose rows sum to one)."""
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    residual = y - X @ beta
    return beta, 1 - residual @ residual / ((y - y.mean()) ** 2).sum()


def slowdown(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per state: mean target of the runs visiting it minus that of the runs skipping it.

    NaN for a state that every run, or no run, visits.
    """
    visits = X > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        visiting = (visits * y[:, None]).sum(axis=0) / visits.sum(axis=0)
        skipping = (~visits * y[:, None]).sum(axis=0) / (~visits).sum(axis=0)
    return visiting - skipping


def bootstrap(
    X: np.ndarray, y: np.ndarray, resamples: int, alpha: float, seed: int, family: int = 1
) -> dict[str, np.ndarray]:
    """Percentile intervals, resampling runs with replacement: ``{name: (low, high)}``.

    ``coefficient`` per column of X at level 1 - alpha / family (Bonferroni over
    ``family`` comparisons), and ``rsquared`` at level 1 - alpha. A resample in
    which a state is unvisited gives that state no coefficient; a resample with no
    more distinct runs than states, or with one convergence time, is skipped. An
    interval needs at least half of the resamples, else it is NaN.
    """
    rng = np.random.default_rng(seed)
    n, p = X.shape
    draws = {
        "coefficient": np.full((resamples, p), np.nan),
        "rsquared": np.full((resamples, 1), np.nan),
    }
    for b in range(resamples):
        rows = rng.integers(0, n, n)
        Xb, yb = X[rows], y[rows]
        used = Xb.any(axis=0)
        if len(np.unique(rows)) <= used.sum() or np.ptp(yb) == 0:
            continue
        if np.linalg.matrix_rank(Xb[:, used]) < used.sum():
            continue
        draws["coefficient"][b, used], draws["rsquared"][b] = _r_squared(Xb[:, used], yb)

    def interval(values: np.ndarray, level_alpha: float) -> np.ndarray:
        enough = np.isfinite(values).sum(axis=0) >= resamples / 2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
            bounds = np.nanquantile(values, [level_alpha / 2, 1 - level_alpha / 2], axis=0)
        return np.where(enough, bounds, np.nan)

    return {
        name: interval(values, alpha if name == "rsquared" else alpha / family)
        for name, values in draws.items()
    }


def held_out_rsquared(X: np.ndarray, y: np.ndarray) -> float:
    """R² of leave-one-run-out predictions: each run predicted by the OLS fit of the others.

    ``1 - Σ (y_i - ŷ_(-i))² / Σ (y_i - ȳ)²``. A state that only the left-out run
    visits has no coefficient in the others' fit; its fraction is predicted at
    their mean time (the fractions sum to one, so this is the fit's intercept).
    Zero or less: the map predicts no better than the mean of the other runs.
    """
    n = len(y)
    predictions = np.empty(n)
    for i in range(n):
        others = np.arange(n) != i
        used = X[others].any(axis=0)
        beta, *_ = np.linalg.lstsq(X[others][:, used], y[others], rcond=None)
        unseen = X[i, ~used].sum()
        predictions[i] = X[i, used] @ beta + unseen * y[others].mean()
    return float(1 - ((y - predictions) ** 2).sum() / ((y - y.mean()) ** 2).sum())


def permutation_pvalue(X: np.ndarray, y: np.ndarray, permutations: int, seed: int) -> float:
    """P-value of R² against convergence times shuffled over runs, the regression redone.

    With X fixed, each shuffle's fit is the projection onto X's columns, so all
    shuffles are fitted at once. ``(1 + shuffles with R² at least the observed)
    / (1 + permutations)``: never zero, exact under exchangeable runs.
    """
    rng = np.random.default_rng(seed)
    shuffled = np.stack([rng.permutation(y) for _ in range(permutations)], axis=1)
    basis, *_ = np.linalg.svd(X, full_matrices=False)
    rank = np.linalg.matrix_rank(X)
    basis = basis[:, :rank]
    total = ((y - y.mean()) ** 2).sum()

    def rsquared(Y: np.ndarray) -> np.ndarray:
        residual = Y - basis @ (basis.T @ Y)
        return 1 - (residual**2).sum(axis=0) / total

    observed = rsquared(y[:, None])[0]
    # Ties within rounding count as reaching the observed value.
    reached = (rsquared(shuffled) >= observed - 1e-12).sum()
    return float((1 + reached) / (1 + permutations))


def restricted_times(convergence: pd.DataFrame) -> tuple[np.ndarray, float]:
    """Convergence times restricted at the earliest censoring time: ``(min(T, τ), τ)``.

    A censored run converges after its last checkpoint c, so min(T, τ) is known
    for every run when τ is the smallest c among the censored runs: the target
    of a restricted-mean analysis, observed without assumptions. τ is NaN (and
    the times are unchanged) when no run is censored.
    """
    times = convergence["time"].to_numpy(dtype=float)
    if "converged" not in convergence:
        return times, np.nan
    censored = ~convergence["converged"].astype(bool).to_numpy()
    if not censored.any():
        return times, np.nan
    tau = float(times[censored].min())
    return np.minimum(times, tau), tau


def slowdown_t_interval(X: np.ndarray, y: np.ndarray, alpha: float, least: int = 2) -> np.ndarray:
    """Welch t-intervals of :func:`slowdown`: ``(low, high)`` per column of X.

    NaN where fewer than ``least`` (at least 2) runs visit the state or skip it.
    """
    least = max(2, least)
    bounds = np.full((2, X.shape[1]), np.nan)
    for j, visits in enumerate((X > 0).T):
        if least <= visits.sum() <= len(y) - least:
            test = ttest_ind(y[visits], y[~visits], equal_var=False)
            bounds[:, j] = test.confidence_interval(1 - alpha)
    return bounds


# The per-state columns of the fit; NaN for every state when it is skipped.
FIT_COLUMNS = (
    "coefficient",
    "std_error",
    "ci_low",
    "ci_high",
    "p_value",
    "slowdown",
    "slowdown_low",
    "slowdown_high",
)


def regress(
    occupancy: pd.DataFrame,
    convergence: pd.DataFrame,
    options: RegressionOptions = RegressionOptions(),
) -> tuple[dict, pd.DataFrame]:
    """OLS of standardised convergence time on the state fractions of each run.

    The fractions of all visited states sum to one, so they carry the intercept:
    no constant is added (statsmodels detects the implicit constant, so R² is the
    usual centred one). The target is z-scored across runs, so a coefficient is
    the convergence time, in standard deviations from the mean, of a run that
    spent all its time in that state. With censored runs the target is the time
    restricted at the earliest censoring time (:func:`restricted_times`;
    ``censored``, ``restricted_at``). The coefficients' intervals (``ci_low``,
    ``ci_high``; method in ``ci_method``) are bootstrap percentiles, or OLS
    t-intervals with ``options.bootstrap`` 0; the slowdowns' (``slowdown_low``,
    ``slowdown_high``) are Welch t-intervals. Both are simultaneous over the
    possible detours (see :class:`RegressionOptions`).
    Beside the in-sample R², ``rsquared_heldout`` (:func:`held_out_rsquared`) and
    ``permutation_pvalue`` (:func:`permutation_pvalue`). Returns the fit summary
    and one row per state; ``detour_note`` says why a state was not judged.
    """
    _check_detour_rule(options.detour_rule)
    X = occupancy.loc[convergence[RUN].to_numpy()]
    visited = X.columns[(X > 0).any()]
    y, restricted_at = restricted_times(convergence)
    n, p = len(y), len(visited)
    coefficients = pd.DataFrame({"state": occupancy.columns.astype(np.int64)})
    coefficients["runs_visiting"] = (X > 0).sum().to_numpy()
    coefficients["mean_occupancy"] = X.mean().to_numpy()
    summary = _unfitted_summary(n, p, convergence, restricted_at, options)
    reason = _skip_reason(y, n, p)
    if reason:
        log.warning("%s: the regression is skipped", reason)
        coefficients[list(FIT_COLUMNS)] = np.nan
    else:
        if summary["underpowered"]:
            log.warning(
                "only %d runs for %d visited states (fewer than %g per state): the regression "
                "is underpowered; its R² and coefficients are not evidence",
                n,
                p,
                options.min_runs_per_state,
            )
        y = (y - y.mean()) / y.std(ddof=1)
        by_state, fitted = _fit_states(X[visited].to_numpy(), y, visited, options)
        coefficients = coefficients.join(by_state, on="state")
        summary.update(fitted)
    _judge_detours(summary, coefficients, n, reason, options)
    return summary, coefficients


def _check_detour_rule(rule: str) -> None:
    if rule not in DETOUR_RULES:
        raise TrainmapError(
            f"analysis.detour_rule must be one of {list(DETOUR_RULES)}, not {rule!r}"
        )


def _unfitted_summary(
    n: int,
    p: int,
    convergence: pd.DataFrame,
    restricted_at: float,
    options: RegressionOptions,
) -> dict:
    """The fit summary before the fit: sizes and censoring, the fit's statistics NaN."""
    return {
        "runs": n,
        "states_visited": p,
        "runs_per_state": n / p if p else np.nan,
        "underpowered": bool(p and n < options.min_runs_per_state * p),
        "censored": int(np.isfinite(restricted_at) and (~convergence["converged"]).sum()),
        "restricted_at": restricted_at,
        "rsquared": np.nan,
        "adj_rsquared": np.nan,
        "rsquared_low": np.nan,
        "rsquared_high": np.nan,
        "rsquared_heldout": np.nan,
        "f_pvalue": np.nan,
        "permutation_pvalue": np.nan,
        "ci_method": "bootstrap" if options.bootstrap else "t",
        "resamples": 0,
    }


def _skip_reason(y: np.ndarray, n: int, p: int) -> str | None:
    """Why the regression cannot be fitted; None when it can."""
    if not np.isfinite(y).all():
        return "no convergence times"
    if y.std() == 0:
        return f"all {n} runs converge at the same time"
    if n <= p:
        return f"{n} runs for {p} visited states: too few runs"
    return None


def _fit_states(
    fractions: np.ndarray, y: np.ndarray, visited: pd.Index, options: RegressionOptions
) -> tuple[pd.DataFrame, dict]:
    """The fit's columns (FIT_COLUMNS) by visited state, and its entries of the summary."""
    n = len(y)
    # Intervals hold together over the states that could be detours (Bonferroni).
    skipped = (fractions > 0).sum(axis=0) < n
    candidates = max(1, int(skipped.sum()))
    fit = sm.OLS(y, fractions).fit()
    simultaneous = options.alpha / candidates
    # Welch intervals even with the bootstrap: percentile intervals of a mean of
    # three or four visiting runs cover too rarely (docs/decisions.md).
    slow_bounds = slowdown_t_interval(fractions, y, simultaneous, options.min_detour_runs)
    fitted = {}
    if options.bootstrap:
        resamples = bootstrap_resamples(options.bootstrap, options.alpha, candidates)
        bounds = bootstrap(fractions, y, resamples, options.alpha, options.seed, candidates)
        low, high = bounds["coefficient"]
        fitted.update(
            rsquared_low=bounds["rsquared"][0, 0],
            rsquared_high=bounds["rsquared"][1, 0],
            resamples=resamples,
        )
    else:
        low, high = fit.conf_int(simultaneous).T
    values = (fit.params, fit.bse, low, high, fit.pvalues, slowdown(fractions, y), *slow_bounds)
    by_state = pd.DataFrame(
        dict(zip(FIT_COLUMNS, values, strict=True)), index=visited.astype(np.int64)
    )
    fitted.update(
        rsquared=fit.rsquared,
        adj_rsquared=fit.rsquared_adj,
        f_pvalue=fit.f_pvalue,
        rsquared_heldout=held_out_rsquared(fractions, y),
        permutation_pvalue=(
            permutation_pvalue(fractions, y, options.permutations, options.seed)
            if options.permutations
            else np.nan
        ),
    )
    return by_state, fitted


def _judge_detours(
    summary: dict,
    coefficients: pd.DataFrame,
    n: int,
    reason: str | None,
    options: RegressionOptions,
) -> None:
    """Add ``detour_note`` and ``detour`` to the states, ``detours`` to the summary."""
    coefficients["detour_note"] = detour_notes(coefficients, n, reason, options)
    if options.detour_rule == "interval":
        slow = (coefficients["ci_low"] > 0) & (coefficients["slowdown_low"] > 0)
    else:
        slow = coefficients["coefficient"] > 0
    coefficients["detour"] = slow & (coefficients["detour_note"] == "")
    summary["detours"] = " ".join(map(str, coefficients.loc[coefficients["detour"], "state"]))


def detour_notes(
    coefficients: pd.DataFrame, n: int, skipped_regression: str | None, options: RegressionOptions
) -> list[str]:
    """Per state, why it is not judged as a detour; empty where it is judged."""
    least = options.min_detour_runs if options.detour_rule == "interval" else 1
    notes = []
    for visiting in coefficients["runs_visiting"]:
        if skipped_regression:
            notes.append(f"no regression: {skipped_regression}")
        elif visiting == 0:
            notes.append("no run visits it")
        elif visiting < least:
            notes.append(f"{visiting} run(s) visit it: needs {least} (min_detour_runs)")
        elif n - visiting < least:
            notes.append(f"{n - visiting} run(s) skip it: needs {least} (min_detour_runs)")
        else:
            notes.append("")
    return notes


def dissimilarity(occupancy: pd.DataFrame, means: np.ndarray | None = None) -> float:
    """Trajectory dissimilarity (eq. 1): mean Wasserstein distance over pairs of runs.

    With ``means`` None, the paper's form: 1-D distance with the state indices
    as support (so it depends on how the states are numbered). With the states'
    learned means, a label-free form: the ground distance between states a and
    b is ``‖µ_a − µ_b‖``, solved exactly as a transport problem.
    """
    P = occupancy.to_numpy(dtype=float)
    k = P.shape[1]
    if len(P) < 2:
        return np.nan
    support = np.arange(k, dtype=float)
    cost = None if means is None else cdist(means[:k], means[:k]).ravel()
    distances = []
    for p, q in itertools.combinations(P, 2):
        if cost is None:
            distances.append(wasserstein_distance(support, support, p, q))
        else:
            distances.append(_transport(p, q, cost))
    return float(np.mean(distances))


def _transport(p: np.ndarray, q: np.ndarray, cost: np.ndarray) -> float:
    """Earth mover's distance between histograms p and q over k points with flat ``cost``."""
    k = len(p)
    rows = np.kron(np.eye(k), np.ones(k))  # Σ_b plan[a, b] = p[a]
    columns = np.kron(np.ones(k), np.eye(k))  # Σ_a plan[a, b] = q[b]
    result = linprog(
        cost,
        A_eq=np.vstack([rows, columns]),
        b_eq=np.concatenate([p, q]),
        bounds=(0, None),
        method="highs",
    )
    if not result.success:
        raise TrainmapError(f"transport problem failed: {result.message}")
    return float(result.fun)


def analyse(
    states: pd.DataFrame,
    params: HMMParams,
    convergence: pd.DataFrame | None,
    options: RegressionOptions = RegressionOptions(),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 1 and table 2 material for one setting: ``(summary row, coefficients)``.

    Without ``convergence`` (no evaluation accuracy) the regression columns are
    NaN. Runs missing from ``convergence`` (dropped as unconverged) count as unconverged.
    """
    occupancy = occupancy_fractions(states, params.k)
    if convergence is None:
        convergence = pd.DataFrame({RUN: occupancy.index, "time": np.nan, "converged": False})
    fit, coefficients = regress(occupancy, convergence, options)
    moves = transitions(states)[["source", "target"]].drop_duplicates()
    dropped = len(set(occupancy.index) - set(convergence[RUN]))
    summary = {
        **fit,
        "runs": len(occupancy),
        "regressed_runs": fit["runs"],
        "k": params.k,
        "dissimilarity": dissimilarity(occupancy),
        "dissimilarity_label_free": dissimilarity(occupancy, params.means),
        "forking": is_forking(moves, node_table(states)),
        "unconverged": dropped + int((~convergence["converged"].astype(bool)).sum()),
        "convergence_unit": convergence["unit"].iloc[0] if "unit" in convergence else "",
    }
    return pd.DataFrame([summary]), coefficients
