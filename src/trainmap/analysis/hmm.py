"""Gaussian HMMs over z-scored metric sequences: BIC sweep, fit, decoding, plain arrays.

Hu et al. (2023), section 2.1: a full-covariance Gaussian HMM fitted with
Baum-Welch and several random restarts; the number of hidden states is chosen
on held-out runs (one 80/20 split in the paper; here also K folds over runs,
every run held out once, scored as one held-out set with a standard error).
Restarts are seeded here (the authors' code did not seed them) and start from
Gaussian mixtures rather than hmmlearn's K-means, so the same config gives the
same model and small states are not lost at the start.
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from hmmlearn.hmm import GaussianHMM
from joblib import Parallel, delayed, parallel_config
from scipy.stats import multivariate_normal
from sklearn.mixture import GaussianMixture

from trainmap.errors import TrainmapError
from trainmap.tables import EPOCH, RUN, STEP, atomic_output

log = logging.getLogger(__name__)

STATE = "state"
#: How a restart starts its emissions (``FitOptions.init``).
INITS = ("mixture", "kmeans")
CRITERIA = {"bic": ("heldout_bic", "min"), "loglik": ("heldout_loglik", "max")}


@dataclass(frozen=True)
class FitOptions:
    """How each Baum-Welch fit runs (``analysis`` section of the config)."""

    restarts: int = 4
    seed: int = 0
    n_iter: int = 100
    tol: float = 1e-2
    min_covar: float = 1e-3
    #: ``full`` (the paper) or ``diag``: with few runs, full covariances fitted on the
    #: fit runs overfit and held-out BIC falls to one state (config/README.md).
    covariance_type: str = "full"
    #: How each restart's means and covariances start: ``mixture`` (the most likely of
    #: several Gaussian mixtures, :func:`initial_emissions`) or ``kmeans`` (hmmlearn's
    #: default, as the authors' code).
    init: str = "mixture"

    def __post_init__(self) -> None:
        if self.init not in INITS:
            raise TrainmapError(f"analysis.init must be one of {list(INITS)}, not {self.init!r}")


def sequences(
    zscores: pd.DataFrame, metrics: list[str], runs: list | np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Stack the runs' observation sequences for hmmlearn: ``(X, lengths)``."""
    if runs is not None:
        zscores = zscores[zscores[RUN].isin(runs)]
    zscores = zscores.sort_values([RUN, STEP], kind="stable")
    lengths = zscores.groupby(RUN, sort=True).size().to_numpy()
    return zscores[metrics].to_numpy(dtype=float), lengths


def n_parameters(k: int, d: int, covariance_type: str = "full") -> int:
    """Free parameters of a k-state Gaussian HMM over d features.

    Start probabilities (k - 1), transition rows (k (k - 1)), means (k d) and
    covariances: symmetric (k d (d + 1) / 2) for ``full``, diagonal (k d) for ``diag``.
    """
    covariances = k * d * (d + 1) // 2 if covariance_type == "full" else k * d
    return (k - 1) + k * (k - 1) + k * d + covariances


def information_criteria(loglik: float, n_params: int, n_obs: int) -> tuple[float, float]:
    """``(AIC, BIC)`` of a log-likelihood over ``n_obs`` observations."""
    return -2 * loglik + 2 * n_params, -2 * loglik + n_params * np.log(n_obs)


def scores(train: float, held: float, n_params: int, n_train: int, n_held: int) -> dict:
    """A sweep-table row's scores: train and held-out log-likelihood, AIC and BIC, sizes."""
    train_aic, train_bic = information_criteria(train, n_params, n_train)
    held_aic, held_bic = information_criteria(held, n_params, n_held)
    return {
        "train_loglik": train,
        "heldout_loglik": held,
        "train_aic": train_aic,
        "train_bic": train_bic,
        "heldout_aic": held_aic,
        "heldout_bic": held_bic,
        "train_checkpoints": n_train,
        "heldout_checkpoints": n_held,
    }


def restart_seed(seed: int, k: int, restart: int) -> int:
    """The ``random_state`` of one restart, derived from the analysis seed."""
    return int(np.random.SeedSequence([seed, k, restart]).generate_state(1)[0])


#: Gaussian-mixture initialisations tried per restart; the most likely one starts Baum-Welch.
MIXTURE_INITS = 10


