"""The training map: hidden states as nodes, transitions some run takes as edges.

Hu et al. (2023), section 2.2 and appendix A. Each edge j → k is labelled with
the most important features of k (the posterior-derivative measure, averaged over
the checkpoints where a run moves from j to k), the change of learned means
µ_k − µ_j of those features in z-score units, the number of runs using the edge
and, for edges out of the start state, the mean convergence time ± standard error
of the runs that take it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import csr_array
from scipy.sparse.csgraph import connected_components
from scipy.stats import f_oneway

from trainmap.analysis.hmm import STATE, HMMParams, sequences
from trainmap.tables import METRIC_LABELS, RUN, STEP


def transitions(states: pd.DataFrame) -> pd.DataFrame:
    """Every change of state in the decoded runs.

    Columns ``run``, ``step``, ``position`` (checkpoint index in the run), ``source``, ``target``.
    """
    states = states.sort_values([RUN, STEP], kind="stable").reset_index(drop=True)
    position = states.groupby(RUN).cumcount()
    previous = states.groupby(RUN)[STATE].shift()
    moved = previous.notna() & (previous != states[STATE])
    return pd.DataFrame(
        {
            RUN: states.loc[moved, RUN].to_numpy(),
            STEP: states.loc[moved, STEP].to_numpy(),
            "position": position[moved].to_numpy(),
            "source": previous[moved].astype(np.int64).to_numpy(),
            "target": states.loc[moved, STATE].to_numpy(),
        }
    )


def start_state(states: pd.DataFrame) -> int:
    """The state most runs start in (ties: the lowest)."""
    first = states.sort_values([RUN, STEP], kind="stable").groupby(RUN)[STATE].first()
    counts = first.value_counts()
    return int(counts[counts == counts.max()].index.min())


def feature_label(metric: str, change: float) -> str:
    """E.g. ``L2 ↓0.59``: the metric and the signed change of learned means."""
    return f"{METRIC_LABELS.get(metric, metric)} {'↑' if change >= 0 else '↓'}{abs(change):.2f}"


def edge_table(
    states: pd.DataFrame,
    zscores: pd.DataFrame,
    params: HMMParams,
    convergence: pd.DataFrame | None = None,
    top: int = 3,
) -> pd.DataFrame:
    """One row per edge some decoded run uses, sorted by source then target.

    ``convergence`` (from :func:`trainmap.analysis.regression.convergence_times`)
    adds the mean convergence time ± standard error of the runs taking each edge
    out of the start state (of those that have a time).
    """
    moves = transitions(states)
    n_runs = states[RUN].nunique()
    start = start_state(states)
    # |∂ log p(s_t = k | z_1:t) / ∂z_t| at every checkpoint where a run enters k.
    importance: dict[tuple[int, int], list[np.ndarray]] = {}
    for run, run_moves in moves.groupby(RUN):
        X, _ = sequences(zscores, params.metrics, [run])
        gradients = params.posterior_gradients(X)
        for position, source, target in run_moves[["position", "source", "target"]].itertuples(
            index=False
        ):
            importance.setdefault((source, target), []).append(np.abs(gradients[position, target]))
    rows = []
    for (source, target), group in moves.groupby(["source", "target"], sort=True):
        mean_importance = np.mean(importance[(source, target)], axis=0)
        order = np.argsort(-mean_importance, kind="stable")[:top]
        change = params.means[target] - params.means[source]
        runs = np.sort(group[RUN].unique())
        row = {
            "source": source,
            "target": target,
            "runs": len(runs),
            "runs_total": n_runs,
            "transitions": len(group),
            "from_start": source == start,
            "run_ids": " ".join(map(str, runs)),
        }
        for i, f in enumerate(order, 1):
            row[f"feature_{i}"] = params.metrics[f]
            row[f"change_{i}"] = change[f]
            row[f"importance_{i}"] = mean_importance[f]
        if convergence is not None and source == start:
            # Runs dropped as unconverged have no time: the mean is over the others.
            times = convergence.set_index(RUN)["time"].reindex(runs).dropna()
            row["mean_convergence"] = times.mean()
            row["sem_convergence"] = times.std(ddof=1) / np.sqrt(len(times))
            row["convergence_unit"] = convergence["unit"].iloc[0]
        rows.append(row)
    columns = ["source", "target", "runs", "runs_total", "transitions", "from_start", "run_ids"]
    columns += [f"{c}_{i}" for i in range(1, top + 1) for c in ("feature", "change", "importance")]
    columns += ["mean_convergence", "sem_convergence", "convergence_unit"]
    table = pd.DataFrame(rows).reindex(columns=columns)  # every column, even with no edges
    table["label"] = [edge_label(row, top) for row in table.to_dict("records")]
    return table


def edge_label(row: dict, top: int = 3) -> str:
    """The paper's edge annotation: top features with changes, runs, convergence."""
    features = [
        feature_label(row[f"feature_{i}"], row[f"change_{i}"])
        for i in range(1, top + 1)
        if isinstance(row.get(f"feature_{i}"), str)
    ]
    lines = [", ".join(features), f"{row['runs']}/{row['runs_total']} runs"]
    if pd.notna(row.get("mean_convergence")):
        sem = row["sem_convergence"]
        spread = f" ± {sem:.3g}" if pd.notna(sem) else ""
        lines.append(f"converge {row['mean_convergence']:.4g}{spread} {row['convergence_unit']}s")
    return "\n".join(lines)


