"""Figures of the blog post "How to visualize training dynamics in neural networks".

Hu, Jain, Chaulagain and Saphra (ICLR 2025 blog track), on one modular-addition
run: the loss curves, the PCA trajectory of per-example validation losses beside
the loss curve, the loss curve coloured by HMM state, the state graph, and a
Markdown summary of the phases.

Interactive figures are self-contained plotly HTML (plotly.js inlined, so they
open without a network); every PNG is drawn with matplotlib. Every figure's
title says what it is made from (:class:`Label`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import graphviz
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from matplotlib.colors import to_hex
from plotly.subplots import make_subplots

from trainmap.analysis.hmm import STATE
from trainmap.errors import TrainmapError
from trainmap.tables import (
    EPOCH,
    EVAL_ACC,
    EVAL_LOSS,
    RUN,
    STEP,
    TRAIN_ACC,
    TRAIN_LOSS,
    atomic_output,
    to_markdown,
)

#: Colour scale for epochs, the same in the HTML and the PNG figures.
EPOCH_COLOURS = "viridis"
#: One colour per hidden state (matplotlib's tab10), the same in every figure.
STATE_COLOURS: tuple[str, ...] = tuple(to_hex(c) for c in plt.get_cmap("tab10").colors)
TRAIN_COLOUR, EVAL_COLOUR = "#1f77b4", "#d62728"
#: At most about this many checkpoints get an epoch-coloured marker on a PNG loss curve.
MARKED_CHECKPOINTS = 60
TURN_EVENT, DROP_EVENT = "sharpest PCA turn", "fastest validation-loss drop"


@dataclass(frozen=True)
class Label:
    """What a figure is made from; :meth:`text` is printed under its title."""

    title: str
    scale: str
    run: int
    runs: int | None = None
    examples: int | None = None

    def text(self) -> str:
        parts = [self.title, f"scale: {self.scale}", f"run (seed) {self.run}"]
        if self.runs is not None:
            parts.append(f"{self.runs} run{'s' if self.runs != 1 else ''}")
        if self.examples is not None:
            parts.append(f"{self.examples} validation examples")
        return " · ".join(parts)


def state_colour(state: int) -> str:
    """The colour of a hidden state."""
    return STATE_COLOURS[state % len(STATE_COLOURS)]


def write_html(figure: go.Figure, path: str | Path) -> None:
    """Write a self-contained HTML file (plotly.js inlined: no network needed)."""
    with atomic_output(path) as tmp:
        figure.write_html(tmp, include_plotlyjs=True, full_html=True)


def save_png(figure: plt.Figure, path: str | Path) -> None:
    """Write a matplotlib figure as PNG and close it."""
    with atomic_output(path) as tmp:
        figure.savefig(tmp, dpi=130, bbox_inches="tight")
    plt.close(figure)


def _event_epochs(events: pd.DataFrame) -> dict[str, float]:
    return dict(zip(events["event"], events[EPOCH], strict=True))


def _title(name: str, label: Label) -> str:
    return f"{name}<br><sup>{label.text()}</sup>"


# ---------------------------------------------------------------- loss curves


def _loss_axis(
    ax: plt.Axes, rows: pd.DataFrame, alpha: float = 1.0, suffix: str | None = ""
) -> None:
    """Train and validation loss on a log scale; ``suffix=None`` leaves them out of the legend."""
    for column, colour, name in (
        (TRAIN_LOSS, TRAIN_COLOUR, "train loss"),
        (EVAL_LOSS, EVAL_COLOUR, "validation loss"),
    ):
        text = "_nolegend_" if suffix is None else name + suffix
        ax.plot(rows[EPOCH], rows[column], color=colour, alpha=alpha, lw=1.2, label=text)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (log scale)")
    ax.legend(loc="best", fontsize=8)


def loss_curves_png(table: pd.DataFrame, label: Label, path: str | Path) -> None:
    """Train and validation loss of every run, the shown run drawn bold (post: ``loss_curve``)."""
    figure, ax = plt.subplots(figsize=(7, 4.2))
    others = [rows for run, rows in table.groupby(RUN) if run != label.run]
    for i, rows in enumerate(others):
        _loss_axis(ax, rows, alpha=0.2, suffix=" (other runs)" if i == 0 else None)
    _loss_axis(ax, table[table[RUN] == label.run], suffix=f" (run {label.run})")
    ax.set_title(f"Loss curves\n{label.text()}", fontsize=9)
    save_png(figure, path)


def run_curves_png(
    rows: pd.DataFrame, events: pd.DataFrame, label: Label, path: str | Path
) -> None:
    """Loss (log scale) and accuracy of one run, phase events marked (``pca_loss_curve``)."""
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    _loss_axis(top, rows)
    top.set_xlabel("")
    bottom.plot(rows[EPOCH], rows[TRAIN_ACC], color=TRAIN_COLOUR, label="train accuracy")
    bottom.plot(rows[EPOCH], rows[EVAL_ACC], color=EVAL_COLOUR, label="validation accuracy")
    bottom.set_ylim(-0.02, 1.02)
    bottom.set_xlabel("epoch")
    bottom.set_ylabel("accuracy")
    for (event, epoch), style in zip(
        events[["event", EPOCH]].to_numpy(), ("--", ":", "-."), strict=False
    ):
        if np.isfinite(epoch):
            for ax in (top, bottom):
                ax.axvline(epoch, color="0.3", ls=style, lw=1)
            bottom.plot([], [], color="0.3", ls=style, label=f"{event} (epoch {epoch:g})")
    bottom.legend(loc="center right", fontsize=7)
    top.set_title(f"Train and validation curves\n{label.text()}", fontsize=9)
    save_png(figure, path)


# ---------------------------------------------------------------- PCA


def _hover(trajectory: pd.DataFrame) -> tuple[np.ndarray, str]:
    data = trajectory[[EPOCH, STEP, TRAIN_LOSS, EVAL_LOSS, "subset_loss"]].to_numpy()
    template = (
        "epoch %{customdata[0]:g} (step %{customdata[1]:d})<br>"
        "train loss %{customdata[2]:.4g}<br>validation loss %{customdata[3]:.4g}<br>"
        "mean loss on the subset %{customdata[4]:.4g}<extra></extra>"
    )
    return data, template


def _epoch_markers(trajectory: pd.DataFrame, colorbar: bool, outline: str | None = None) -> dict:
    """Markers coloured by epoch; ``outline`` rings them in their curve's colour."""
    marker = {"color": trajectory[EPOCH], "colorscale": EPOCH_COLOURS, "size": 6}
    if outline:
        marker["line"] = {"color": outline, "width": 1.5}
    if colorbar:
        marker["colorbar"] = {"title": {"text": "epoch"}}
    return marker