def initial_emissions(
    X: np.ndarray, k: int, random_state: int, options: FitOptions
) -> tuple[np.ndarray, np.ndarray]:
    """Starting means and covariances of a restart: the most likely of several Gaussian mixtures.

    hmmlearn starts every restart from the K-means clustering with the lowest
    within-cluster sum of squares over 10 seeds. When one state holds most of the
    checkpoints (the state runs end in), that clustering splits it and merges small
    states, every restart starts there, and Baum-Welch stays (benchmark fork: all 4
    restarts of a 4-state fit in one fold). A Gaussian mixture fitted from each
    K-means start and ranked by likelihood, the HMM's own emission model without the
    time order, keeps the small states apart.
    """
    mixture = GaussianMixture(
        n_components=k,
        covariance_type=options.covariance_type,
        reg_covar=options.min_covar,
        n_init=MIXTURE_INITS,
        random_state=random_state,
    ).fit(X)
    return mixture.means_, mixture.covariances_


def fit_restart(
    X: np.ndarray, lengths: np.ndarray, k: int, restart: int, options: FitOptions
) -> GaussianHMM | None:
    """One seeded Baum-Welch fit; ``None`` (with a warning) if it breaks down numerically.

    With ``options.init`` ``mixture``, means and covariances start from
    :func:`initial_emissions`; start and transition probabilities start uniform,
    as hmmlearn starts them.
    """
    random_state = restart_seed(options.seed, k, restart)
    mixture = options.init == "mixture"
    model = GaussianHMM(
        n_components=k,
        covariance_type=options.covariance_type,
        n_iter=options.n_iter,
        tol=options.tol,
        min_covar=options.min_covar,
        random_state=random_state,
        init_params="st" if mixture else "stmc",
    )
    try:
        if mixture:
            model.means_, model.covars_ = initial_emissions(X, k, random_state, options)
        model.fit(X, lengths)
    except (ValueError, np.linalg.LinAlgError) as error:
        log.warning("k=%d restart %d failed: %s", k, restart, error)
        return None
    reason = breakdown(model)
    if reason:
        log.warning("k=%d restart %d failed: %s", k, restart, reason)
        return None
    return model


def breakdown(model: GaussianHMM) -> str | None:
    """Why a fitted HMM cannot be used (``None`` if it can)."""
    parameters = (model.startprob_, model.transmat_, model.means_, model.covars_)
    if not all(np.isfinite(p).all() for p in parameters):
        # A state that lost every observation during EM gets NaN parameters.
        return "a state was left with no observations"
    if not np.allclose(model.transmat_.sum(axis=1), 1):
        # A state holding only runs' last checkpoints has no transition to estimate.
        return "a state has no transitions out of it"
    return None


class _Scored(NamedTuple):
    loglik: float
    restart: int
    model: GaussianHMM


def best_restart(
    X: np.ndarray, lengths: np.ndarray, k: int, options: FitOptions
) -> GaussianHMM | None:
    """The restart with the best log-likelihood on ``X`` (ties: the first); ``None`` if all fail."""
    models = [fit_restart(X, lengths, k, r, options) for r in range(options.restarts)]
    scored = [_Scored(m.score(X, lengths), r, m) for r, m in enumerate(models) if m is not None]
    if not scored:
        return None
    loglik, restart, model = max(scored, key=lambda s: (s.loglik, -s.restart))
    log.info("k=%d: best restart %d, log-likelihood %.1f", k, restart, loglik)
    return model


def converged(model: GaussianHMM) -> bool:
    """Whether Baum-Welch stopped because the log-likelihood gain fell below ``tol``.

    (hmmlearn's ``monitor_.converged`` is also true when it merely ran out of iterations.)
    """
    history = model.monitor_.history
    return len(history) >= 2 and history[-1] - history[-2] < model.monitor_.tol


def folds(split: pd.DataFrame) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """``(fold, fit runs, held-out runs)`` for every fold of a split table (``run``, ``fold``).

    Fold -1 holds the runs that are never held out (the paper's single split).
    """
    return [
        (
            int(fold),
            split.loc[split["fold"] != fold, RUN].to_numpy(),
            split.loc[split["fold"] == fold, RUN].to_numpy(),
        )
        for fold in np.unique(split["fold"])
        if fold >= 0
    ]


SWEEP_COLUMNS = [
    "k",
    "fold",
    "restart",
    "n_params",
    "train_loglik",
    "heldout_loglik",
    "train_aic",
    "train_bic",
    "heldout_aic",
    "heldout_bic",
    "train_checkpoints",
    "heldout_checkpoints",
    "converged",
    "iterations",
]


