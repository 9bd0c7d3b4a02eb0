"""Run the whole analysis on a table with a known truth and score what it recovers.

The same functions as the workflow's analysis rules, in the same order
(normalize → align with ``normalization: aligned`` → sweep over k → select →
fit → decode → convergence → regression), driven by the settings of the
config's ``analysis`` section. Scores: true and chosen k, the adjusted Rand
index of the decoded states against the true ones (raw, no merging of states),
detour precision and recall (also on the true states), and whether the map
forks. ``benchmarks/recovery.py`` runs every scenario of
:data:`trainmap.analysis.synthetic.SCENARIOS`; the tests run a few.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from trainmap.analysis import align, hmm, normalize, regression, training_map
from trainmap.analysis.hmm import STATE
from trainmap.analysis.synthetic import Scenario
from trainmap.tables import RUN, STEP

#: FitOptions fields among the analysis settings.
FIT_KEYS = ("restarts", "seed", "n_iter", "tol", "min_covar", "covariance_type", "init")


def fit_options(settings: Mapping[str, Any]) -> hmm.FitOptions:
    """The HMM fit options of an ``analysis`` config section."""
    return hmm.FitOptions(**{key: settings[key] for key in FIT_KEYS})


def regression_options(settings: Mapping[str, Any]) -> regression.RegressionOptions:
    """The regression options of an ``analysis`` config section (absent keys: the defaults)."""
    names = [f.name for f in fields(regression.RegressionOptions)]
    return regression.RegressionOptions(**{key: settings[key] for key in names if key in settings})


def analyse_table(
    table: pd.DataFrame, metrics: list[str], settings: Mapping[str, Any], threshold: float = 0.9
) -> dict[str, pd.DataFrame]:
    """The analysis of one metrics table, as the workflow runs it; its main tables.

    ``settings``: the keys of the config's ``analysis`` section; ``threshold``:
    the evaluation accuracy that counts as converged.
    """
    zscores, split = normalize.normalize_runs(
        table,
        metrics,
        max_checkpoints=settings["zscore_checkpoints"],
        min_length=settings["k_max"],
        normalization=settings["normalization"],
        selection=settings["selection"],
        folds=settings["folds"],
        held_out_fraction=settings["held_out_fraction"],
        seed=settings["seed"],
    )
    metrics = normalize.zscore_metrics(zscores)
    options = fit_options(settings)
    aligned = settings["normalization"] == "aligned"
    pooled = zscores
    if aligned:
        zscores, _ = align.align_runs(
            zscores, metrics, settings["k_max"], options, settings["zscore_checkpoints"]
        )
    sweep = pd.concat(
        [
            hmm.sweep(pooled, split, metrics, k, options, aligned)
            for k in range(1, settings["k_max"] + 1)
        ],
        ignore_index=True,
    )
    sweep, selection = hmm.extend_sweep(
        pooled,
        split,
        metrics,
        sweep,
        options,
        settings["k_max"] + settings["k_extend"],
        settings["criterion"],
        settings["one_standard_error"],
        aligned,
    )
    model = hmm.fit(zscores, metrics, hmm.chosen_k(selection), options)
    states = hmm.decode(model, zscores, metrics)
    params = hmm.HMMParams(model.startprob_, model.transmat_, model.means_, model.covars_, metrics)
    convergence = regression.convergence_times(table, threshold, settings["unconverged"])
    summary, coefficients = regression.analyse(
        states, params, convergence, regression_options(settings)
    )
    return {
        "selection": selection,
        "states": states,
        "convergence": convergence,
        "summary": summary,
        "coefficients": coefficients,
    }


def recall(called: set[int], detours: frozenset[int]) -> float:
    """The fraction of the true detours among the called states (NaN with no true detour)."""
    return len(called & detours) / len(detours) if detours else np.nan


def score(
    scenario: Scenario,
    table: pd.DataFrame,
    result: Mapping[str, pd.DataFrame],
    settings: Mapping[str, Any],
) -> dict:
    """How well an analysis recovered a scenario's truth.

    Each decoded state stands for the true state most of its checkpoints are in;
    a called detour is correct when that true state is a detour. Precision is
    NaN when nothing is called, recall when there is no true detour. The
    oracle recall is that of the same regression on the *true* states: what the
    sampled convergence times allow at all, so that a miss it shares is the
    sample's lack of power, not the decoding's fault.
    """
    truth = table.sort_values([RUN, STEP], kind="stable")[STATE].to_numpy()
    decoded = result["states"].sort_values([RUN, STEP], kind="stable")[STATE].to_numpy()
    majority = pd.crosstab(decoded, truth).idxmax(axis=1)
    called = [int(s) for s in result["summary"].loc[0, "detours"].split()]
    found = {int(majority[s]) for s in called}
    correct = [s for s in called if majority[s] in scenario.detours]
    truth_occupancy = training_map.occupancy_fractions(table, scenario.params.k)
    oracle_summary, _ = regression.regress(
        truth_occupancy, result["convergence"], regression_options(settings)
    )
    oracle = {int(s) for s in oracle_summary["detours"].split()}
    moves = training_map.transitions(result["states"])[["source", "target"]].drop_duplicates()
    chosen = result["selection"].loc[result["selection"]["chosen"]].iloc[0]
    summary = result["summary"].iloc[0]
    return {
        "scenario": scenario.name,
        "runs": scenario.n_runs,
        "true_k": scenario.params.k,
        "chosen_k": int(chosen["k"]),
        "at_edge": bool(chosen["at_edge"]),
        "ari": adjusted_rand_score(truth, decoded),
        "detours_called": len(called),
        "detours_correct": len(correct),
        "true_detours": len(scenario.detours),
        "true_detours_found": len(found & scenario.detours),
        "detour_precision": len(correct) / len(called) if called else np.nan,
        "detour_recall": recall(found, scenario.detours),
        "oracle_recall": recall(oracle, scenario.detours),
        "false_detours": " ".join(str(s) for s in called if majority[s] not in scenario.detours),
        "true_forking": scenario.forking,
        "forking": training_map.is_forking(moves, training_map.node_table(result["states"])),
        "rsquared": summary["rsquared"],
        "rsquared_heldout": summary["rsquared_heldout"],
        "underpowered": bool(summary["underpowered"]),
    }