def _component_title(variance: pd.DataFrame, i: int) -> str:
    return f"PC{i} ({variance['explained_variance_ratio'].iloc[i - 1]:.1%} of variance)"


def pca_html(
    trajectory: pd.DataFrame,
    variance: pd.DataFrame,
    events: pd.DataFrame,
    label: Label,
    path: str | Path,
) -> None:
    """The PCA trajectory coloured by epoch, epoch and losses on hover (post: ``pca.html``)."""
    customdata, template = _hover(trajectory)
    figure = go.Figure(
        go.Scatter(
            x=trajectory["pc1"],
            y=trajectory["pc2"],
            mode="lines+markers",
            line={"color": "lightgrey", "width": 1},
            marker=_epoch_markers(trajectory, colorbar=True),
            customdata=customdata,
            hovertemplate=template,
            name="checkpoints",
        )
    )
    turn = trajectory.loc[trajectory[EPOCH] == _event_epochs(events)[TURN_EVENT]].iloc[0]
    figure.add_annotation(
        x=turn["pc1"], y=turn["pc2"], text=f"sharpest turn, epoch {turn[EPOCH]:g}", arrowhead=2
    )
    figure.update_layout(
        title=_title("PCA of per-example validation losses", label),
        xaxis_title=_component_title(variance, 1),
        yaxis_title=_component_title(variance, 2),
        template="plotly_white",
        showlegend=False,
    )
    write_html(figure, path)


