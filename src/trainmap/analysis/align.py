"""Remove each run's own offset and scale of every metric: an HMM with per-run maps, fitted jointly.

Runs can differ by a per-run affine map of each metric (weights that start at
another scale, a metric with a run-specific baseline). Per-run z-scores (the
paper) remove such a map but also shift each run by the mean of the states it
visits; pooled z-scores keep the map, and the HMM spends extra states on it
(``benchmarks/recovery.py``, scenario "per-run offsets, scales"). Here, as
speaker-adaptive training in speech recognition (constrained MLLR, Gales 1998,
"Maximum likelihood linear transformations for HMM-based speech recognition",
restricted to a diagonal transform), run r's z-scores ``x`` are modelled as
``y = scale_r * x + offset_r`` following one shared HMM, and the maps and the
HMM are fitted together by maximising the likelihood of ``x``: the HMM's
likelihood of ``y`` plus the log-Jacobian ``sum log scale_r`` of every
checkpoint. Given the HMM's posteriors, each run's map has a concave objective
and takes a few Newton steps (:func:`map_update`); given the maps, the HMM takes
Baum-Welch steps from where it was.

The joint likelihood has many local maxima: an HMM with one state too many
splits a state between groups of runs, and the maps then keep the groups
apart. So the search runs from ``k_max`` states down, and each k starts both
from a fresh fit of the pooled z-scores and from the best (k + 1)-state fit
with two of its closest states merged (split-and-merge EM, Ueda et al. 2000);
k is chosen by BIC of the joint likelihood. The map parameters are the same at
every k and are not counted.

Guards: every scale is kept within [1 / MAX_SCALE, MAX_SCALE], since a metric
that is nearly constant in one run otherwise gains likelihood without bound as
its scale grows; fewer than MIN_RUNS runs get a warning (the maps then absorb
differences between groups of runs, and the search over-splits). When k is
chosen on held-out runs (:func:`fold_scores`), each fold fits the maps of its fit
runs with the HMM, and each held-out run's map under the fold's HMM alone, so
that no held-out run shapes the model it is scored by.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from hmmlearn.hmm import GaussianHMM

from trainmap.analysis import hmm
from trainmap.errors import TrainmapError
from trainmap.tables import RUN, STEP

log = logging.getLogger(__name__)

#: Alternations of map updates and Baum-Welch steps per fit, at most.
MAX_ROUNDS = 100
#: Baum-Welch steps per round; Newton steps per map update.
EM_STEPS = 10
NEWTON_STEPS = 5
#: Merged pairs of the (k + 1)-state fit tried as starts for k states: the closest ones.
MERGES = 3
#: Per-run scales stay within [1 / MAX_SCALE, MAX_SCALE].
MAX_SCALE = 4.0
#: Fewer runs than this: aligning them is warned against.
MIN_RUNS = 20


@dataclass
class Alignment:
    """An HMM of mapped z-scores ``scale * x + offset`` (one row of maps per run)."""

    model: GaussianHMM
    scale: np.ndarray
    offset: np.ndarray
    #: Log-likelihood of the unmapped z-scores: the HMM's of the mapped ones plus the Jacobian.
    loglik: float
    rounds: int


def map_update(
    X: np.ndarray,
    run_index: np.ndarray,
    posteriors: np.ndarray,
    model: GaussianHMM,
    scale: np.ndarray,
    offset: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Every run's map ``(scale, offset)`` maximising the expected joint log-likelihood.

    With ``y = a * x + c`` and state posteriors ``γ``, run r's objective
    ``-½ Σ_t Σ_s γ_ts (y_t - μ_s)ᵀ Σ_s⁻¹ (y_t - μ_s) + T_r Σ_j log a_j`` is a concave
    quadratic in ``θ = (a, c)`` plus the log terms; Newton steps, halved where a
    scale would turn non-positive.
    """
    d = X.shape[1]
    precisions = np.linalg.inv(model.covars_)
    weighted_means = np.einsum("sij,sj->si", precisions, model.means_)
    scale, offset = scale.copy(), offset.copy()
    for r in range(len(scale)):
        rows = run_index == r
        x, gamma, n_checkpoints = X[rows], posteriors[rows], rows.sum()
        occupancy = gamma.sum(axis=0)
        first = gamma.T @ x
        second = np.einsum("ts,ti,tj->sij", gamma, x, x)
        cross = np.einsum("si,sij->ij", first, precisions)
        hessian = np.block(
            [
                [np.einsum("sij,sij->ij", precisions, second), cross],
                [cross.T, np.einsum("s,sij->ij", occupancy, precisions)],
            ]
        )
        linear = np.concatenate([(first * weighted_means).sum(axis=0), occupancy @ weighted_means])
        theta = np.concatenate([scale[r], offset[r]])
        for _ in range(NEWTON_STEPS):
            gradient = linear - hessian @ theta
            gradient[:d] += n_checkpoints / theta[:d]
            curvature = -hessian.copy()
            curvature[np.arange(d), np.arange(d)] -= n_checkpoints / theta[:d] ** 2
            step = np.linalg.solve(curvature, gradient)
            length = 1.0
            while np.any(theta[:d] - length * step[:d] <= 0):
                length /= 2
            theta = theta - length * step
            theta[:d] = np.clip(theta[:d], 1 / MAX_SCALE, MAX_SCALE)
        scale[r], offset[r] = theta[:d], theta[d:]
    return scale, offset


