"""The 16-panel frame of the visual sandbox, and the figures drawn from frames.

A frame shows every layer of one d = 2 run at one epoch. The figures built from frames
or from the model's intermediates are figures 1-4, 10 and 11 (whole frames), 5 (two-phase
learning), 8 (attention maps) and 12-14 (loss spikes); they rebuild the model from the
saved weights (:mod:`trainmap.sandbox.probe`, torch).

Panels (row by row): token embeddings E(x); position embeddings P(t) (circles: the k
summed positions, squares: spurious ones); E(x) + P(t); normalised Z(x, t) with the
query arrow; attention map; value transform V Z(x, t); sequence embeddings xi; level
lines of xi -> p(y | xi); MLP receptors w_i; MLP assemblers u_i; MLP activations;
transformed embeddings zeta with the output embeddings; level lines of zeta -> p(y | zeta);
output p(true class | x); loss; accuracy.

Probe sequences are every prefix of length k with a few fixed suffixes; colour = the
prefix's composition (how many of each token, so permutations share a colour), marker =
class.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import hsv_to_rgb

from trainmap.errors import TrainmapError
from trainmap.figures import save_png
from trainmap.sandbox import analysis
from trainmap.sandbox.data import Task, probe_sequences
from trainmap.sandbox.model import Sandbox
from trainmap.sandbox.probe import level_probabilities, trace
from trainmap.sandbox.results import (
    Paths,
    describe,
    load_snapshots,
    member_params,
    ranked_runs,
    read_logs,
    task_of,
)

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<")
GRID = 60
#: The 16 panels of a frame, in drawing order.
PANELS = (
    "token",
    "position",
    "sum",
    "normalised",
    "attention",
    "value",
    "xi",
    "xi_levels",
    "receptors",
    "assemblers",
    "activations",
    "zeta",
    "zeta_levels",
    "output",
    "loss",
    "accuracy",
)


def _class_colors(p: int) -> np.ndarray:
    """One RGB colour per class, evenly spaced on the colour wheel."""
    return hsv_to_rgb(np.stack([np.arange(p) / p, np.full(p, 0.85), np.full(p, 0.9)], 1))


def _neuron_colors(h: int) -> np.ndarray:
    return plt.get_cmap("hsv")(np.arange(h) / h)


def _prob_image(probs: np.ndarray) -> np.ndarray:
    """RGB image of class probabilities (..., p): the colour wheel mix."""
    return np.clip(probs @ _class_colors(probs.shape[-1]), 0, 1)


def _composition_colors(x: np.ndarray, task: Task) -> np.ndarray:
    """Colour of each sequence from its prefix composition (token counts)."""
    counts = np.stack([(x[:, : task.k] == v).sum(1) for v in range(1, task.p)], 1)
    key = counts @ (task.k + 1) ** np.arange(task.p - 1)
    _, index = np.unique(key, return_inverse=True)
    return plt.get_cmap("viridis")(index / max(index.max(), 1))


def _square_limits(ax: plt.Axes, points: np.ndarray, margin: float = 0.15) -> None:
    lo, hi = points.min(0), points.max(0)
    center, half = (lo + hi) / 2, max((hi - lo).max() / 2, 1e-3) * (1 + margin)
    ax.set_xlim(center[0] - half, center[0] + half)
    ax.set_ylim(center[1] - half, center[1] + half)
    ax.set_aspect("equal")


class FrameRenderer:
    """Draw 16-panel frames of one run (reuses one matplotlib figure).

    Parameters
    ----------
    task
        The problem (L, k, p) the frames show.
    history
        The run's per-epoch log (``epoch``, ``train_loss``, ``test_loss``,
        ``train_acc``, ``test_acc``).
    label
        What the frame is made from (printed in the title).
    dpi
        Resolution.
    annotate
        Label every (x, t) point (slow: off for videos).
    """

    def __init__(
        self, task: Task, history: pd.DataFrame, label: str, dpi: int = 70, annotate: bool = True
    ) -> None:
        self.task, self.history, self.label = task, history.sort_values("epoch"), label
        self.annotate = annotate
        self.x = probe_sequences(task)
        self.y = task.labels(self.x)
        self.colors = _composition_colors(self.x, task)
        self.figure, axes = plt.subplots(4, 4, figsize=(16, 16), dpi=dpi)
        self.axes = axes.ravel()

    def context(self, params: dict[str, np.ndarray]) -> dict[str, Any]:
        """Everything the panels draw for one member's weights ``params``."""
        d = params["token"].shape[1]
        if d != 2:
            raise TrainmapError(f"sandbox frames draw d = 2 runs only, got d = {d}")
        out = trace(params, self.x, self.task.p)
        sums = params["token"][: self.task.p, None] + params["position"][None]  # (p, L, d)
        z = sums / np.linalg.norm(sums, axis=-1, keepdims=True)
        return {"params": params, **out, "sums": sums, "zs": z}

    def draw(
        self,
        params: dict[str, np.ndarray],
        epoch: int,
        axes: list[plt.Axes] | None = None,
        panels: tuple[str, ...] = PANELS,
    ) -> plt.Figure:
        """Draw ``panels`` of ``params`` (one member's weights) at ``epoch``.

        By default all 16 panels into this renderer's own figure (titled); with ``axes``,
        the given panels into those axes (for figures built from a few panels).
        """
        ctx = {**self.context(params), "epoch": epoch}
        own = axes is None
        for ax, name in zip(self.axes if own else axes, panels, strict=True):
            ax.clear()
            getattr(self, f"_{name}")(ax, ctx)
        if own:
            title = textwrap.fill(f"{self.label}, epoch {epoch}", 100)
            self.figure.suptitle(title, fontsize=15)
            self.figure.subplots_adjust(0.04, 0.04, 0.98, 0.91, wspace=0.3, hspace=0.3)
        return self.figure

    def _token(self, ax: plt.Axes, ctx: dict[str, Any]) -> None:
        tokens = ctx["params"]["token"][: self.task.p]
        ax.scatter(*tokens.T, c=_class_colors(self.task.p), s=80)
        for v, e in enumerate(tokens):
            ax.annotate(str(v), e, fontsize=11)
        _square_limits(ax, np.vstack([tokens, [[0, 0]]]))
        ax.set_title("Token embeddings E(x)")

    def _position(self, ax: plt.Axes, ctx: dict[str, Any]) -> None:
        self._positions(ax, ctx["params"]["position"])
        ax.set_title("Position embeddings P(t)")

    def _sum(self, ax: plt.Axes, ctx: dict[str, Any]) -> None:
        self._positions(ax, ctx["sums"].reshape(-1, 2), labels=True)
        ax.set_title("E(x) + P(t)  (label x,t)")

    def _normalised(self, ax: plt.Axes, ctx: dict[str, Any]) -> None:
        ax.add_patch(plt.Circle((0, 0), 1, fill=False, color="0.8"))
        self._positions(ax, ctx["zs"].reshape(-1, 2), labels=True)
        q = ctx["params"]["query"]
        ax.annotate(
            "", q / np.linalg.norm(q) * 1.3, (0, 0), arrowprops={"color": "red", "width": 2}
        )
        ax.set_xlim(-1.5, 1.5), ax.set_ylim(-1.5, 1.5), ax.set_aspect("equal")
        ax.set_title(f"Normalised Z(x,t), query (red, |q|={np.linalg.norm(q):.2f})")

    def _attention(self, ax: plt.Axes, ctx: dict[str, Any]) -> None:
        rows = np.linspace(0, len(self.x) - 1, min(len(self.x), 48)).astype(int)
        ax.imshow(ctx["attention"][rows], aspect="auto", cmap="Blues", vmin=0)
        ax.axvline(self.task.k - 0.5, color="red", lw=1)
        ax.set_xlabel("position t (red: end of the k summed positions)")
        ax.set_ylabel("probe sequence")
        ax.set_title("Attention map")

    def _value(self, ax: plt.Axes, ctx: dict[str, Any]) -> None:
        self._positions(ax, (ctx["zs"] @ ctx["params"]["value"].T).reshape(-1, 2), labels=True)
        ax.set_title("Value transform V Z(x,t)")

    def _xi(self, ax: plt.Axes, ctx: dict[str, Any]) -> None:
        self._sequences(ax, ctx["xi"])
        ax.set_title("Sequence embeddings ξ (colour: prefix, marker: class)")

    def _xi_levels(self, ax: plt.Axes, ctx: dict[str, Any]) -> None:
        self._levels(ax, ctx["model"], ctx["xi"], stage="xi")
        ax.set_title("Transform level lines ξ → p(y|ξ)")

    def _receptors(self, ax: plt.Axes, ctx: dict[str, Any]) -> None:
        w, b = ctx["params"]["receptors"], ctx["params"]["biases"]
        ax.scatter(*w.T, c=_neuron_colors(len(b)), s=20 + 20 * np.abs(b))
        ax.add_patch(plt.Circle((0, 0), 1, fill=False, color="0.8"))
        _square_limits(ax, np.vstack([w, [[0, 0]]]))
        ax.set_title("MLP receptors w_i (size: |b_i|)")

    def _assemblers(self, ax: plt.Axes, ctx: dict[str, Any]) -> None:
        u = ctx["params"]["assemblers"]
        ax.scatter(*u.T, c=_neuron_colors(len(u)), s=20)
        _square_limits(ax, np.vstack([u, [[0, 0]]]))
        ax.set_title("MLP assemblers u_i (colour: neuron)")

    def _activations(self, ax: plt.Axes, ctx: dict[str, Any]) -> None:
        order = np.argsort(self.y, kind="stable")
        ax.imshow(ctx["activations"][order], aspect="auto", cmap="RdBu_r", interpolation="nearest")
        ax.set_xlabel("neuron i"), ax.set_ylabel("probe sequence (by class)")
        ax.set_title("MLP activations GELU(w_i·ξ/|ξ| + b_i)")

    def _zeta(self, ax: plt.Axes, ctx: dict[str, Any]) -> None:
        tokens = ctx["params"]["token"][: self.task.p]
        self._sequences(ax, ctx["zeta"], extra=tokens)
        ax.scatter(*tokens.T, marker="*", s=250, c=_class_colors(self.task.p), edgecolors="k")
        ax.set_title("Transformed ζ (stars: output E(y))")

    def _zeta_levels(self, ax: plt.Axes, ctx: dict[str, Any]) -> None:
        self._levels(ax, ctx["model"], ctx["zeta"], stage="zeta")
        ax.set_title("Decoding ζ → p(y|ζ)")

    def _output(self, ax: plt.Axes, ctx: dict[str, Any]) -> None:
        y, logits = self.y, ctx["logits"]
        probs = np.exp(logits - logits.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        true = probs[np.arange(len(y)), y]
        bins = np.linspace(0, 1, 21)
        for c, color in enumerate(_class_colors(self.task.p)):
            ax.hist(true[y == c], bins=bins, alpha=0.6, color=color, label=f"y={c}")
        ax.legend(fontsize=8)
        ax.set_xlabel("p(true class | x)")
        ax.set_title(f"Output: probe accuracy {np.mean(probs.argmax(1) == y):.2f}")

    def _curve(self, ax: plt.Axes, epoch: int, what: str) -> None:
        hist = self.history
        ax.plot(hist.epoch, hist[f"train_{what}"], label="train")
        ax.plot(hist.epoch, hist[f"test_{what}"], label="test")
        ax.axvline(epoch, color="red", lw=1)
        ax.set_xlabel("epoch"), ax.legend(fontsize=8)

    def _loss(self, ax: plt.Axes, ctx: dict[str, Any]) -> None:
        self._curve(ax, ctx["epoch"], "loss")
        ax.set_yscale("log")
        ax.set_title("Loss")

    def _accuracy(self, ax: plt.Axes, ctx: dict[str, Any]) -> None:
        self._curve(ax, ctx["epoch"], "acc")
        ax.set_title("Accuracy")

    def _positions(self, ax: plt.Axes, points: np.ndarray, labels: bool = False) -> None:
        """Points per (x, t) (or per t): circles for t < k, squares for spurious t."""
        length, k = self.task.seq_len, self.task.k
        t = np.arange(len(points)) % length
        colors = plt.get_cmap("plasma")(t / length)
        for marker, keep in (("o", t < k), ("s", t >= k)):
            ax.scatter(*points[keep].T, c=colors[keep], marker=marker, s=45, edgecolors="k", lw=0.3)
        if labels and self.annotate:
            for i, pt in enumerate(points):
                ax.annotate(f"{i // length},{i % length + 1}", pt, fontsize=6)
        _square_limits(ax, points)

    def _sequences(self, ax: plt.Axes, points: np.ndarray, extra: np.ndarray | None = None) -> None:
        for c in range(self.task.p):
            keep = self.y == c
            ax.scatter(
                *points[keep].T,
                c=self.colors[keep],
                marker=MARKERS[c],
                s=25,
                edgecolors="k",
                lw=0.2,
            )
        _square_limits(ax, points if extra is None else np.vstack([points, extra]))

    def _levels(self, ax: plt.Axes, model: Sandbox, points: np.ndarray, stage: str) -> None:
        """Class probabilities over a grid of xi (or zeta), with the probe points on top."""
        self._sequences(ax, points, extra=np.zeros((1, 2)))
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        gx, gy = np.meshgrid(np.linspace(x0, x1, GRID), np.linspace(y0, y1, GRID))
        grid = np.stack([gx, gy], -1).reshape(-1, 2)
        probs = level_probabilities(model, grid, self.task.p, stage)
        ax.imshow(
            _prob_image(probs).reshape(GRID, GRID, 3),
            origin="lower",
            extent=(x0, x1, y0, y1),
            alpha=0.5,
        )
        if self.task.p == 2:
            ax.contour(
                gx,
                gy,
                probs[:, 1].reshape(GRID, GRID),
                levels=[0.1, 0.5, 0.9],
                colors="k",
                linewidths=0.7,
            )
        ax.set_aspect("equal")


def _loss_panel(ax: plt.Axes, history: pd.DataFrame, marks: Sequence[float]) -> None:
    """Train and test loss (log scale) with the given epochs marked in red."""
    ax.plot(history.epoch, history.train_loss, label="train")
    ax.plot(history.epoch, history.test_loss, label="test")
    for epoch in marks:
        ax.axvline(epoch, color="red", ls="--")
    ax.set_yscale("log"), ax.set_xlabel("epoch"), ax.legend()


def frame_figure(
    logs: Paths,
    weights: Paths,
    output: str | Path,
    rank: int,
    epoch: int | None,
    scale: str,
    what: str,
) -> None:
    """Figures 1-4, 10, 11: the 16-panel frame of the ``rank``-th best run at ``epoch``.

    ``epoch`` None is the last epoch; ``what`` names the figure in its title.
    """
    log, snaps = read_logs(logs), load_snapshots(weights)
    runs = ranked_runs(log)
    if rank >= len(runs):
        raise TrainmapError(f"sandbox frame: rank {rank} but only {len(runs)} runs")
    run = runs[rank]
    epoch = int(log["epoch"].max()) if epoch is None else epoch
    history = log[log["run"] == run]
    seed = int(history["seed"].iloc[0])
    acc = history["test_acc"].iloc[-1]
    label = f"{what} — seed {seed} (final test acc {acc:.2f}); {describe(history, scale, 1)}"
    renderer = FrameRenderer(task_of(log), history, label)
    save_png(renderer.draw(member_params(snaps, epoch, run), epoch), output)


class _Pick(NamedTuple):
    """Figure 5's run so far, with its (up to two) largest drops in time order."""

    run: int
    drops: list[analysis.Event]


def figure5(logs: Paths, weights: Paths, output: str | Path, scale: str, **rules: float) -> None:
    """Figure 5: one run's loss curve with frames at the start and end of its two largest drops.

    Drops are ranked by the fall of the loss itself, so the slow final convergence on a
    log scale does not count; the run is the best-ranked one with at least two drops,
    else the one with the most. ``rules`` are :func:`trainmap.sandbox.analysis.loss_drops`'
    parameters.
    """
    log, snaps = read_logs(logs), load_snapshots(weights)
    best = None
    for run in ranked_runs(log):
        loss = log[log["run"] == run].sort_values("epoch")["train_loss"].to_numpy()
        drops = analysis.loss_drops(loss, **rules)
        drops = sorted(drops, key=lambda d: loss[d.end] - loss[d.start])[:2]
        if best is None or len(drops) > len(best.drops):
            best = _Pick(run, sorted(drops, key=lambda d: d.start))
        if len(drops) >= 2:
            break
    run, drops = best
    history = log[log["run"] == run]
    marks = sorted({e for d in drops[:2] for e in (d.start, d.end)})[:4] or [
        0,
        int(log.epoch.max()),
    ]
    fig, axes = plt.subplots(1, len(marks) + 1, figsize=(4.2 * (len(marks) + 1), 4.4))
    renderer = FrameRenderer(task_of(log), history, "", annotate=False)
    for ax, epoch in zip(axes, marks, strict=False):
        renderer.draw(member_params(snaps, epoch, run), epoch, axes=[ax], panels=("xi_levels",))
        ax.set_title(f"epoch {epoch}: ξ → p(y|ξ)")
    ax = axes[-1]
    _loss_panel(ax, history, marks)
    ax.set_title(f"loss; red: start/end of the {len(drops)} largest drops")
    seed = int(history["seed"].iloc[0])
    fig.suptitle(f"Figure 5: two-phase learning — seed {seed}; {describe(history, scale, 1)}")
    fig.tight_layout()
    save_png(fig, output)


def figure8(logs: Paths, weights: Paths, output: str | Path, scale: str, runs: int = 4) -> None:
    """Figure 8: attention maps of the ``runs`` best runs at initialisation and at the end."""
    log, snaps = read_logs(logs), load_snapshots(weights)
    chosen = ranked_runs(log)[:runs]
    task = task_of(log)
    renderer = FrameRenderer(task, log, "", annotate=False)
    fig, axes = plt.subplots(1, 2 * len(chosen), figsize=(3 * 2 * len(chosen), 5.5))
    last = int(log["epoch"].max())
    for i, run in enumerate(chosen):
        maps = [renderer.context(member_params(snaps, e, run))["attention"] for e in (0, last)]
        r = np.corrcoef(maps[0].ravel(), maps[1].ravel())[0, 1]
        seed = int(log.loc[log.run == run, "seed"].iloc[0])
        for j, (epoch, attention) in enumerate(zip((0, last), maps, strict=True)):
            ax = axes[2 * i + j]
            ax.imshow(attention, aspect="auto", cmap="Blues", vmin=0, interpolation="nearest")
            ax.axvline(task.k - 0.5, color="red", lw=1)
            ax.set_title(
                f"seed {seed}, epoch {epoch}" + (f"\ncorr(init, end) = {r:.2f}" if j else "")
            )
            ax.set_xlabel("position t")
    axes[0].set_ylabel("probe sequence (all prefixes x 2 suffixes)")
    fig.suptitle(f"Figure 8: attention at initialisation and at the end; {describe(log, scale)}")
    fig.tight_layout()
    save_png(fig, output)


SPIKE_PANELS = {
    12: ("sum", "normalised"),
    13: ("xi_levels", "zeta_levels"),
    14: ("xi", "assemblers", "zeta"),
}


def spike_figure(
    number: int,
    logs: Paths,
    weights: Paths,
    output: str | Path,
    scale: str,
    which: int,
    **rule: float,
) -> None:
    """Figures 12-14: the ``which``-th largest loss spike over all runs, with frame panels.

    The loss around the spike is drawn beside the frame panels of ``SPIKE_PANELS[number]``
    just before the spike and at its peak; ``rule`` holds
    :func:`trainmap.sandbox.analysis.loss_spikes`' parameters.
    """
    log, snaps = read_logs(logs), load_snapshots(weights)
    saved = set(snaps["epochs"].tolist())
    spikes = []
    for run, history in log.groupby("run"):
        loss = history.sort_values("epoch")["train_loss"].to_numpy()
        for event in analysis.loss_spikes(loss, **rule):
            if {event.start, event.end} <= saved:
                spikes.append((loss[event.end] / max(loss[event.start], 1e-12), run, event))
    spikes.sort(key=lambda s: -s[0])
    panels = SPIKE_PANELS[number]
    fig, axes = plt.subplots(1, 2 * len(panels) + 1, figsize=(4.2 * (2 * len(panels) + 1), 4.4))
    if not spikes:
        for ax in axes:
            ax.axis("off")
        rules = ", ".join(f"{k}={v}" for k, v in rule.items())
        axes[0].text(0, 0.5, f"no loss spike detected by the rule ({rules})", fontsize=14)
        fig.suptitle(f"Figure {number}: loss spikes; {describe(log, scale)}")
        save_png(fig, output)
        return
    jump, run, event = spikes[min(which, len(spikes) - 1)]
    history = log[log["run"] == run].sort_values("epoch")
    renderer = FrameRenderer(task_of(log), history, "", annotate=False)
    for i, epoch in enumerate((event.start, event.end)):
        sub = axes[1 + i * len(panels) : 1 + (i + 1) * len(panels)]
        renderer.draw(member_params(snaps, epoch, run), epoch, axes=list(sub), panels=panels)
        for ax in sub:
            ax.set_title(f"{'before' if i == 0 else 'peak'} (epoch {epoch})\n{ax.get_title()}")
    ax = axes[0]
    window = history[(history.epoch >= event.start - 30) & (history.epoch <= event.end + 30)]
    _loss_panel(ax, window, (event.start, event.end))
    ax.set_title(f"train loss x{jump:.1f} ({len(spikes)} spikes in all runs)")
    seed = int(history["seed"].iloc[0])
    fig.suptitle(f"Figure {number}: loss spike — seed {seed}; {describe(history, scale, 1)}")
    fig.tight_layout()
    save_png(fig, output)