def node_table(states: pd.DataFrame) -> pd.DataFrame:
    """Per visited state: runs visiting it, runs starting there, mean occupancy."""
    occupancy = occupancy_fractions(states)
    first = states.sort_values([RUN, STEP], kind="stable").groupby(RUN)[STATE].first()
    visited = occupancy.columns[(occupancy > 0).any()]
    return pd.DataFrame(
        {
            STATE: visited.to_numpy(dtype=np.int64),
            "runs_visiting": (occupancy[visited] > 0).sum().to_numpy(),
            "runs_starting": [int((first == s).sum()) for s in visited],
            "mean_occupancy": occupancy[visited].mean().to_numpy(),
        }
    )


def occupancy_fractions(states: pd.DataFrame, k: int | None = None) -> pd.DataFrame:
    """The empirical state distribution of each run (section 2.3): runs × states."""
    k = int(states[STATE].max()) + 1 if k is None else k
    counts = pd.crosstab(states[RUN], states[STATE]).reindex(columns=range(k), fill_value=0)
    return counts.div(counts.sum(axis=1), axis=0)


def is_forking(edges: pd.DataFrame, nodes: pd.DataFrame) -> bool:
    """Whether the map forks: runs part ways along paths that do not return.

    A fork is a state that runs leave along different paths that do not return to
    it. States that runs move back and forth between form a cycle (0 ↔ 1, or
    0 → 1 → 2 → 0): a run that leaves one of them for another comes back, so a
    cycle is one place, not a fork. With every cycle merged into one node (the
    strongly connected components of the edges), the map forks when a node has
    edges to two others, or when two nodes have no edge in (runs that start apart,
    as if parting at the start of training); otherwise it is one path (Hu et al.
    2023, table 1: "forking unless they are linear"). Identical runs, one walk
    through the states, never fork.
    """
    index = pd.Index(nodes[STATE])
    sources, targets = index.get_indexer(edges["source"]), index.get_indexer(edges["target"])
    graph = csr_array((np.ones(len(sources)), (sources, targets)), shape=(len(index),) * 2)
    n_places, place = connected_components(graph, directed=True, connection="strong")
    moves = {(a, b) for a, b in zip(place[sources], place[targets], strict=True) if a != b}
    leaving = [a for a, _ in moves]
    entered = {b for _, b in moves}
    return len(set(leaving)) < len(leaving) or n_places - len(entered) > 1


def exit_times_pvalue(groups: list[np.ndarray]) -> float:
    """p-value of a one-way ANOVA: do the runs leaving the start state by different edges
    converge at different mean times? (one group of times per edge).

    The error variance is pooled within edges, so an edge taken by a single run counts
    with the others' spread rather than with none. NaN with fewer than two edges or no
    edge taken by two runs (no within-edge spread to compare with).
    """
    groups = [np.asarray(g, dtype=float) for g in groups if len(g)]
    if len(groups) < 2 or sum(len(g) for g in groups) <= len(groups):
        return float("nan")
    if np.ptp(np.concatenate(groups)) == 0:
        return 1.0
    return float(f_oneway(*groups).pvalue)
