"""Figures of the blog post "How to visualize training dynamics in neural networks".

Hu, Jain, Chaulagain and Saphra (ICLR 2025 blog track), on one modular-addition
run: the loss curves, the PCA trajectory of per-example validation losses beside
the loss curve, the loss curve coloured by HMM state, and the state graph. The
phases they show are computed in :mod:`trainmap.analysis.phases`; the Markdown
summary is :mod:`trainmap.figures.blog2025_summary`.

Interactive figures are self-contained plotly HTML (plotly.js inlined, so they
open without a network); every PNG is drawn with matplotlib. What a figure shows
is stated once and drawn by both: its title (:data:`TITLES`), its curves
(:data:`LOSS_CURVES`, :data:`ACCURACY_CURVES`), its colours and its event lines
(:func:`event_lines`). Every figure's title says what it is made from
(:class:`Label`).
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
from matplotlib.collections import PathCollection
from matplotlib.colors import to_hex
from plotly.subplots import make_subplots

from trainmap.analysis.hmm import STATE
from trainmap.analysis.pca import TURN_EVENT
from trainmap.analysis.phases import event_epochs, segments
from trainmap.figures import save_png
from trainmap.tables import (
    EPOCH,
    EVAL_ACC,
    EVAL_LOSS,
    RUN,
    STEP,
    TRAIN_ACC,
    TRAIN_LOSS,
    atomic_output,
)

#: Colour scale for epochs, the same in the HTML and the PNG figures.
EPOCH_COLOURS = "viridis"
#: One colour per hidden state (matplotlib's tab10), the same in every figure.
STATE_COLOURS: tuple[str, ...] = tuple(to_hex(c) for c in plt.get_cmap("tab10").colors)
TRAIN_COLOUR, EVAL_COLOUR = "#1f77b4", "#d62728"
#: At most about this many checkpoints get an epoch-coloured marker on a PNG loss curve.
MARKED_CHECKPOINTS = 60
#: (column, name, colour) of the curves every loss and accuracy panel draws.
LOSS_CURVES = (
    (TRAIN_LOSS, "train loss", TRAIN_COLOUR),
    (EVAL_LOSS, "validation loss", EVAL_COLOUR),
)
ACCURACY_CURVES = (
    (TRAIN_ACC, "train accuracy", TRAIN_COLOUR),
    (EVAL_ACC, "validation accuracy", EVAL_COLOUR),
)
#: The panels of the training curve coloured by state: its curves and the y-axis title;
#: train checkpoints are drawn as circles, validation ones as diamonds (CURVE_MARKERS).
STATE_PANELS = (
    (LOSS_CURVES, "loss (log; ● train, ◆ validation)"),
    (ACCURACY_CURVES, "accuracy (● train, ◆ validation)"),
)
CURVE_MARKERS = ({"matplotlib": "o", "plotly": "circle"}, {"matplotlib": "D", "plotly": "diamond"})
#: Line style of the event lines, in event order (matplotlib's names), and plotly's names.
EVENT_STYLES = ("--", ":", "-.")
PLOTLY_DASH = {"--": "dash", ":": "dot", "-.": "dashdot"}
#: The title of each figure, the same in its HTML and its PNG.
TITLES = {
    "loss_curve": "Loss curves",
    "run_curves": "Train and validation curves",
    "pca": "PCA of per-example validation losses",
    "pca_training_curve": "Loss curves, checkpoints coloured by epoch as in the PCA",
    "hmm_training_curve": "Training curve coloured by hidden state (HMM with {k} state(s))",
}


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


def event_lines(events: pd.DataFrame) -> list[tuple[float, str, str]]:
    """(epoch, legend label, line style) of each event that happened, as every figure marks it."""
    return [
        (epoch, f"{event} (epoch {epoch:g})", style)
        for (event, epoch), style in zip(
            events[["event", EPOCH]].to_numpy(), EVENT_STYLES, strict=False
        )
        if np.isfinite(epoch)
    ]


def component_title(variance: pd.DataFrame, i: int) -> str:
    """Axis title of principal component ``i`` with its share of the variance."""
    return f"PC{i} ({variance['explained_variance_ratio'].iloc[i - 1]:.1%} of variance)"


def turn_point(trajectory: pd.DataFrame, events: pd.DataFrame) -> pd.Series:
    """The trajectory's row at the sharpest turn."""
    return trajectory.loc[trajectory[EPOCH] == event_epochs(events)[TURN_EVENT]].iloc[0]