def pca_training_curve_html(
    trajectory: pd.DataFrame, events: pd.DataFrame, label: Label, path: str | Path
) -> None:
    """Loss curves, checkpoints coloured by epoch as in the PCA (``pca_training_curve.html``)."""
    customdata, template = _hover(trajectory)
    figure = go.Figure()
    for column, name, colour, colorbar in (
        (TRAIN_LOSS, "train loss", TRAIN_COLOUR, False),
        (EVAL_LOSS, "validation loss", EVAL_COLOUR, True),
    ):
        figure.add_trace(
            go.Scatter(
                x=trajectory[EPOCH],
                y=trajectory[column],
                mode="lines+markers",
                line={"color": colour, "width": 2.5},
                marker=_epoch_markers(trajectory, colorbar, outline=colour),
                customdata=customdata,
                hovertemplate=template,
                name=name,
            )
        )
    for (event, epoch), dash in zip(
        events[["event", EPOCH]].to_numpy(), ("dash", "dot"), strict=True
    ):
        if not np.isfinite(epoch):
            continue
        figure.add_vline(x=epoch, line_dash=dash, line_color="grey")
        figure.add_trace(  # a legend entry for the line
            go.Scatter(
                x=[None],
                y=[None],
                mode="lines",
                line={"dash": dash, "color": "grey"},
                name=f"{event} (epoch {epoch:g})",
            )
        )
    figure.update_layout(
        title=_title("Loss curves, checkpoints coloured as in the PCA", label),
        xaxis_title="epoch",
        yaxis={"title": "loss (log scale)", "type": "log"},
        template="plotly_white",
        legend={"orientation": "h", "y": -0.2},
    )
    write_html(figure, path)


def _pca_axis(ax: plt.Axes, trajectory: pd.DataFrame, variance: pd.DataFrame, turn: float):
    ax.plot(trajectory["pc1"], trajectory["pc2"], color="0.8", lw=1, zorder=1)
    points = ax.scatter(
        trajectory["pc1"],
        trajectory["pc2"],
        c=trajectory[EPOCH],
        cmap=EPOCH_COLOURS,
        s=14,
        zorder=2,
    )
    at = trajectory.loc[trajectory[EPOCH] == turn].iloc[0]
    ax.scatter([at["pc1"]], [at["pc2"]], s=160, facecolors="none", edgecolors="k", zorder=3)
    # Put the note on the side of the point facing the middle of the trajectory.
    right = at["pc1"] > trajectory["pc1"].median()
    upper = at["pc2"] > trajectory["pc2"].median()
    ax.annotate(
        f"sharpest turn\nepoch {turn:g}",
        (at["pc1"], at["pc2"]),
        xytext=(-70 if right else 12, -30 if upper else 12),
        textcoords="offset points",
        fontsize=8,
        bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8, "linewidth": 0},
        arrowprops={"arrowstyle": "-", "color": "0.3"},
    )
    ax.set_xlabel(_component_title(variance, 1))
    ax.set_ylabel(_component_title(variance, 2))
    return points