def _warm_model(
    k: int, options: hmm.FitOptions, parameters: tuple[np.ndarray, ...], n_iter: int
) -> GaussianHMM:
    """An HMM that continues Baum-Welch from ``(startprob, transmat, means, full covars)``."""
    model = GaussianHMM(
        n_components=k,
        covariance_type=options.covariance_type,
        n_iter=n_iter,
        tol=options.tol,
        min_covar=options.min_covar,
        init_params="",
        random_state=options.seed,
    )
    startprob, transmat, means, covars = parameters
    model.startprob_, model.transmat_, model.means_ = startprob, transmat, means
    covars = (covars + covars.transpose(0, 2, 1)) / 2  # hmmlearn's check wants exact symmetry
    model.covars_ = covars if options.covariance_type == "full" else np.diagonal(covars, 0, 1, 2)
    return model


def _parameters(model: GaussianHMM) -> tuple[np.ndarray, ...]:
    return model.startprob_, model.transmat_, model.means_, model.covars_


def _continue(
    parameters: tuple[np.ndarray, ...],
    Y: np.ndarray,
    lengths: np.ndarray,
    options: hmm.FitOptions,
    n_iter: int,
) -> GaussianHMM | None:
    """Baum-Welch from ``parameters`` for ``n_iter`` steps; ``None`` if a state is lost."""
    try:
        warm = _warm_model(len(parameters[0]), options, parameters, n_iter)
        warm.fit(Y, lengths)
    except (ValueError, np.linalg.LinAlgError):
        return None
    return None if hmm.breakdown(warm) else warm


def fit_alignment(
    X: np.ndarray,
    lengths: np.ndarray,
    run_index: np.ndarray,
    model: GaussianHMM,
    scale: np.ndarray,
    offset: np.ndarray,
    options: hmm.FitOptions,
) -> Alignment | None:
    """Alternate map updates and Baum-Welch steps until the joint likelihood settles."""
    previous, rounds = -np.inf, 0
    while rounds < MAX_ROUNDS:
        rounds += 1
        Y = X * scale[run_index] + offset[run_index]
        scale, offset = map_update(
            X, run_index, model.predict_proba(Y, lengths), model, scale, offset
        )
        Y = X * scale[run_index] + offset[run_index]
        model = _continue(_parameters(model), Y, lengths, options, EM_STEPS)
        if model is None:
            return None
        loglik = model.score(Y, lengths) + np.log(scale[run_index]).sum()
        gain, previous = loglik - previous, loglik
        if gain < options.tol:
            break
    else:
        log.warning(
            "k=%d alignment still gained %.3g after %d rounds (tol %g): scored where it stopped",
            model.n_components,
            gain,
            MAX_ROUNDS,
            options.tol,
        )
    return Alignment(model, scale, offset, float(loglik), rounds)