def sweep(
    zscores: pd.DataFrame,
    split: pd.DataFrame,
    metrics: list[str],
    k: int,
    options: FitOptions,
    aligned: bool = False,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """Per fold, fit k states on its fit runs with every restart; score fit and held-out runs.

    One row per fold and restart: train and held-out log-likelihood, AIC and
    BIC, whether Baum-Welch converged within ``n_iter`` iterations. ``aligned``:
    ``zscores`` are pooled, and each fold fits per-run maps inside it
    (:func:`trainmap.analysis.align.fold_scores`). ``n_jobs``: processes fitting the
    (fold, restart) pairs at once; each fit is seeded by its own restart, so the table
    is the same for any ``n_jobs``.
    """
    tasks = []
    for fold, fit_runs, held_runs in folds(split):
        fit_data = sequences(zscores, metrics, fit_runs)
        held_data = sequences(zscores, metrics, held_runs)
        tasks += [(fold, restart, fit_data, held_data) for restart in range(options.restarts)]
    # One BLAS thread per process: n_jobs processes fill the job's threads.
    with parallel_config(backend="loky", inner_max_num_threads=1):
        rows = Parallel(n_jobs=n_jobs)(
            delayed(restart_row)(fold, restart, fit_data, held_data, k, options, aligned)
            for fold, restart, fit_data, held_data in tasks
        )
    for row in rows:
        log.info(
            "k=%d fold %d restart %d: train LL %.1f, held-out LL %.1f, held-out BIC %.1f, "
            "converged %s",
            k,
            row["fold"],
            row["restart"],
            row.get("train_loglik", np.nan),
            row.get("heldout_loglik", np.nan),
            row.get("heldout_bic", np.nan),
            row["converged"],
        )
    return pd.DataFrame(rows).reindex(columns=SWEEP_COLUMNS)


def restart_row(
    fold: int,
    restart: int,
    fit_data: tuple[np.ndarray, np.ndarray],
    held_data: tuple[np.ndarray, np.ndarray],
    k: int,
    options: FitOptions,
    aligned: bool,
) -> dict:
    """One sweep-table row: restart ``restart`` fitted on a fold's fit runs, both scored."""
    from trainmap.analysis import align  # align builds on this module

    (X, lengths), (X_held, lengths_held) = fit_data, held_data
    p = n_parameters(k, X.shape[1], options.covariance_type)
    row = {"k": k, "fold": fold, "restart": restart, "n_params": p}
    model = fit_restart(X, lengths, k, restart, options)
    scored = None
    if model is not None and aligned:
        scored = align.fold_scores(
            model,
            (X, lengths, np.repeat(np.arange(len(lengths)), lengths)),
            (X_held, lengths_held, np.repeat(np.arange(len(lengths_held)), lengths_held)),
            options,
        )
    elif model is not None:
        scored = model, model.score(X, lengths), model.score(X_held, lengths_held)
    if scored is None:
        return {**row, "converged": False, "iterations": 0}
    model, train, held = scored
    return {
        **row,
        **scores(train, held, p, len(X), len(X_held)),
        "converged": converged(model),
        "iterations": int(model.monitor_.iter),
    }


def pooled_held_out(per_fold: pd.DataFrame) -> pd.DataFrame:
    """Per k, the held-out scores of all folds' held-out runs taken as one held-out set.

    ``per_fold``: one row per k and fold (``heldout_loglik``, ``heldout_checkpoints``,
    ``n_params``). The log-likelihood is the sum over folds (every run is held out
    once with K folds), AIC and BIC are those of that sum with the penalty of all
    held-out checkpoints. A standard error (``<score>_se``; NaN with one fold)
    treats each fold's share, its log-likelihood term plus its checkpoints' share
    of the penalty, as one of K independent draws.
    """
    frame = per_fold.copy()
    n_total = frame.groupby("k")["heldout_checkpoints"].transform("sum")
    share = frame["heldout_checkpoints"] / n_total
    terms = {
        "heldout_loglik": frame["heldout_loglik"],
        "heldout_aic": -2 * frame["heldout_loglik"] + 2 * frame["n_params"] * share,
        "heldout_bic": -2 * frame["heldout_loglik"] + frame["n_params"] * np.log(n_total) * share,
    }
    grouped = pd.DataFrame(terms).assign(k=frame["k"]).groupby("k")
    pooled = grouped.sum()
    spread = grouped.std(ddof=1) * np.sqrt(grouped.size().to_numpy()[:, None])
    return pooled.join(spread.add_suffix("_se"))


def select_states(
    sweep_table: pd.DataFrame, criterion: str = "bic", one_standard_error: bool = False
) -> pd.DataFrame:
    """Per k and fold the restart with the best train log-likelihood; per k the held-out score.

    ``criterion``: ``bic`` (lowest held-out BIC, the paper) or ``loglik``
    (highest held-out log-likelihood, the authors' code), both over the held-out
    runs of every fold together (:func:`pooled_held_out`; with the paper's single
    split, its held-out runs). Train scores are means over folds.
    ``one_standard_error``: choose the fewest states whose score lies within one
    standard error of the best (the one-standard-error rule), instead of the
    best. A k whose fits failed in some fold is not chosen.
    """
    if criterion not in CRITERIA:
        raise TrainmapError(
            f"analysis.criterion must be one of {list(CRITERIA)}, not {criterion!r}"
        )
    column, direction = CRITERIA[criterion]
    sweep_table = sweep_table.reset_index(drop=True)
    ok = sweep_table.dropna(subset=["train_loglik"])
    if ok.empty:
        raise TrainmapError("every HMM fit of the sweep failed; see the bic_sweep logs")
    per_fold = ok.loc[ok.groupby(["k", "fold"])["train_loglik"].idxmax()]
    grouped = per_fold.groupby("k")
    best = grouped[["n_params", "train_loglik", "train_aic", "train_bic"]].mean()
    best = best.join(pooled_held_out(per_fold))
    best["folds"] = grouped.size()
    counts = sweep_table.groupby("k")["converged"].agg(["sum", "size"])
    best["restarts_converged"] = counts.loc[best.index, "sum"]
    best["restarts"] = counts.loc[best.index, "size"]
    best = best.reset_index().sort_values("k").reset_index(drop=True)
    eligible = best["folds"] == sweep_table["fold"].nunique()
    sign = 1 if direction == "min" else -1
    loss = sign * best[column].where(eligible)  # lower is better
    chosen = loss.idxmin()
    if one_standard_error:
        se = best.loc[chosen, f"{column}_se"]
        within = loss <= loss[chosen] + (se if np.isfinite(se) else 0)
        chosen = within.idxmax()  # the first, i.e. the fewest states (sorted by k)
    best["chosen"] = best.index == chosen
    best["criterion"] = criterion
    best["one_standard_error"] = one_standard_error
    # The curve may still be falling beyond the sweep: the choice is then a lower bound.
    best["at_edge"] = best["chosen"] & (best["k"] == best["k"].max())
    return best


def extend_sweep(
    zscores: pd.DataFrame,
    split: pd.DataFrame,
    metrics: list[str],
    sweep_table: pd.DataFrame,
    options: FitOptions,
    k_limit: int,
    criterion: str = "bic",
    one_standard_error: bool = False,
    aligned: bool = False,
    n_jobs: int = 1,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Select k; while the best k is the largest tried and below ``k_limit``, sweep one more.

    ``aligned``, ``n_jobs``: as in :func:`sweep`.

    Returns the (extended) sweep and its selection table. If the choice is still
    the largest k tried, its ``at_edge`` flag stays set and a warning says how to
    extend the sweep.
    """
    selection = select_states(sweep_table, criterion, one_standard_error)
    while selection["at_edge"].any() and selection["k"].max() < k_limit:
        k = int(selection["k"].max()) + 1
        log.info("the best k is the largest tried: extending the sweep to k = %d", k)
        sweep_table = pd.concat(
            [sweep_table, sweep(zscores, split, metrics, k, options, aligned, n_jobs)],
            ignore_index=True,
        )
        selection = select_states(sweep_table, criterion, one_standard_error)
    if selection["at_edge"].any():
        log.warning(
            "the best number of states, %d, is the largest tried: more states may fit better; "
            "raise analysis.k_max or analysis.k_extend",
            chosen_k(selection),
        )
    return sweep_table, selection


def chosen_k(selection: pd.DataFrame) -> int:
    """The number of states a selection table chose."""
    return int(selection.loc[selection["chosen"], "k"].iloc[0])


def fit(zscores: pd.DataFrame, metrics: list[str], k: int, options: FitOptions) -> GaussianHMM:
    """Refit on all runs; keep the restart with the best log-likelihood, states relabelled.

    States are numbered by when runs first reach them (0 = where runs start),
    so that maps read left to right; unvisited states come last.
    """
    X, lengths = sequences(zscores, metrics)
    model = best_restart(X, lengths, k, options)
    if model is None:
        raise TrainmapError(f"every restart of the k={k} HMM failed on all runs")
    return relabel_by_first_visit(model, X, lengths)


def relabel_by_first_visit(model: GaussianHMM, X: np.ndarray, lengths: np.ndarray) -> GaussianHMM:
    """Permute the states so that they are numbered by mean relative first-visit time."""
    states = model.predict(X, lengths)
    k = model.n_components
    first = np.full((len(lengths), k), np.nan)
    for i, seq in enumerate(np.split(states, np.cumsum(lengths)[:-1])):
        for s in np.unique(seq):
            first[i, s] = np.argmax(seq == s) / len(seq)
    with np.errstate(invalid="ignore"):
        mean_first = np.where(np.isnan(first).all(axis=0), np.inf, np.nanmean(first, axis=0))
    order = np.argsort(mean_first, kind="stable")
    model.startprob_ = model.startprob_[order]
    model.transmat_ = model.transmat_[np.ix_(order, order)]
    model.means_ = model.means_[order]
    covars = model.covars_[order]  # (k, d, d) whatever the covariance type
    full = model.covariance_type == "full"
    model.covars_ = covars if full else np.diagonal(covars, axis1=1, axis2=2)
    return model


def decode(model: GaussianHMM, zscores: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """The Viterbi state of every checkpoint of every run."""
    zscores = zscores.sort_values([RUN, STEP], kind="stable").reset_index(drop=True)
    X, lengths = sequences(zscores, metrics)
    _, states = model.decode(X, lengths, algorithm="viterbi")
    keys = [c for c in (RUN, STEP, EPOCH) if c in zscores.columns]
    return zscores[keys].assign(**{STATE: states.astype(np.int64)})


def save(model: GaussianHMM, metrics: list[str], pickle_path: Path, arrays_path: Path) -> None:
    """Save the hmmlearn object (pickle) and its parameters as plain arrays (``.npz``)."""
    with atomic_output(pickle_path) as tmp, open(tmp, "wb") as f:
        pickle.dump(model, f)
    with atomic_output(arrays_path) as tmp:
        np.savez(
            tmp,
            startprob=model.startprob_,
            transmat=model.transmat_,
            means=model.means_,
            covars=model.covars_,
            metrics=np.array(metrics, dtype=str),
        )


@dataclass(frozen=True)
class HMMParams:
    """A Gaussian HMM as plain arrays, readable without hmmlearn."""

    startprob: np.ndarray  # (k,)
    transmat: np.ndarray  # (k, k)
    means: np.ndarray  # (k, d)
    covars: np.ndarray  # (k, d, d)
    metrics: list[str]

    @classmethod
    def load(cls, path: str | Path) -> HMMParams:
        """Read the ``.npz`` written by :func:`save`."""
        with np.load(path) as f:
            return cls(
                f["startprob"],
                f["transmat"],
                f["means"],
                f["covars"],
                [str(m) for m in f["metrics"]],
            )

    @property
    def k(self) -> int:
        return len(self.startprob)

    def log_emissions(self, X: np.ndarray) -> np.ndarray:
        """``log p(z_t | s_t = h)`` for every row of X and state h: ``(T, k)``."""
        return np.column_stack(
            [
                multivariate_normal.logpdf(X, m, c)
                for m, c in zip(self.means, self.covars, strict=True)
            ]
        ).reshape(len(X), self.k)

    def filtered_log_posteriors(self, X: np.ndarray) -> np.ndarray:
        """``log p(s_t = h | z_1:t)`` by the forward algorithm, for one run: ``(T, k)``."""
        emissions = self.log_emissions(X)
        posterior = np.empty_like(emissions)
        predicted = self.startprob
        # Normalised each step, the filtered posterior needs no log-space sum over states.
        with np.errstate(divide="ignore"):
            for t in range(len(X)):
                log_alpha = np.log(predicted) + emissions[t]
                alpha = np.exp(log_alpha - log_alpha.max())
                posterior[t] = log_alpha - log_alpha.max() - np.log(alpha.sum())
                predicted = (alpha / alpha.sum()) @ self.transmat
        return posterior

    def posterior_gradients(self, X: np.ndarray) -> np.ndarray:
        """``∂ log p(s_t = k | z_1:t) / ∂z_t`` for every t and k of one run: ``(T, k, d)``.

        Hu et al. (2023), appendix A:
        ``Σ_k⁻¹(µ_k − z_t) − Σ_h p(s_t = h | z_1:t) Σ_h⁻¹(µ_h − z_t)``, a vector per
        (t, k); the feature importance is its absolute value.
        """
        precisions = np.linalg.inv(self.covars)  # (k, d, d)
        pulls = np.einsum("kij,tkj->tki", precisions, self.means[None] - X[:, None])  # (T, k, d)
        posterior = np.exp(self.filtered_log_posteriors(X))  # (T, k)
        # Σ_h p_h (pull_k − pull_h): the same as pull_k − Σ_h p_h pull_h since Σ_h p_h = 1,
        # but without cancellation when the posterior is nearly certain.
        differences = pulls[:, :, None, :] - pulls[:, None, :, :]  # (T, k, h, d)
        return np.einsum("th,tkhd->tkd", posterior, differences)
