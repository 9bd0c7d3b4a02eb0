"""How stable is a training map? Decodings and edges across restarts and resampled runs.

No original reports this. The chosen HMM (k states, fitted on all runs) is the
reference. Every other restart of the same fit, and a refit on each bootstrap
resample of the runs (drawn with replacement, one seeded restart each), decodes
every run again; its states are matched to the reference states by maximum
overlap (Hungarian assignment), and we record the adjusted Rand index against
the reference decoding and which edges of the map it has.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score

from trainmap.analysis import hmm
from trainmap.analysis.hmm import STATE
from trainmap.analysis.training_map import transitions
from trainmap.tables import RUN, STEP

log = logging.getLogger(__name__)


def matched(reference: np.ndarray, other: np.ndarray, k: int) -> np.ndarray:
    """``other``'s state labels renamed to the reference states they overlap most."""
    overlap = np.zeros((k, k))
    np.add.at(overlap, (other, reference), 1)
    rows, columns = linear_sum_assignment(-overlap)
    mapping = np.empty(k, dtype=np.int64)
    mapping[rows] = columns
    return mapping[other]


def edge_set(states: pd.DataFrame) -> set[tuple[int, int]]:
    """The map's edges: every (source, target) some decoded run takes."""
    moves = transitions(states)
    return set(zip(moves["source"], moves["target"], strict=True))


def stability(
    zscores: pd.DataFrame,
    metrics: list[str],
    reference: pd.DataFrame,
    options: hmm.FitOptions,
    resamples: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Replicates (restarts and bootstrap refits) of the reference map: ``(replicates, edges)``.

    ``reference``: the decoded states of the chosen model (rule fit_hmm). One row
    per replicate (``kind`` restart or bootstrap): ARI against the reference, edges
    found, reference edges missing. One row per edge seen anywhere: whether the
    reference has it, and how often it appears across restarts and resamples.
    """
    zscores = zscores.sort_values([RUN, STEP], kind="stable").reset_index(drop=True)
    reference = reference.sort_values([RUN, STEP], kind="stable").reset_index(drop=True)
    k = int(reference[STATE].max()) + 1
    runs = np.sort(zscores[RUN].unique())
    arrays = {run: part[metrics].to_numpy(dtype=float) for run, part in zscores.groupby(RUN)}
    reference_edges = edge_set(reference)
    rows, seen = [], []
    for fit in _replicate_fits(options, runs, resamples, k):
        decoded = _decoded_replicate(fit, arrays, zscores, metrics, reference, k)
        if decoded is None:
            rows.append({"kind": fit.kind, "replicate": fit.replicate, "ari": np.nan})
            continue
        edges = edge_set(decoded)
        seen.append((fit.kind, edges))
        rows.append(
            {
                "kind": fit.kind,
                "replicate": fit.replicate,
                "ari": adjusted_rand_score(reference[STATE], decoded[STATE]),
                "edges": len(edges),
                "reference_edges_missing": len(reference_edges - edges),
                "new_edges": len(edges - reference_edges),
            }
        )
    replicates = pd.DataFrame(rows).reindex(
        columns=["kind", "replicate", "ari", "edges", "reference_edges_missing", "new_edges"]
    )
    edges = _edge_table(reference_edges, seen)
    log.info(
        "%d states: median ARI %.2f over restarts, %.2f over %d resamples",
        k,
        replicates.loc[replicates["kind"] == "restart", "ari"].median(),
        replicates.loc[replicates["kind"] == "bootstrap", "ari"].median(),
        resamples,
    )
    return replicates, edges


class _Replicate(NamedTuple):
    """One refit of the map: a restart on all runs, or a seeded fit on resampled runs."""

    kind: str  # restart or bootstrap
    replicate: int
    options: hmm.FitOptions
    drawn: np.ndarray  # the runs it is fitted on


def _replicate_fits(
    options: hmm.FitOptions, runs: np.ndarray, resamples: int, k: int
) -> list[_Replicate]:
    """Every restart, then every bootstrap resample with its own seed."""
    rng = np.random.default_rng([options.seed, k])
    fits = [_Replicate("restart", r, options, runs) for r in range(options.restarts)]
    for b in range(resamples):
        drawn = rng.choice(runs, size=len(runs), replace=True)
        seed = int(rng.integers(2**31))
        fits.append(
            _Replicate("bootstrap", b, hmm.FitOptions(**{**vars(options), "seed": seed}), drawn)
        )
    return fits


def _decoded_replicate(
    fit: _Replicate,
    arrays: dict,
    zscores: pd.DataFrame,
    metrics: list[str],
    reference: pd.DataFrame,
    k: int,
) -> pd.DataFrame | None:
    """Every run decoded by the refit, its states matched to the reference's; None: no fit."""
    X = np.concatenate([arrays[run] for run in fit.drawn])
    lengths = np.array([len(arrays[run]) for run in fit.drawn])
    restart = fit.replicate if fit.kind == "restart" else 0
    model = hmm.fit_restart(X, lengths, k, restart, fit.options)
    if model is None:
        return None
    decoded = hmm.decode(model, zscores, metrics)
    decoded[STATE] = matched(reference[STATE].to_numpy(), decoded[STATE].to_numpy(), k)
    return decoded


def _edge_table(
    reference_edges: set[tuple[int, int]], seen: list[tuple[str, set[tuple[int, int]]]]
) -> pd.DataFrame:
    """One row per edge seen anywhere: in the reference, and how often in each kind."""
    every_edge = sorted(reference_edges.union(*(edges for _, edges in seen)))
    frequency = {
        f"{kind}_frequency": [
            np.mean([edge in edges for k_, edges in seen if k_ == kind])
            if any(k_ == kind for k_, _ in seen)
            else np.nan
            for edge in every_edge
        ]
        for kind in ("restart", "bootstrap")
    }
    return pd.DataFrame(
        {
            "source": [s for s, _ in every_edge],
            "target": [t for _, t in every_edge],
            "in_reference": [edge in reference_edges for edge in every_edge],
            **frequency,
        }
    )


def summary_row(replicates: pd.DataFrame, edges: pd.DataFrame, stable: float = 0.9) -> dict:
    """One row of the stability table: ARI spread and how many reference edges are stable."""
    restarts = replicates.loc[replicates["kind"] == "restart", "ari"]
    boot = replicates.loc[replicates["kind"] == "bootstrap", "ari"]
    # An empty edge table reads back with object columns: a boolean mask keeps its columns.
    reference = edges.loc[edges["in_reference"].astype(bool)]
    weakest = reference.sort_values("bootstrap_frequency", kind="stable").head(1)
    return {
        "Restarts": len(restarts),
        "ARI across restarts (min)": restarts.min(),
        "Resamples": len(boot),
        "ARI across resamples (median)": boot.median(),
        "ARI across resamples (5%)": boot.quantile(0.05) if len(boot) else np.nan,
        "Map edges": len(reference),
        f"Edges in >= {stable:.0%} of resamples": int(
            (reference["bootstrap_frequency"] >= stable).sum()
        ),
        "Least stable edge": (
            f"{weakest['source'].iloc[0]} → {weakest['target'].iloc[0]} "
            f"({weakest['bootstrap_frequency'].iloc[0]:.0%})"
            if len(weakest)
            else ""
        ),
        "New edges (mean per resample)": replicates.loc[
            replicates["kind"] == "bootstrap", "new_edges"
        ].mean(),
    }