def held_out_maps(
    model: GaussianHMM, X: np.ndarray, lengths: np.ndarray, run_index: np.ndarray, tol: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """Maps of runs the HMM was not fitted on, under that HMM: ``(scale, offset, loglik)``.

    Alternates posteriors and map updates with the HMM fixed, as
    :func:`fit_alignment` does without its Baum-Welch steps.
    """
    n_runs, d = run_index.max() + 1, X.shape[1]
    scale, offset = np.ones((n_runs, d)), np.zeros((n_runs, d))
    previous = -np.inf
    for _ in range(MAX_ROUNDS):
        Y = X * scale[run_index] + offset[run_index]
        scale, offset = map_update(
            X, run_index, model.predict_proba(Y, lengths), model, scale, offset
        )
        Y = X * scale[run_index] + offset[run_index]
        loglik = model.score(Y, lengths) + np.log(scale[run_index]).sum()
        if loglik - previous < tol:
            break
        previous = loglik
    return scale, offset, float(loglik)


def fold_scores(
    model: GaussianHMM,
    fit: tuple[np.ndarray, np.ndarray, np.ndarray],
    held: tuple[np.ndarray, np.ndarray, np.ndarray],
    options: hmm.FitOptions,
) -> tuple[GaussianHMM, float, float] | None:
    """One fold of a held-out sweep with per-run maps: ``(model, fit loglik, held-out loglik)``.

    ``fit`` and ``held``: ``(X, lengths, run_index)`` of the fold's fit and
    held-out runs (pooled z-scores, run indices from 0). The fit runs' maps are
    fitted with the HMM from ``model``; the held-out runs' under the result.
    ``None`` if the joint fit breaks down.
    """
    X, lengths, run_index = fit
    n_runs, d = run_index.max() + 1, X.shape[1]
    joint = fit_alignment(
        X, lengths, run_index, model, np.ones((n_runs, d)), np.zeros((n_runs, d)), options
    )
    if joint is None:
        return None
    *_, held_loglik = held_out_maps(joint.model, *held, options.tol)
    return joint.model, joint.loglik, held_loglik


def warn_few_runs(n_runs: int) -> str:
    """The warning for aligning fewer than :data:`MIN_RUNS` runs ('' for enough), logged."""
    if n_runs >= MIN_RUNS:
        return ""
    message = (
        f"normalization aligned on {n_runs} runs (fewer than {MIN_RUNS}): the per-run maps "
        "can absorb differences between groups of runs, and the states over-split"
    )
    log.warning(message)
    return message


def _closest_pairs(model: GaussianHMM, count: int) -> list[tuple[int, int]]:
    """The ``count`` state pairs with the smallest symmetric KL divergence between emissions."""
    precisions = np.linalg.inv(model.covars_)
    divergence = []
    for i in range(model.n_components):
        for j in range(i + 1, model.n_components):
            delta = model.means_[i] - model.means_[j]
            spread = np.trace(precisions[j] @ model.covars_[i] + precisions[i] @ model.covars_[j])
            divergence.append((spread + delta @ (precisions[i] + precisions[j]) @ delta, i, j))
    return [(i, j) for _, i, j in sorted(divergence)[:count]]


def _merged(
    alignment: Alignment,
    pair: tuple[int, int],
    X: np.ndarray,
    lengths: np.ndarray,
    run_index: np.ndarray,
    options: hmm.FitOptions,
) -> Alignment | None:
    """Fit with one state fewer, started from ``alignment`` with the states of ``pair`` merged."""
    i, j = pair
    Y = X * alignment.scale[run_index] + alignment.offset[run_index]
    gamma = alignment.model.predict_proba(Y, lengths)
    gamma[:, i] += gamma[:, j]
    gamma = np.delete(gamma, j, axis=1)
    k = gamma.shape[1]
    occupancy = gamma.sum(axis=0)
    means = gamma.T @ Y / occupancy[:, None]
    covars = np.stack(
        [
            (gamma[:, s, None] * (Y - means[s])).T @ (Y - means[s]) / occupancy[s]
            + options.min_covar * np.eye(Y.shape[1])
            for s in range(k)
        ]
    )
    uniform = (np.full(k, 1 / k), np.full((k, k), 1 / k))
    model = _continue((*uniform, means, covars), Y, lengths, options, options.n_iter)
    if model is None:
        return None
    return fit_alignment(X, lengths, run_index, model, alignment.scale, alignment.offset, options)


def search(
    X: np.ndarray, lengths: np.ndarray, run_index: np.ndarray, k_max: int, options: hmm.FitOptions
) -> tuple[Alignment, pd.DataFrame]:
    """The joint fit with the lowest BIC over k = k_max..1, and every start's score (a table)."""
    n_runs, d = run_index.max() + 1, X.shape[1]
    identity = np.ones((n_runs, d)), np.zeros((n_runs, d))
    rows, best = [], {}
    for k in range(k_max, 0, -1):
        fits = [("pooled fit", _pooled_start(X, lengths, run_index, k, identity, options))]
        if k + 1 in best:
            fits += [
                (
                    f"merge {i}+{j} of k+1",
                    _merged(best[k + 1], (i, j), X, lengths, run_index, options),
                )
                for i, j in _closest_pairs(best[k + 1].model, MERGES)
            ]
        for start, alignment in fits:
            if alignment is None:
                log.warning("alignment k=%d from %s failed", k, start)
                continue
            n_params = hmm.n_parameters(k, d, options.covariance_type)
            bic = -2 * alignment.loglik + n_params * np.log(len(X))
            rows.append(
                {
                    "k": k,
                    "start": start,
                    "loglik": alignment.loglik,
                    "bic": bic,
                    "rounds": alignment.rounds,
                }
            )
            if k not in best or alignment.loglik > best[k].loglik:
                best[k] = alignment
    if not best:
        raise TrainmapError("every per-run alignment failed (normalization: aligned)")
    table = pd.DataFrame(rows)
    per_k = table.loc[table.groupby("k")["loglik"].idxmax()]
    chosen = int(per_k.loc[per_k["bic"].idxmin(), "k"])
    table["chosen"] = (table["k"] == chosen) & table.index.isin(per_k.index)
    return best[chosen], table


def _pooled_start(
    X: np.ndarray,
    lengths: np.ndarray,
    run_index: np.ndarray,
    k: int,
    identity: tuple[np.ndarray, np.ndarray],
    options: hmm.FitOptions,
) -> Alignment | None:
    """Fit with every map the identity, started from the best restart on the unmapped z-scores."""
    model = hmm.best_restart(X, lengths, k, options)
    if model is None:
        return None
    return fit_alignment(X, lengths, run_index, model, *identity, options)


def align_runs(
    zscores: pd.DataFrame,
    metrics: list[str],
    k_max: int,
    options: hmm.FitOptions,
    max_checkpoints: int = 1000,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pooled z-scores with each run's per-metric affine map removed; the search's table.

    The maps of the joint fit with the lowest BIC over k = ``k_max``..1
    (:func:`search`) are applied, then the metrics are standardised again, pooled
    over the first ``max_checkpoints`` of each run, so that the aligned z-scores
    keep unit spread. The table has one row per k and start: joint
    log-likelihood, BIC, rounds, and which fit was chosen.
    """
    zscores = zscores.sort_values([RUN, STEP], kind="stable").reset_index(drop=True)
    X, lengths = hmm.sequences(zscores, metrics)
    run_index = pd.factorize(zscores[RUN], sort=True)[0]
    warn_few_runs(int(run_index.max()) + 1)
    best, table = search(X, lengths, run_index, k_max, options)
    aligned = X * best.scale[run_index] + best.offset[run_index]
    window = zscores.groupby(RUN, sort=False).cumcount().to_numpy() < max_checkpoints
    zscores[metrics] = (aligned - aligned[window].mean(axis=0)) / aligned[window].std(axis=0)
    log.info(
        "per-run alignment: %d states by joint BIC, per-run scales %.2f..%.2f\n%s",
        best.model.n_components,
        best.scale.min(),
        best.scale.max(),
        table.to_string(index=False),
    )
    return zscores, table
