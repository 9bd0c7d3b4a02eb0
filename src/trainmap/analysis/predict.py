"""Predict a run's convergence time from its first checkpoints, with an interval.

Hu et al. (2023) regress convergence time on the time a finished run spent in each
state. :class:`ConvergencePredictor` asks it of a run still in flight: fitted on
finished runs (their metrics and convergence times), it reads an unfinished run's
checkpoints up to now, forward-filters its states through the map (no smoothing,
nothing after now) and regresses log convergence time on the filtered state
occupancy and the current state posterior, over the finished runs' prefixes up to
the same time. Three baselines see the same prefix (:data:`METHODS`): the mean of
the finished runs, an extrapolation of the evaluation-accuracy curve, and a ridge
regression on the prefix's z-scored metrics without the map.

Every method predicts log time and gets a split-conformal interval: the point plus or
minus a quantile of the finished runs' absolute leave-one-out residuals at the same
time (:func:`conformal_halfwidth`), so that its coverage holds whatever the model.
Only finished runs that had not converged by the prefix's end are compared with it:
a run in flight is known to converge later (with fewer than :data:`MIN_RUNS` of them,
all finished runs, and the interval is open above). Runs that never converged teach
nothing here: the predictor learns from converged runs only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.stats import linregress

from trainmap.analysis import hmm
from trainmap.analysis.hmm import FitOptions, HMMParams
from trainmap.errors import TrainmapError
from trainmap.tables import EPOCH, EVAL_ACC, RUN, STEP

#: The map's prediction and its three baselines.
METHODS = ("map", "mean", "accuracy", "metrics")
#: Ridge penalties tried; each fit takes the one with the least leave-one-out error.
ALPHAS = np.logspace(-3, 3, 13)
#: Fewer finished runs than this still running at a prefix's end: compare with all.
MIN_RUNS = 3
#: The accuracy curve's rise must be significant at this level to be extrapolated.
RISE_P = 0.05
#: Accuracies are clipped this far from 0 and 1 before the logit.
ACC_EPS = 1e-3


class RidgeFit(NamedTuple):
    """A ridge fit: coefficients (intercept first) and leave-one-out residuals."""

    coef: np.ndarray
    loo: np.ndarray


def ridge_loo(A: np.ndarray, y: np.ndarray, alpha: float) -> RidgeFit:
    """Ridge regression of y on A with an unpenalised intercept: ``(coef, loo residuals)``.

    ``coef[0]`` is the intercept. The leave-one-out residuals are exact:
    ``e_i / (1 - h_ii)`` holds for any least squares with a fixed quadratic penalty.
    """
    design = np.column_stack([np.ones(len(y)), A])
    penalty = alpha * np.eye(design.shape[1])
    penalty[0, 0] = 0.0
    inverse = np.linalg.pinv(design.T @ design + penalty)
    coef = inverse @ design.T @ y
    leverage = np.einsum("ij,jk,ik->i", design, inverse, design)
    residual = y - design @ coef
    with np.errstate(divide="ignore", invalid="ignore"):
        loo = residual / (1 - leverage)
    return RidgeFit(coef, np.where(np.isfinite(loo), loo, residual))


def ridge_fit(A: np.ndarray, y: np.ndarray) -> RidgeFit:
    """:func:`ridge_loo` at the penalty of :data:`ALPHAS` with the least LOO squared error."""
    fits = [ridge_loo(A, y, alpha) for alpha in ALPHAS]
    return min(fits, key=lambda fit: float(fit.loo @ fit.loo))


def conformal_halfwidth(residuals: np.ndarray, level: float) -> float:
    """Split-conformal half-width: the ``ceil((n + 1) level)``-th smallest ``|residual|``.

    Infinite when there are too few residuals for the level.
    """
    n = len(residuals)
    rank = int(np.ceil((n + 1) * level))
    if rank > n:
        return np.inf
    return float(np.sort(np.abs(residuals))[rank - 1])


def time_unit(table: pd.DataFrame) -> str:
    """The column times are read in: epochs when finite, else steps (as convergence_times)."""
    return EPOCH if EPOCH in table.columns and np.isfinite(table[EPOCH]).all() else STEP


def accuracy_crossing(times: np.ndarray, accuracy: np.ndarray, threshold: float) -> float:
    """When a straight line through the logit of the second half of an accuracy curve
    reaches ``threshold``; NaN when the line does not rise significantly (one-sided
    p ≥ :data:`RISE_P`: a flat noisy curve extrapolates anywhere) or has fewer than 3 points."""
    half = len(times) // 2
    t, acc = times[half:], np.clip(accuracy[half:], ACC_EPS, 1 - ACC_EPS)
    if len(t) < 3 or np.ptp(t) == 0:
        return np.nan
    logit = np.log(acc / (1 - acc))
    if np.ptp(logit) == 0:
        return np.nan
    line = linregress(t, logit, alternative="greater")
    if not line.pvalue < RISE_P:
        return np.nan
    target = np.log(threshold / (1 - threshold))
    return float((target - line.intercept) / line.slope)


@dataclass
class Prefix:
    """What the methods read of one run up to a time: its features and accuracy curve."""

    occupancy: np.ndarray  # mean filtered state posterior over the prefix (k,)
    current: np.ndarray  # filtered state posterior at the prefix's last checkpoint (k,)
    last: np.ndarray  # z-scores at the last checkpoint (d,)
    mean: np.ndarray  # mean z-scores over the prefix (d,)
    times: np.ndarray
    accuracy: np.ndarray


class ConvergencePredictor:
    """Convergence time of a run in flight from its first checkpoints (scikit-learn style).

    Parameters
    ----------
    k
        The map's number of states (the chosen k of the analysis).
    metrics
        The metric columns the map reads.
    threshold
        The evaluation accuracy that counts as converged (for the accuracy baseline).
    options
        How the map is fitted on the finished runs (:class:`~trainmap.analysis.hmm.FitOptions`).
    level
        Intended coverage of the intervals.
    max_checkpoints
        Z-scores use the mean and std of the first this many checkpoints of every
        finished run together (the analysis's ``pooled`` normalisation).

    After :meth:`fit`: ``params_`` (the map), ``mean_``, ``scale_`` (z-scoring),
    ``unit_`` (epoch or step) and the finished runs' data.
    """

    def __init__(
        self,
        k: int,
        metrics: list[str],
        threshold: float,
        options: FitOptions | None = None,
        level: float = 0.8,
        max_checkpoints: int = 1000,
    ) -> None:
        self.k, self.metrics, self.threshold = k, list(metrics), threshold
        self.options = options or FitOptions()
        self.level, self.max_checkpoints = level, max_checkpoints

    def fit(
        self, table: pd.DataFrame, convergence: pd.DataFrame, params: HMMParams | None = None
    ) -> ConvergencePredictor:
        """Fit on finished runs: ``table`` (metrics table), ``convergence``
        (:func:`trainmap.analysis.regression.convergence_times`; runs not converged
        are left out). ``params``: a map already fitted on these runs' z-scores
        (default: fit one with ``k`` states)."""
        missing = [c for c in [RUN, STEP, EVAL_ACC, *self.metrics] if c not in table.columns]
        if missing:
            raise TrainmapError(f"predict: the finished runs' table has no column {missing}")
        finished = convergence.loc[convergence["converged"].astype(bool)]
        table = table[table[RUN].isin(finished[RUN])].sort_values([RUN, STEP], kind="stable")
        if table[RUN].nunique() < 2:
            raise TrainmapError(
                f"predict: need at least 2 converged runs to learn from, got {table[RUN].nunique()}"
            )
        self.unit_ = time_unit(table)
        window = table.groupby(RUN, sort=False).head(self.max_checkpoints)[self.metrics]
        self.mean_ = window.mean().to_numpy()
        self.scale_ = window.std(ddof=0).to_numpy()
        constant = [m for m, s in zip(self.metrics, self.scale_, strict=True) if not s > 0]
        if constant:
            raise TrainmapError(f"predict: metric(s) {constant} are constant over the runs")
        if params is None:
            zscores = table[[RUN, STEP]].assign(
                **dict(zip(self.metrics, self._z(table).T, strict=True))
            )
            model = hmm.fit(zscores, self.metrics, self.k, self.options)
            params = HMMParams(
                model.startprob_, model.transmat_, model.means_, model.covars_, self.metrics
            )
        self.params_ = params
        self.runs_ = {run: self._filter(group) for run, group in table.groupby(RUN, sort=True)}
        self.times_ = finished.set_index(RUN).loc[list(self.runs_), "time"].to_numpy(float)
        return self

    def _z(self, table: pd.DataFrame) -> np.ndarray:
        return (table[self.metrics].to_numpy(float) - self.mean_) / self.scale_

    def _filter(self, run: pd.DataFrame) -> dict[str, np.ndarray]:
        """One run's checkpoint times, z-scores, accuracy and filtered posteriors."""
        z = self._z(run)
        return {
            "times": run[self.unit_].to_numpy(float),
            "z": z,
            "accuracy": run[EVAL_ACC].to_numpy(float),
            "posterior": np.exp(self.params_.filtered_log_posteriors(z)),
        }

    @staticmethod
    def _prefix(run: dict[str, np.ndarray], at: float) -> Prefix:
        n = max(int(np.searchsorted(run["times"], at, side="right")), 1)
        posterior, z = run["posterior"][:n], run["z"][:n]
        return Prefix(
            posterior.mean(axis=0),
            posterior[-1],
            z[-1],
            z.mean(axis=0),
            run["times"][:n],
            run["accuracy"][:n],
        )

    @staticmethod
    def _features(prefix: Prefix, method: str) -> np.ndarray:
        if method == "map":
            return np.concatenate([prefix.occupancy, prefix.current])
        if method == "metrics":
            return np.concatenate([prefix.last, prefix.mean])
        return np.empty(0)

    def _accuracy_log_time(self, prefix: Prefix, fallback: float) -> float:
        crossing = accuracy_crossing(prefix.times, prefix.accuracy, self.threshold)
        return np.log(crossing) if crossing > 0 else fallback

    def predict_run(self, run: pd.DataFrame, methods: tuple[str, ...] = METHODS) -> pd.DataFrame:
        """Predictions for one run from all of its rows (its prefix so far).

        One row per method: ``at`` (the prefix's last time), ``predicted``, ``low``,
        ``high`` (in the finished runs' time unit), ``runs`` (finished runs compared).
        """
        missing = [c for c in [STEP, EVAL_ACC, *self.metrics] if c not in run.columns]
        if missing:
            raise TrainmapError(f"predict: the run's table has no column {missing}")
        if self.unit_ not in run.columns:
            raise TrainmapError(f"predict: the run's table has no {self.unit_!r} column")
        query = self._filter(run.sort_values(STEP, kind="stable"))
        if not np.isfinite(query["times"]).all():
            raise TrainmapError(f"predict: the run's {self.unit_!r} column has missing values")
        at = float(query["times"][-1])
        prefix = self._prefix(query, at)
        later = self.times_ > at
        use = later if later.sum() >= MIN_RUNS else np.ones_like(later)
        names = np.array(list(self.runs_))[use]
        y = np.log(self.times_[use])
        others = [self._prefix(self.runs_[name], at) for name in names]
        rows = []
        for method in methods:
            if method == "accuracy":
                point = self._accuracy_log_time(prefix, y.mean())
                fitted = np.array([self._accuracy_log_time(p, y.mean()) for p in others])
                residuals = y - fitted
            else:
                A = np.array([self._features(p, method) for p in others]).reshape(len(y), -1)
                coef, residuals = ridge_fit(A, y)
                point = coef[0] + self._features(prefix, method) @ coef[1:]
            half = conformal_halfwidth(residuals, self.level)
            floor = np.log(at) if at > 0 else -np.inf  # it has not converged yet
            # Slower than nearly every finished run: they bound it from neither side.
            high = point + half if later.sum() >= MIN_RUNS else np.inf
            rows.append(
                {
                    "method": method,
                    "at": at,
                    "predicted": float(np.exp(max(point, floor))),
                    "low": float(np.exp(max(point - half, floor))),
                    "high": float(np.exp(max(high, floor))),
                    "runs": len(y),
                }
            )
        return pd.DataFrame(rows)

    def predict(self, table: pd.DataFrame, methods: tuple[str, ...] = ("map",)) -> pd.DataFrame:
        """:meth:`predict_run` for every run of a table of runs in flight (column ``run``)."""
        return pd.concat(
            [
                self.predict_run(group, methods).assign(**{RUN: run})
                for run, group in table.groupby(RUN, sort=True)
            ],
            ignore_index=True,
        )[[RUN, "method", "at", "predicted", "low", "high", "runs"]]


#: Prefix ends as fractions of the median convergence time.
FRACTIONS = (0.1, 0.25, 0.5)
#: Columns of :func:`evaluate`'s and :func:`summarize`'s tables.
PREDICTION_COLUMNS = [RUN, "fold", "fraction", "at", "method", "time", "predicted", "low",
                      "high", "runs", "error", "covered"]  # fmt: skip
SUMMARY_COLUMNS = ["fraction", "at", "method", "runs", "mean_log_error", "coverage",
                   "width_log", "map_gain", "p_map_better"]  # fmt: skip
#: Converged runs the evaluation needs: every fold then learns from at least MIN_RUNS.
MIN_EVALUATION_RUNS = 2 * MIN_RUNS
#: Folds over runs of the evaluation, at most.
MAX_FOLDS = 5


def evaluate(
    table: pd.DataFrame,
    convergence: pd.DataFrame,
    make: Callable[[], ConvergencePredictor],
    fractions: tuple[float, ...] = FRACTIONS,
    folds: int = MAX_FOLDS,
    seed: int = 0,
) -> pd.DataFrame:
    """K-fold over converged runs: each held-out run predicted, at each fraction of the
    median convergence time, by a predictor (``make()``) fitted on the other folds only.

    One row per held-out run, fraction and method: ``time`` (true), ``predicted``,
    ``low``, ``high``, ``error`` (|log predicted − log time|), ``covered``. A run
    already converged at a prefix's end is not predicted there.
    """
    from trainmap.analysis.normalize import split_runs

    finished = convergence.loc[convergence["converged"].astype(bool)]
    if len(finished) < MIN_EVALUATION_RUNS:
        raise TrainmapError(
            f"predict: {len(finished)} converged runs; the evaluation needs {MIN_EVALUATION_RUNS}"
        )
    split = split_runs(finished[RUN].to_numpy(), "kfold", folds, seed=seed)
    median = float(finished["time"].median())
    truth = finished.set_index(RUN)["time"]
    unit = time_unit(table)
    rows = []
    for fold in np.unique(split["fold"]):
        held = split.loc[split["fold"] == fold, RUN]
        train = convergence[convergence[RUN].isin(split.loc[split["fold"] != fold, RUN])]
        predictor = make().fit(table[table[RUN].isin(train[RUN])], train)
        for run in held:
            rows_run = table[table[RUN] == run]
            for fraction in fractions:
                at = fraction * median
                if truth[run] <= at:
                    continue
                prefix = rows_run[rows_run[unit] <= at]
                if prefix.empty:
                    continue
                predicted = predictor.predict_run(prefix)
                rows.append(predicted.assign(**{RUN: run, "fold": int(fold), "fraction": fraction}))
    result = pd.concat(rows, ignore_index=True)
    result["time"] = truth.loc[result[RUN]].to_numpy()
    result["error"] = np.abs(np.log(result["predicted"]) - np.log(result["time"]))
    result["covered"] = (result["low"] <= result["time"]) & (result["time"] <= result["high"])
    return result[PREDICTION_COLUMNS]


#: Paired |log| errors closer than this (a millionth of the time) are equal.
TIE = 1e-6


def sign_flip_pvalue(differences: np.ndarray) -> float:
    """One-sided exact p-value that the mean of paired differences exceeds zero.

    Under the null each difference's sign is a fair coin (all 2^n patterns up to
    n = 16, else 20000 seeded draws). Differences below :data:`TIE` are ties (zero): a
    method that falls back to another differs from it by rounding only.
    """
    d = np.asarray(differences, float)
    d = np.where(np.abs(d) < TIE, 0.0, d)
    n = len(d)
    if n == 0:
        return np.nan
    if n <= 16:
        signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
    else:
        signs = np.random.default_rng(0).choice([-1, 1], (20000, n))
    return float(np.mean(signs @ d >= d.sum() - 1e-12))


def summarize(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per fraction and method: runs predicted, mean log error, coverage, median interval
    width (log); for baselines the map's gain in mean error over them and the one-sided
    sign-flip p-value that the map's errors are smaller (paired by run)."""
    rows = []
    for (fraction, method), group in predictions.groupby(["fraction", "method"], sort=True):
        mapped = predictions[
            (predictions["fraction"] == fraction) & (predictions["method"] == "map")
        ]
        paired = group.set_index(RUN)["error"] - mapped.set_index(RUN)["error"]
        rows.append(
            {
                "fraction": fraction,
                "at": group["at"].iloc[0],
                "method": method,
                "runs": len(group),
                "mean_log_error": group["error"].mean(),
                "coverage": group["covered"].mean(),
                "width_log": np.median(np.log(group["high"]) - np.log(group["low"])),
                "map_gain": paired.mean() if method != "map" else np.nan,
                "p_map_better": sign_flip_pvalue(paired.dropna().to_numpy())
                if method != "map"
                else np.nan,
            }
        )
    order = {m: i for i, m in enumerate(METHODS)}
    table = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    return table.sort_values(
        ["fraction", "method"], key=lambda c: c.map(order) if c.name == "method" else c
    ).reset_index(drop=True)