def _marked_curve_axis(ax: plt.Axes, trajectory: pd.DataFrame, events: pd.DataFrame) -> None:
    for column, colour, name in (
        (TRAIN_LOSS, TRAIN_COLOUR, "train loss"),
        (EVAL_LOSS, EVAL_COLOUR, "validation loss"),
    ):
        ax.plot(trajectory[EPOCH], trajectory[column], color=colour, lw=2.5, label=name, zorder=1)
        marked = trajectory.iloc[:: max(1, len(trajectory) // MARKED_CHECKPOINTS)]
        ax.scatter(
            marked[EPOCH],
            marked[column],
            c=marked[EPOCH],
            cmap=EPOCH_COLOURS,
            vmin=trajectory[EPOCH].min(),
            vmax=trajectory[EPOCH].max(),
            s=22,
            edgecolors=colour,
            linewidths=0.8,
            zorder=2,
        )
    for (event, epoch), style in zip(events[["event", EPOCH]].to_numpy(), ("--", ":"), strict=True):
        if np.isfinite(epoch):
            ax.axvline(epoch, color="0.3", ls=style, lw=1, label=f"{event} (epoch {epoch:g})")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (log scale)")
    ax.legend(fontsize=7, loc="best")


def pca_training_curve_png(
    trajectory: pd.DataFrame, events: pd.DataFrame, label: Label, path: str | Path
) -> None:
    """PNG of :func:`pca_training_curve_html`."""
    figure, ax = plt.subplots(figsize=(7, 4.5))
    _marked_curve_axis(ax, trajectory, events)
    ax.set_title(
        f"Loss curves, checkpoints coloured by epoch as in the PCA\n{label.text()}", fontsize=9
    )
    save_png(figure, path)


def pca_png(
    trajectory: pd.DataFrame,
    variance: pd.DataFrame,
    events: pd.DataFrame,
    label: Label,
    path: str | Path,
) -> None:
    """The loss curve beside the PCA trajectory, both coloured by epoch (the post's layout)."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 5), width_ratios=(1, 1.1))
    _marked_curve_axis(left, trajectory, events)
    points = _pca_axis(right, trajectory, variance, _event_epochs(events)[TURN_EVENT])
    figure.colorbar(points, ax=right, label="epoch")
    left.set_title("Loss curves", fontsize=10)
    right.set_title("PCA of per-example validation losses", fontsize=10)
    figure.suptitle(label.text(), fontsize=10)
    save_png(figure, path)


# ---------------------------------------------------------------- HMM


def run_states(states: pd.DataFrame, rows: pd.DataFrame, run: int) -> pd.DataFrame:
    """The run's curve rows with the decoded ``state`` of each checkpoint joined on step."""
    if STATE not in states.columns:
        raise TrainmapError(f"the decoded states lack column {STATE!r}; they have {list(states)}")
    decoded = states.loc[states[RUN] == run, [STEP, STATE]]
    if decoded.empty:
        raise TrainmapError(
            f"run {run} has no decoded states (dropped from the HMM fit?); pick another blog.run"
        )
    joined = rows.merge(decoded, on=STEP, how="inner", validate="one_to_one")
    if len(joined) != len(rows):
        raise TrainmapError(
            f"run {run}: {len(rows) - len(joined)} checkpoint(s) of the metrics table "
            "have no decoded state; rebuild the HMM"
        )
    return joined


def segments(curve: pd.DataFrame) -> pd.DataFrame:
    """Contiguous stretches of one state: state, first and last epoch, checkpoints.

    ``curve`` is one run's rows (sorted by step) with a ``state`` column.
    """
    block = (curve[STATE] != curve[STATE].shift()).cumsum()
    grouped = curve.groupby(block)
    return pd.DataFrame(
        {
            STATE: grouped[STATE].first().to_numpy(),
            "first_epoch": grouped[EPOCH].first().to_numpy(),
            "last_epoch": grouped[EPOCH].last().to_numpy(),
            "checkpoints": grouped.size().to_numpy(),
        }
    )


def hmm_training_curve_html(curve: pd.DataFrame, k: int, label: Label, path: str | Path) -> None:
    """The run's loss curves, checkpoints coloured by hidden state (``hmm_training_curve.html``)."""
    figure = make_subplots(
        rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=(0.65, 0.35)
    )
    for row, columns in (
        (1, ((TRAIN_LOSS, "train loss"), (EVAL_LOSS, "validation loss"))),
        (2, ((TRAIN_ACC, "train accuracy"), (EVAL_ACC, "validation accuracy"))),
    ):
        for column, name in columns:
            figure.add_trace(
                go.Scatter(
                    x=curve[EPOCH],
                    y=curve[column],
                    mode="lines",
                    name=name,
                    line={"color": "lightgrey"},
                    hoverinfo="skip",
                    showlegend=False,
                ),
                row=row,
                col=1,
            )
            for state, part in curve.groupby(STATE):
                figure.add_trace(
                    go.Scatter(
                        x=part[EPOCH],
                        y=part[column],
                        mode="markers",
                        marker={
                            "color": state_colour(state),
                            "size": 6,
                            "symbol": "circle" if column in (TRAIN_LOSS, TRAIN_ACC) else "diamond",
                        },
                        name=f"state {state}",
                        legendgroup=f"state {state}",
                        showlegend=row == 1 and column == TRAIN_LOSS,
                        customdata=np.column_stack([part[STEP], np.full(len(part), state)]),
                        hovertemplate=(
                            f"{name}<br>epoch %{{x:g}} (step %{{customdata[0]:d}})<br>"
                            "value %{y:.4g}<br>state %{customdata[1]:d}<extra></extra>"
                        ),
                    ),
                    row=row,
                    col=1,
                )
    figure.update_yaxes(title_text="loss (log; ● train, ◆ validation)", type="log", row=1, col=1)
    figure.update_yaxes(title_text="accuracy", row=2, col=1)
    figure.update_xaxes(title_text="epoch", row=2, col=1)
    figure.update_layout(
        title=_title(f"Training curve coloured by hidden state (HMM with {k} state(s))", label),
        template="plotly_white",
    )
    write_html(figure, path)


def hmm_training_curve_png(curve: pd.DataFrame, k: int, label: Label, path: str | Path) -> None:
    """PNG of :func:`hmm_training_curve_html`, with the state segments shaded."""
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True, height_ratios=(2, 1))
    for ax, columns in ((top, (TRAIN_LOSS, EVAL_LOSS)), (bottom, (TRAIN_ACC, EVAL_ACC))):
        spans = segments(curve)
        ends = np.append(spans["first_epoch"].to_numpy()[1:], spans["last_epoch"].iloc[-1])
        for state, start, end in zip(spans[STATE], spans["first_epoch"], ends, strict=True):
            ax.axvspan(start, end, color=state_colour(state), alpha=0.12, lw=0)
        for column, marker in zip(columns, ("o", "D"), strict=True):
            ax.plot(curve[EPOCH], curve[column], color="0.75", lw=1, zorder=1)
            ax.scatter(
                curve[EPOCH],
                curve[column],
                c=[state_colour(s) for s in curve[STATE]],
                marker=marker,
                s=12,
                zorder=2,
            )
    top.set_yscale("log")
    top.set_ylabel("loss (log; ● train, ◆ validation)")
    bottom.set_ylabel("accuracy (● train, ◆ validation)")
    bottom.set_xlabel("epoch")
    handles = [
        plt.Line2D([], [], marker="o", ls="", color=state_colour(s), label=f"state {s}")
        for s in sorted(curve[STATE].unique())
    ]
    top.legend(handles=handles, fontsize=8, loc="best")
    top.set_title(
        f"Training curve coloured by hidden state (HMM with {k} state(s))\n{label.text()}",
        fontsize=9,
    )
    save_png(figure, path)


def state_graph(
    edges: pd.DataFrame, curve: pd.DataFrame, k: int, label: Label, path: str | Path
) -> None:
    """The HMM's state graph as PNG (``graph.png``), coloured as in the training curve.

    Nodes are the states some run of the fit visits (``edges``: the training
    map's edge table, columns ``source``, ``target``, ``label``); the shown
    run's path is drawn bold, and its nodes say when the run is in them.
    """
    path = Path(path)
    shown = segments(curve)
    taken = set(zip(shown[STATE].iloc[:-1], shown[STATE].iloc[1:], strict=True))
    graph = graphviz.Digraph(format="png", graph_attr={"labelloc": "t", "fontsize": "11"})
    nodes = set(edges["source"]) | set(edges["target"]) | set(shown[STATE])
    for state in sorted(nodes):
        spans = shown[shown[STATE] == state]
        when = ", ".join(
            f"{a:g}–{b:g}" for a, b in zip(spans["first_epoch"], spans["last_epoch"], strict=True)
        )
        text = f"state {state}" + (f"\nepochs {when}" if when else f"\nnot in run {label.run}")
        graph.node(
            str(state),
            text,
            style="filled",
            fillcolor=state_colour(state) + "66",
            color=state_colour(state),
            penwidth="2" if when else "1",
            fontsize="10",
        )
    for edge in edges.itertuples():
        bold = (edge.source, edge.target) in taken
        graph.edge(
            str(edge.source),
            str(edge.target),
            label=str(edge.label),
            fontsize="8",
            penwidth="2.5" if bold else "1",
            color="black" if bold else "grey50",
        )
    graph.attr(label=f"{label.text()}\nHMM with {k} state(s); bold: run {label.run}'s path")
    with atomic_output(path) as tmp:
        graph.render(outfile=tmp, cleanup=True)


# ---------------------------------------------------------------- summary


def first_epoch(rows: pd.DataFrame, column: str, threshold: float) -> float:
    """The first epoch where ``column`` reaches ``threshold`` (NaN if never)."""
    reached = rows.loc[rows[column] >= threshold, EPOCH]
    return float(reached.iloc[0]) if len(reached) else float("nan")


def phase_events(
    rows: pd.DataFrame, memorised_acc: float, generalising_acc: float, converged_acc: float
) -> pd.DataFrame:
    """Memorisation and generalisation of one run as epochs: ``event``, ``epoch``, ``rule``."""
    return pd.DataFrame(
        [
            (
                "memorised",
                first_epoch(rows, TRAIN_ACC, memorised_acc),
                f"train accuracy first ≥ {memorised_acc:g}",
            ),
            (
                "generalisation starts",
                first_epoch(rows, EVAL_ACC, generalising_acc),
                f"validation accuracy first ≥ {generalising_acc:g}",
            ),
            (
                "generalised",
                first_epoch(rows, EVAL_ACC, converged_acc),
                f"validation accuracy first ≥ {converged_acc:g} (convergence threshold)",
            ),
        ],
        columns=["event", EPOCH, "rule"],
    )


def phase_of(epochs: pd.Series, events: pd.DataFrame) -> pd.Series:
    """Grokking phase of each epoch: before memorised, before generalised, after."""
    at = dict(zip(events["event"], events[EPOCH], strict=True))
    memorised = np.nan_to_num(at["memorised"], nan=np.inf)
    generalised = np.nan_to_num(at["generalised"], nan=np.inf)
    return pd.Series(
        np.where(
            epochs < memorised,
            "memorisation",
            np.where(epochs < generalised, "generalisation", "convergence"),
        ),
        index=epochs.index,
    )


def state_phases(curve: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Per state visited by the run: first and last epoch, visits, and the phases it covers."""
    phases = phase_of(curve[EPOCH], events)
    visits = segments(curve).groupby(STATE).size()
    share = pd.crosstab(curve[STATE], phases, normalize="index")
    table = curve.groupby(STATE).agg(
        first_epoch=(EPOCH, "first"),
        last_epoch=(EPOCH, "last"),
        checkpoints=(EPOCH, "size"),
        train_acc_first=(TRAIN_ACC, "first"),
        train_acc_last=(TRAIN_ACC, "last"),
        eval_acc_first=(EVAL_ACC, "first"),
        eval_acc_last=(EVAL_ACC, "last"),
    )
    table["visits"] = visits
    table["phases"] = [
        ", ".join(f"{p} {share.loc[s, p]:.0%}" for p in share.columns if share.loc[s, p] > 0)
        for s in table.index
    ]
    return table.sort_values("first_epoch").reset_index()


def turn_comparison(pca_events: pd.DataFrame, span: float, tolerance: float) -> pd.DataFrame:
    """The turn and the fastest drop side by side, with the gap and whether they coincide."""
    at = _event_epochs(pca_events)
    gap = at[TURN_EVENT] - at[DROP_EVENT]
    return pd.DataFrame(
        {
            "turn_epoch": [at[TURN_EVENT]],
            "fastest_drop_epoch": [at[DROP_EVENT]],
            "gap_epochs": [gap],
            "tolerance_epochs": [tolerance * span],
            "coincide": [bool(abs(gap) <= tolerance * span)],
        }
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
    """The blog's phases against memorisation and generalisation, as Markdown."""
    span = float(curve[EPOCH].iloc[-1] - curve[EPOCH].iloc[0])
    comparison = turn_comparison(pca_events, span, tolerance)
    c = comparison.iloc[0]
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
    explained = variance.head(5).assign(
        explained_variance_ratio=lambda v: v["explained_variance_ratio"].map("{:.1%}".format),
        cumulative=lambda v: v["cumulative"].map("{:.1%}".format),
    )
    events_text = events.assign(
        epoch=events[EPOCH].map(lambda e: "never" if np.isnan(e) else f"{e:g}")
    )
    phase_note = (
        "Phases: memorisation = before the train accuracy reaches the threshold, "
        "generalisation = from then until the validation accuracy reaches the convergence "
        "threshold, convergence = after. `phases` gives the share of the state's "
        "checkpoints in each; `visits` counts the separate stretches the run spends there."
    )
    sections = [
        "# Blog post (Hu et al. 2025): phases of one run",
        f"{label.text()}.",
        "## Memorisation and generalisation",
        to_markdown(events_text),
        f"## Hidden states (HMM with {k} state(s), decoded for run {label.run})",
        phase_note,
        to_markdown(state_phases(curve, events), float_format="{:.3g}"),
        "## PCA of per-example validation losses",
        to_markdown(explained),
        to_markdown(comparison, float_format="{:.4g}"),
        closing,
    ]
    return "\n\n".join(sections) + "\n"


# ---------------------------------------------------------------- one call per rule


def loss_curve_figures(
    table: pd.DataFrame, events: pd.DataFrame, label: Label, loss_curve: str, run_curves: str
) -> None:
    """``loss_curve.png`` (every run) and ``pca_loss_curve.png`` (the shown run)."""
    loss_curves_png(table, label, loss_curve)
    run_curves_png(table[table[RUN] == label.run], events, label, run_curves)


def pca_figures(
    trajectory: pd.DataFrame,
    variance: pd.DataFrame,
    events: pd.DataFrame,
    label: Label,
    outputs: dict[str, str],
) -> None:
    """``pca.html``, ``pca.png``, ``pca_training_curve.html`` and ``.png`` (keys of ``outputs``)."""
    pca_html(trajectory, variance, events, label, outputs["pca_html"])
    pca_png(trajectory, variance, events, label, outputs["pca_png"])
    pca_training_curve_html(trajectory, events, label, outputs["curve_html"])
    pca_training_curve_png(trajectory, events, label, outputs["curve_png"])


def hmm_figures(
    curve: pd.DataFrame, edges: pd.DataFrame, k: int, label: Label, outputs: dict[str, str]
) -> None:
    """``hmm_training_curve.html`` and ``.png`` and ``graph.png`` (keys of ``outputs``)."""
    hmm_training_curve_html(curve, k, label, outputs["curve_html"])
    hmm_training_curve_png(curve, k, label, outputs["curve_png"])
    state_graph(edges, curve, k, label, outputs["graph"])