def _html_title(name: str, label: Label, **fields: object) -> str:
    return f"{TITLES[name].format(**fields)}<br><sup>{label.text()}</sup>"


def _png_title(name: str, label: Label, **fields: object) -> str:
    return f"{TITLES[name].format(**fields)}\n{label.text()}"


# ---------------------------------------------------------------- loss curves


def _loss_axis(
    ax: plt.Axes, rows: pd.DataFrame, alpha: float = 1.0, suffix: str | None = ""
) -> None:
    """Train and validation loss on a log scale; ``suffix=None`` leaves them out of the legend."""
    for column, name, colour in LOSS_CURVES:
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
    ax.set_title(_png_title("loss_curve", label), fontsize=9)
    save_png(figure, path, dpi=130, tight=True)


def run_curves_png(
    rows: pd.DataFrame, events: pd.DataFrame, label: Label, path: str | Path
) -> None:
    """Loss (log scale) and accuracy of one run, phase events marked (``pca_loss_curve``)."""
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    _loss_axis(top, rows)
    top.set_xlabel("")
    for column, name, colour in ACCURACY_CURVES:
        bottom.plot(rows[EPOCH], rows[column], color=colour, label=name)
    bottom.set_ylim(-0.02, 1.02)
    bottom.set_xlabel("epoch")
    bottom.set_ylabel("accuracy")
    for epoch, text, style in event_lines(events):
        for ax in (top, bottom):
            ax.axvline(epoch, color="0.3", ls=style, lw=1)
        bottom.plot([], [], color="0.3", ls=style, label=text)
    bottom.legend(loc="center right", fontsize=7)
    top.set_title(_png_title("run_curves", label), fontsize=9)
    save_png(figure, path, dpi=130, tight=True)


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
    turn = turn_point(trajectory, events)
    figure.add_annotation(
        x=turn["pc1"], y=turn["pc2"], text=f"sharpest turn, epoch {turn[EPOCH]:g}", arrowhead=2
    )
    figure.update_layout(
        title=_html_title("pca", label),
        xaxis_title=component_title(variance, 1),
        yaxis_title=component_title(variance, 2),
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
    for (column, name, colour), colorbar in zip(LOSS_CURVES, (False, True), strict=True):
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
    for epoch, text, style in event_lines(events):
        dash = PLOTLY_DASH[style]
        figure.add_vline(x=epoch, line_dash=dash, line_color="grey")
        figure.add_trace(  # a legend entry for the line
            go.Scatter(
                x=[None],
                y=[None],
                mode="lines",
                line={"dash": dash, "color": "grey"},
                name=text,
            )
        )
    figure.update_layout(
        title=_html_title("pca_training_curve", label),
        xaxis_title="epoch",
        yaxis={"title": "loss (log scale)", "type": "log"},
        template="plotly_white",
        legend={"orientation": "h", "y": -0.2},
    )
    write_html(figure, path)


def _pca_axis(
    ax: plt.Axes, trajectory: pd.DataFrame, variance: pd.DataFrame, events: pd.DataFrame
) -> PathCollection:
    ax.plot(trajectory["pc1"], trajectory["pc2"], color="0.8", lw=1, zorder=1)
    points = ax.scatter(
        trajectory["pc1"],
        trajectory["pc2"],
        c=trajectory[EPOCH],
        cmap=EPOCH_COLOURS,
        s=14,
        zorder=2,
    )
    at = turn_point(trajectory, events)
    ax.scatter([at["pc1"]], [at["pc2"]], s=160, facecolors="none", edgecolors="k", zorder=3)
    # Put the note on the side of the point facing the middle of the trajectory.
    right = at["pc1"] > trajectory["pc1"].median()
    upper = at["pc2"] > trajectory["pc2"].median()
    ax.annotate(
        f"sharpest turn\nepoch {at[EPOCH]:g}",
        (at["pc1"], at["pc2"]),
        xytext=(-70 if right else 12, -30 if upper else 12),
        textcoords="offset points",
        fontsize=8,
        bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8, "linewidth": 0},
        arrowprops={"arrowstyle": "-", "color": "0.3"},
    )
    ax.set_xlabel(component_title(variance, 1))
    ax.set_ylabel(component_title(variance, 2))
    return points


