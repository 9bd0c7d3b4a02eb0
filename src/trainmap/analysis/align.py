"""Remove each run's own offset and scale of every metric by aligning the run to a pooled HMM.

Runs can differ by a per-run affine map of each metric (weights that start at
another scale, a metric with a run-specific baseline). Per-run z-scores (the
paper) remove such a map but also shift each run by the mean of the states it
visits; pooled z-scores keep the map, and the HMM spends extra states on it
(``benchmarks/recovery.py``, scenario "per-run offsets, scales"). Here, as
feature-space adaptation of an HMM to each speaker in speech recognition
(constrained MLLR, Gales 1998, "Maximum likelihood linear transformations for
HMM-based speech recognition", restricted to a diagonal transform), metric j of
run r is modelled as ``a_rj + b_rj * m_tj``, ``m_t`` the HMM's mean at
checkpoint t: in each round an HMM is fitted on all runs, ``(a, b)`` of every
run and metric are fitted by least squares against the posterior mean of the
run's checkpoints, and the map is inverted. The estimate does not depend on
which states a run visits, only on the run following the shared state means.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from trainmap.analysis import hmm
from trainmap.tables import RUN, STEP

log = logging.getLogger(__name__)

#: A fitted scale below this (or a run whose posterior mean of a metric is
#: constant) does not follow the state means: only its offset is removed.
MIN_SCALE = 0.1


def affine_fit(observed: np.ndarray, expected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column, least-squares ``observed ≈ offset + scale * expected``: ``(offset, scale)``.

    A column whose ``expected`` is constant, or whose scale comes out below
    :data:`MIN_SCALE`, gets scale 1 and only an offset.
    """
    centred = expected - expected.mean(axis=0)
    spread = (centred**2).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = (centred * (observed - observed.mean(axis=0))).sum(axis=0) / spread
    scale = np.where(np.isfinite(scale) & (scale >= MIN_SCALE), scale, 1.0)
    offset = observed.mean(axis=0) - scale * expected.mean(axis=0)
    return offset, scale


def align_runs(
    zscores: pd.DataFrame,
    metrics: list[str],
    k: int,
    options: hmm.FitOptions,
    rounds: int = 3,
    max_checkpoints: int = 1000,
) -> pd.DataFrame:
    """Pooled z-scores with each run's per-metric affine map removed (``rounds`` rounds).

    Each round fits a ``k``-state HMM on all runs (``options``' restarts), takes
    the posterior mean ``m_t`` of every checkpoint, fits ``z = a + b m`` per run
    and metric (:func:`affine_fit`), replaces z by ``(z - a) / b`` and
    standardises again, pooled over the first ``max_checkpoints`` of each run,
    so that the alignment does not drift in overall location or scale.
    """
    zscores = zscores.sort_values([RUN, STEP], kind="stable").reset_index(drop=True)
    runs = zscores[RUN].to_numpy()
    window = zscores.groupby(RUN, sort=False).cumcount().to_numpy() < max_checkpoints
    for round_ in range(rounds):
        X, lengths = hmm.sequences(zscores, metrics)
        model = hmm.fit(zscores, metrics, k, options)
        expected = model.predict_proba(X, lengths) @ model.means_
        aligned = np.empty_like(X)
        scales = []
        for run in np.unique(runs):
            rows = runs == run
            offset, scale = affine_fit(X[rows], expected[rows])
            aligned[rows] = (X[rows] - offset) / scale
            scales.append(scale)
        aligned = (aligned - aligned[window].mean(axis=0)) / aligned[window].std(axis=0)
        scales = np.concatenate(scales)
        log.info(
            "alignment round %d (k=%d): per-run scales %.2f..%.2f, mean change %.3f",
            round_ + 1,
            k,
            scales.min(),
            scales.max(),
            float(np.abs(aligned - X).mean()),
        )
        zscores[metrics] = aligned
    return zscores
