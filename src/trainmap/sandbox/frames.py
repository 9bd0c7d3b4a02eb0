"""The 16-panel frame of the visual sandbox: every layer of one d = 2 run at one epoch.

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
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.colors import hsv_to_rgb

from trainmap.errors import TrainmapError
from trainmap.sandbox.data import Task, probe_sequences
from trainmap.sandbox.model import PARAMS, Sandbox, Shape

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


def member_params(snapshots: dict[str, np.ndarray], epoch: int, member: int) -> dict[str, Any]:
    """One member's weights at one saved epoch of a weight-snapshot file."""
    epochs = list(snapshots["epochs"])
    if epoch not in epochs:
        raise TrainmapError(f"sandbox: no weights saved at epoch {epoch} (saved: {epochs[:5]}...)")
    e = epochs.index(epoch)
    return {name: snapshots[name][e, member] for name in PARAMS}


def _model(params: dict[str, np.ndarray]) -> Sandbox:
    vocab, d = params["token"].shape
    if d != 2:
        raise TrainmapError(f"sandbox frames draw d = 2 runs only, got d = {d}")
    shape = Shape(params["position"].shape[0], vocab, d, params["biases"].shape[0])
    model = Sandbox(shape, [0])
    model.load_members({n: torch.as_tensor(v)[None] for n, v in params.items()})
    return model


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

    Args:
        task: the problem (L, k, p) the frames show.
        history: the run's per-epoch log (``epoch``, ``train_loss``, ``test_loss``,
            ``train_acc``, ``test_acc``).
        label: what the frame is made from (printed in the title).
        dpi: resolution.
        annotate: label every (x, t) point (slow: off for videos).
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
        model = _model(params)
        with torch.no_grad():
            out = model.trace(torch.as_tensor(self.x)[None], self.task.p)
        out = {k: v[0].numpy() for k, v in out.items()}
        sums = params["token"][: self.task.p, None] + params["position"][None]  # (p, L, d)
        z = sums / np.linalg.norm(sums, axis=-1, keepdims=True)
        return {"model": model, "params": params, **out, "sums": sums, "zs": z}

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
        grid = torch.as_tensor(np.stack([gx, gy], -1).reshape(1, -1, 2), dtype=torch.float32)
        with torch.no_grad():
            columns = grid.transpose(1, 2)
            zeta = model.mlp(columns)["zeta"] if stage == "xi" else columns
            probs = model.decode(zeta, self.task.p)["logits"][0].T.softmax(-1).numpy()
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
