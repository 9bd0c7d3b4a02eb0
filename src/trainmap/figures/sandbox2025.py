"""Figures of "A Visual Case Study of the Training Dynamics in Neural Networks" (2025).

The figures made from the sandbox's logs and tables (:mod:`trainmap.sandbox.results`):
the ablations (figures 6, 7), transfer against scratch (9), gradient norms (15, 16,
18, 19) and activation sparsity (17, 20). They never import torch. The figures made
from frames of the model (1-5, 8, 10-14) are in :mod:`trainmap.figures.sandbox2025_frames`,
the training video in :mod:`trainmap.figures.sandbox2025_video`. Every figure is one
PNG under ``results/sandbox2025/`` whose title says what it is made from (p, d, runs,
epochs, ``scale``).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from trainmap.figures import save_png
from trainmap.sandbox import analysis
from trainmap.sandbox.analysis import SparsityGroup
from trainmap.sandbox.results import Paths, describe, gradient_layers, ranked_runs, read_logs


def ablation_figure(
    logs: dict[str, Paths], base: Paths, output: str | Path, scale: str, averaged: bool
) -> None:
    """Figures 6 (one seed) and 7 (mean ± std over seeds): final test accuracy per ablation.

    Parameters
    ----------
    logs
        Per ablated hyperparameter, the logs of its jobs.
    base
        The logs of the ``base`` experiment, whose runs are each grid's runs at the
        default value when they match it (``analysis.with_shared_runs``).
    output
        The PNG.
    scale
        The config's ``scale``, printed in the title.
    averaged
        Mean ± std over seeds (figure 7) instead of seed 0 alone (figure 6).
    """
    fig, axes = plt.subplots(1, len(logs), figsize=(4.5 * len(logs), 4), squeeze=False)
    seeds = set()
    reference = read_logs(base)
    for ax, (key, paths) in zip(axes[0], logs.items(), strict=True):
        log = analysis.with_shared_runs(read_logs(paths), reference, key)
        seeds.add(log["seed"].nunique())
        summary = analysis.grid_summary(log, key)
        if averaged:
            ax.plot(summary[key], summary["mean"], marker="o")
            ax.fill_between(
                summary[key],
                summary["mean"] - summary["std"],
                summary["mean"] + summary["std"],
                alpha=0.3,
            )
        else:
            ax.plot(summary[key], summary["one_seed"], marker="o")
        ax.set_xscale("log", base=2 if key == "batch_size" else 10)
        ax.set_xlabel(key), ax.set_ylabel("final test accuracy"), ax.set_ylim(0, 1.05)
        ax.set_title(f"{key} ({log['epoch'].max()} epochs)")
    what = f"mean ± std over {max(seeds)} seeds" if averaged else "one seed (seed 0)"
    number = 7 if averaged else 6
    first = log.iloc[0]
    fig.suptitle(f"Figure {number}: ablations, {what}; p={first.p}, d={first.d}, scale: {scale}")
    fig.tight_layout()
    save_png(fig, output)


def figure9(transfer: Paths, scratch: Paths, output: str | Path, scale: str) -> None:
    """Transfer p = 2 -> 3 against p = 3 from scratch: mean and max final test accuracy."""
    groups = {"p=3 from scratch": read_logs(scratch), "p=2 → p=3 transfer": read_logs(transfer)}
    finals = {name: analysis.final_rows(log)["test_acc"].to_numpy() for name, log in groups.items()}
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, (stat, fn) in zip(axes, (("mean", np.mean), ("max", np.max)), strict=True):
        values = [fn(v) for v in finals.values()]
        ax.bar(list(finals), values, color=["tab:gray", "tab:blue"])
        for i, v in enumerate(values):
            ax.text(i, v + 0.01, f"{v:.3f}", ha="center")
        ax.set_ylim(0, 1.1), ax.set_ylabel(f"{stat} final test accuracy (p=3)")
        ax.set_title(f"{stat} over runs")
    log = groups["p=3 from scratch"]
    fig.suptitle(
        f"Figure 9: transfer vs scratch, {len(finals['p=3 from scratch'])} runs each, "
        f"{log['epoch'].max()} epochs on p=3; d={log['d'].iloc[0]}, scale: {scale}"
    )
    fig.tight_layout()
    save_png(fig, output)


def gradnorm_figure(number: int, logs: Paths, output: str | Path, scale: str, batch: str) -> None:
    """Figures 15, 16, 18, 19: loss, accuracy and per-layer gradient norms of the best run.

    The gradient norms are drawn on a log and on a linear scale; ``batch`` says which
    regime the jobs trained in (printed in the title).
    """
    log = read_logs(logs)
    run = ranked_runs(log)[0]
    history = log[(log["run"] == run) & (log["epoch"] > 0)].sort_values("epoch")
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.2))
    for ax, what in zip(axes[:2], ("loss", "acc"), strict=False):
        ax.plot(history.epoch, history[f"train_{what}"], label="train")
        ax.plot(history.epoch, history[f"test_{what}"], label="test")
        ax.set_title("loss" if what == "loss" else "accuracy"), ax.legend()
    axes[0].set_yscale("log")
    for ax, log_scale in zip(axes[2:], (True, False), strict=True):
        for layer in gradient_layers(history):
            ax.plot(history.epoch, history[f"grad_{layer}"], label=layer)
        if log_scale:
            ax.set_yscale("log")
        ax.set_title(f"gradient norm per layer ({'log' if log_scale else 'linear'})")
        ax.legend()
    for ax in axes:
        ax.set_xlabel("epoch")
    seed = int(history["seed"].iloc[0])
    fig.suptitle(
        f"Figure {number}: {batch}, seed {seed} (mean gradient norm over the epoch's steps); "
        f"{describe(history, scale, 1)}"
    )
    fig.tight_layout()
    save_png(fig, output)


def sparsity_figure(
    groups: list[SparsityGroup],
    eps: np.ndarray,
    output: str | Path,
    scale: str,
    threshold: float,
    by_d: bool = False,
) -> pd.DataFrame:
    """Activation sparsity of final models against epsilon.

    Figure 17 (``by_d`` False): successful (test acc > ``threshold``) vs failed models,
    and the same curves coloured by test accuracy. Figure 20 (``by_d``): one panel per
    embedding width d.

    Parameters
    ----------
    groups
        The curves of :func:`trainmap.sandbox.probe.sparsity_groups`: one group, or
        one per width d.
    eps
        The thresholds the curves are measured at.
    output
        The PNG.
    scale
        The config's ``scale``, printed in the title.
    threshold
        Final test accuracy above which a model counts as successful.
    by_d
        One panel per group (figure 20) instead of figure 17's two panels.

    Returns
    -------
    pandas.DataFrame
        One row per model: ``d``, ``run``, ``test_acc``, ``success`` and
        ``mean_sparsity`` (the curve's mean over the log-spaced epsilons, i.e. its area
        in log ε, normalised).
    """
    panels = len(groups) if by_d else 2
    fig, axes = plt.subplots(1, panels, figsize=(4.5 * panels, 4.2), squeeze=False)
    axes = axes[0]
    runs, rows = 0, []
    for ax, group in zip(axes, groups, strict=False):
        log, curves = group.log, group.curves
        acc = analysis.final_rows(log).set_index("run").sort_index()["test_acc"].to_numpy()
        ok = acc > threshold
        runs += len(acc)
        rows.append(_sparsity_rows(log, curves, acc, ok))
        _draw_success(ax, eps, log, curves, ok)
        if not by_d:
            _draw_by_accuracy(axes[1], eps, curves, acc)
    for ax in axes:
        ax.set_xscale("log"), ax.set_xlabel("ε"), ax.set_ylabel("share of MLP activations |a| < ε")
    fig.suptitle(_sparsity_title(20 if by_d else 17, log, threshold, runs, scale))
    fig.tight_layout()
    save_png(fig, output)
    return pd.concat(rows, ignore_index=True)


def _sparsity_title(number: int, log: pd.DataFrame, threshold: float, runs: int, scale: str) -> str:
    first = log.iloc[0]
    return (
        f"Figure {number}: activation sparsity of final models on their test sets\n"
        f"(success: test acc > {threshold}); p={first.p}, {runs} runs, "
        f"{log['epoch'].max()} epochs, scale: {scale}"
    )


def _sparsity_rows(
    log: pd.DataFrame, curves: np.ndarray, acc: np.ndarray, ok: np.ndarray
) -> pd.DataFrame:
    """The table's rows of one group: one per model."""
    return pd.DataFrame(
        {
            "d": int(log["d"].iloc[0]),
            "run": np.arange(len(acc)),
            "test_acc": acc,
            "success": ok,
            "mean_sparsity": np.asarray(curves).mean(axis=1),
        }
    )


def _draw_success(
    ax: plt.Axes, eps: np.ndarray, log: pd.DataFrame, curves: np.ndarray, ok: np.ndarray
) -> None:
    """One group's curves, successful models blue and failed ones red."""
    for curve, good in zip(curves, ok, strict=True):
        ax.plot(eps, curve, color="tab:blue" if good else "tab:red", alpha=0.7)
    ax.set_title(f"d={log['d'].iloc[0]}: {ok.sum()} successful (blue), {(~ok).sum()} failed (red)")


def _draw_by_accuracy(ax: plt.Axes, eps: np.ndarray, curves: np.ndarray, acc: np.ndarray) -> None:
    """Figure 17's second panel: the curves coloured by final test accuracy."""
    cmap = plt.get_cmap("viridis")
    for curve, a in zip(curves, acc, strict=True):
        ax.plot(eps, curve, color=cmap(a))
    plt.colorbar(plt.cm.ScalarMappable(cmap=cmap), ax=ax, label="final test accuracy")
    ax.set_title("coloured by final test accuracy")