def _marked_curve_axis(ax: plt.Axes, trajectory: pd.DataFrame, events: pd.DataFrame) -> None:
    for column, name, colour in LOSS_CURVES:
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
    for epoch, text, style in event_lines(events):
        ax.axvline(epoch, color="0.3", ls=style, lw=1, label=text)
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
    ax.set_title(_png_title("pca_training_curve", label), fontsize=9)
    save_png(figure, path, dpi=130, tight=True)


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
    points = _pca_axis(right, trajectory, variance, events)
    figure.colorbar(points, ax=right, label="epoch")
    left.set_title(TITLES["loss_curve"], fontsize=10)
    right.set_title(TITLES["pca"], fontsize=10)
    figure.suptitle(label.text(), fontsize=10)
    save_png(figure, path, dpi=130, tight=True)


# ---------------------------------------------------------------- HMM


def hmm_training_curve_html(curve: pd.DataFrame, k: int, label: Label, path: str | Path) -> None:
    """The run's loss curves, checkpoints coloured by hidden state (``hmm_training_curve.html``)."""
    figure = make_subplots(
        rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06, row_heights=(0.65, 0.35)
    )
    for row, (curves, axis_title) in enumerate(STATE_PANELS, start=1):
        figure.update_yaxes(title_text=axis_title, type="log" if row == 1 else None, row=row, col=1)
        for (column, name, _), marker in zip(curves, CURVE_MARKERS, strict=True):
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
                            "symbol": marker["plotly"],
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
    figure.update_xaxes(title_text="epoch", row=2, col=1)
    figure.update_layout(
        title=_html_title("hmm_training_curve", label, k=k),
        template="plotly_white",
    )
    write_html(figure, path)


def hmm_training_curve_png(curve: pd.DataFrame, k: int, label: Label, path: str | Path) -> None:
    """PNG of :func:`hmm_training_curve_html`, with the state segments shaded."""
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True, height_ratios=(2, 1))
    spans = segments(curve)
    ends = np.append(spans["first_epoch"].to_numpy()[1:], spans["last_epoch"].iloc[-1])
    for ax, (curves, axis_title) in zip((top, bottom), STATE_PANELS, strict=True):
        ax.set_ylabel(axis_title)
        for state, start, end in zip(spans[STATE], spans["first_epoch"], ends, strict=True):
            ax.axvspan(start, end, color=state_colour(state), alpha=0.12, lw=0)
        for (column, _, _), marker in zip(curves, CURVE_MARKERS, strict=True):
            ax.plot(curve[EPOCH], curve[column], color="0.75", lw=1, zorder=1)
            ax.scatter(
                curve[EPOCH],
                curve[column],
                c=[state_colour(s) for s in curve[STATE]],
                marker=marker["matplotlib"],
                s=12,
                zorder=2,
            )
    top.set_yscale("log")
    bottom.set_xlabel("epoch")
    handles = [
        plt.Line2D([], [], marker="o", ls="", color=state_colour(s), label=f"state {s}")
        for s in sorted(curve[STATE].unique())
    ]
    top.legend(handles=handles, fontsize=8, loc="best")
    top.set_title(_png_title("hmm_training_curve", label, k=k), fontsize=9)
    save_png(figure, path, dpi=130, tight=True)


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
