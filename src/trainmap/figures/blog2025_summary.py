"""The blog post's phases of one run as a Markdown report (``results/blog2025/summary.md``).

Memorisation and generalisation (:func:`trainmap.analysis.phases.phase_events`, read
from the phase-events table), the hidden states the HMM decodes on the run and the
phases they cover, and whether the sharpest turn of the PCA trajectory coincides
with the fastest drop of the validation loss.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainmap.analysis.phases import state_phases, turn_comparison
from trainmap.figures.blog2025 import Label
from trainmap.tables import EPOCH, to_markdown

PHASE_NOTE = (
    "Phases: memorisation = before the train accuracy reaches the threshold, "
    "generalisation = from then until the validation accuracy reaches the convergence "
    "threshold, convergence = after. `phases` gives the share of the state's "
    "checkpoints in each; `visits` counts the separate stretches the run spends there."
)


def summary_markdown(
    curve: pd.DataFrame,
    events: pd.DataFrame,
    pca_events: pd.DataFrame,
    variance: pd.DataFrame,
    tolerance: float,
    k: int,
    label: Label,
) -> str:
    """The blog's phases against memorisation and generalisation, as Markdown.

    Parameters
    ----------
    curve
        The run's rows with their decoded ``state`` (:func:`trainmap.analysis.phases.run_states`).
    events
        The phase events (:func:`trainmap.analysis.phases.phase_events`).
    pca_events
        The turn and the fastest drop (:func:`trainmap.analysis.pca.run_trajectory`).
    variance
        The PCA's explained variance per component.
    tolerance
        The largest gap between turn and drop, as a share of the run, that counts as
        coinciding.
    k
        The number of hidden states of the HMM.
    label
        What the report is made from.
    """
    span = float(curve[EPOCH].iloc[-1] - curve[EPOCH].iloc[0])
    comparison = turn_comparison(pca_events, span, tolerance)
    closing = _closing(comparison.iloc[0], tolerance)
    explained = variance.head(5).assign(
        explained_variance_ratio=lambda v: v["explained_variance_ratio"].map("{:.1%}".format),
        cumulative=lambda v: v["cumulative"].map("{:.1%}".format),
    )
    events_text = events.assign(
        epoch=events[EPOCH].map(lambda e: "never" if np.isnan(e) else f"{e:g}")
    )
    sections = [
        "# Blog post (Hu et al. 2025): phases of one run",
        f"{label.text()}.",
        "## Memorisation and generalisation",
        to_markdown(events_text),
        f"## Hidden states (HMM with {k} state(s), decoded for run {label.run})",
        PHASE_NOTE,
        to_markdown(state_phases(curve, events), float_format="{:.3g}"),
        "## PCA of per-example validation losses",
        to_markdown(explained),
        to_markdown(comparison, float_format="{:.4g}"),
        closing,
    ]
    return "\n\n".join(sections) + "\n"


def _closing(c: pd.Series, tolerance: float) -> str:
    """The verdict on the sharpest turn against the fastest drop of the validation loss."""
    verdict = "coincide" if c["coincide"] else "do not coincide"
    closing = (
        f"The sharpest turn of the PCA trajectory (epoch {c['turn_epoch']:g}) and the "
        f"fastest drop of the validation loss (epoch {c['fastest_drop_epoch']:g}) "
        f"**{verdict}** (gap {c['gap_epochs']:g} epochs; tolerance {tolerance:.0%} of the "
        f"run, {c['tolerance_epochs']:.3g} epochs)."
    )
    if np.isnan(c["fastest_drop_epoch"]):
        closing = (
            "The validation loss never falls, so there is no drop to compare with the "
            f"sharpest turn of the PCA trajectory (epoch {c['turn_epoch']:g})."
        )
    return closing
