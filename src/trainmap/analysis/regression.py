"""Convergence time against the path through the map: OLS, detour states, dissimilarity.

Hu et al. (2023), sections 2.3 and 3.4: regress each run's convergence time on its
empirical state distribution (the fraction of checkpoints in each state); a
detour state has a positive coefficient and is skipped by at least one run.
Trajectory dissimilarity (eq. 1) is the mean pairwise Wasserstein distance
between the runs' state distributions.
"""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy.optimize import linprog
from scipy.spatial.distance import cdist
from scipy.stats import wasserstein_distance

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


def regress(
    occupancy: pd.DataFrame, convergence: pd.DataFrame, alpha: float = 0.05
) -> tuple[dict, pd.DataFrame]:
    """OLS of standardised convergence time on the state fractions of each run.

    The fractions of all visited states sum to one, so they carry the intercept:
    no constant is added (statsmodels detects the implicit constant, so R² is the
    usual centred one). The target is z-scored across runs, so a coefficient is
    the convergence time, in standard deviations from the mean, of a run that
    spent all its time in that state. Returns the fit summary and one row per state.
    """
    X = occupancy.loc[convergence[RUN].to_numpy()]
    visited = X.columns[(X > 0).any()]
    y = convergence["time"].to_numpy(dtype=float)
    n, p = len(y), len(visited)
    coefficients = pd.DataFrame({"state": occupancy.columns.astype(np.int64)})
    coefficients["runs_visiting"] = (X > 0).sum().to_numpy()
    coefficients["mean_occupancy"] = X.mean().to_numpy()
    summary = {"runs": n, "states_visited": p, "rsquared": np.nan, "f_pvalue": np.nan}
    if not np.isfinite(y).all():
        reason = "no convergence times"
    elif y.std() == 0:
        reason = f"all {n} runs converge at the same time"
    elif n <= p:
        reason = f"{n} runs for {p} visited states: too few runs"
    else:
        reason = None
    columns = ("coefficient", "std_error", "ci_low", "ci_high", "p_value")
    if reason:
        log.warning("%s: the regression is skipped", reason)
        coefficients[list(columns)] = np.nan
    else:
        if n <= p + 2:
            log.warning("only %d runs for %d states: the regression has little power", n, p)
        y = (y - y.mean()) / y.std(ddof=1)
        fit = sm.OLS(y, X[visited].to_numpy()).fit()
        ci = fit.conf_int(alpha)
        by_state = pd.DataFrame(
            dict(zip(columns, (fit.params, fit.bse, ci[:, 0], ci[:, 1], fit.pvalues), strict=True)),
            index=visited.astype(np.int64),
        )
        coefficients = coefficients.join(by_state, on="state")
        summary.update(rsquared=fit.rsquared, f_pvalue=fit.f_pvalue)
    coefficients["detour"] = (
        (coefficients["coefficient"] > 0)
        & (coefficients["runs_visiting"] > 0)
        & (coefficients["runs_visiting"] < n)
    )
    summary["detours"] = " ".join(map(str, coefficients.loc[coefficients["detour"], "state"]))
    return summary, coefficients


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
    alpha: float = 0.05,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 1 and table 2 material for one setting: ``(summary row, coefficients)``.

    Without ``convergence`` (no evaluation accuracy) the regression columns are NaN.
    """
    occupancy = occupancy_fractions(states, params.k)
    if convergence is None:
        convergence = pd.DataFrame({RUN: occupancy.index, "time": np.nan, "converged": False})
    fit, coefficients = regress(occupancy, convergence, alpha)
    moves = transitions(states)[["source", "target"]].drop_duplicates()
    summary = {
        **fit,
        "runs": len(occupancy),
        "regressed_runs": fit["runs"],
        "k": params.k,
        "dissimilarity": dissimilarity(occupancy),
        "dissimilarity_label_free": dissimilarity(occupancy, params.means),
        "forking": is_forking(moves, node_table(states)),
        "unconverged": int((~convergence["converged"].astype(bool)).sum()),
        "convergence_unit": convergence["unit"].iloc[0] if "unit" in convergence else "",
    }
    return pd.DataFrame([summary]), coefficients
