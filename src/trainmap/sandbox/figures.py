"""The figures of the visual case study (``results/sandbox2025/figureN.png``), from saved runs.

Every function reads job logs (Parquet) and weight snapshots (npz) written by the
trainer and writes one PNG; each figure's title says what it is made from (p, d,
runs, epochs, ``scale``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from trainmap.errors import TrainmapError
from trainmap.sandbox import analysis
from trainmap.sandbox.data import Task, make_data
from trainmap.sandbox.frames import PARAMS, FrameRenderer, member_params
from trainmap.sandbox.model import LAYERS, Sandbox, Shape
from trainmap.sandbox.trainer import load_snapshots
from trainmap.tables import atomic_output

Paths = Sequence[str | Path]


def _loss_panel(ax: plt.Axes, history: pd.DataFrame, marks: Sequence[float]) -> None:
    """Train and test loss (log scale) with the given epochs marked in red."""
    ax.plot(history.epoch, history.train_loss, label="train")
    ax.plot(history.epoch, history.test_loss, label="test")
    for epoch in marks:
        ax.axvline(epoch, color="red", ls="--")
    ax.set_yscale("log"), ax.set_xlabel("epoch"), ax.legend()


def read_logs(paths: Paths) -> pd.DataFrame:
    """Logs of one experiment's jobs, with a global ``run`` index matching the snapshots."""
    logs = []
    offset = 0
    for path in paths:
        log = pd.read_parquet(path)
        log["run"] = log["member"] + offset
        offset += log["member"].max() + 1
        logs.append(log)
    return pd.concat(logs, ignore_index=True)


def task_of(log: pd.DataFrame) -> Task:
    first = log.iloc[0]
    return Task(int(first["seq_len"]), int(first["k"]), int(first["p"]))


def describe(log: pd.DataFrame, scale: str, runs: int | None = None) -> str:
    runs = log["run"].nunique() if runs is None else runs
    return (
        f"p={log['p'].iloc[0]}, d={log['d'].iloc[0]}, h={log['hidden'].iloc[0]}, "
        f"{runs} run(s), {log['epoch'].max()} epochs, scale: {scale}"
    )


def ranked_runs(log: pd.DataFrame) -> list[int]:
    """Runs ordered by final test accuracy (best first; ties by lower seed)."""
    last = analysis.final_rows(log).sort_values(["test_acc", "seed"], ascending=[False, True])
    return last["run"].tolist()


def _save(fig: plt.Figure, output: str | Path) -> None:
    with atomic_output(output) as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def frame_figure(
    logs: Paths,
    weights: Paths,
    output: str | Path,
    rank: int,
    epoch: int | None,
    scale: str,
    what: str,
) -> None:
    """Figures 1-4, 10, 11: the 16-panel frame of the ``rank``-th best run at ``epoch``
    (None: the last epoch)."""
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
    _save(renderer.draw(member_params(snaps, epoch, run), epoch), output)


def figure5(logs: Paths, weights: Paths, output: str | Path, scale: str, **rules: float) -> None:
    """Loss curve of one run with snapshots at the start and end of its two largest loss
    drops (largest fall of the loss itself, so the slow final convergence on a log scale
    does not count): the best-ranked run with at least two drops, else the one with most."""
    log, snaps = read_logs(logs), load_snapshots(weights)
    best = None
    for run in ranked_runs(log):
        loss = log[log["run"] == run].sort_values("epoch")["train_loss"].to_numpy()
        drops = analysis.loss_drops(loss, **rules)
        drops = sorted(drops, key=lambda d: loss[d.end] - loss[d.start])[:2]
        if best is None or len(drops) > len(best[1]):
            best = (run, sorted(drops, key=lambda d: d.start))
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
    _save(fig, output)


def ablation_figure(logs: dict[str, Paths], output: str | Path, scale: str, averaged: bool) -> None:
    """Figures 6 (one seed) and 7 (mean ± std over seeds): final test accuracy against
    each ablated hyperparameter (``logs`` maps the hyperparameter to its jobs' logs)."""
    fig, axes = plt.subplots(1, len(logs), figsize=(4.5 * len(logs), 4), squeeze=False)
    seeds = set()
    for ax, (key, paths) in zip(axes[0], logs.items(), strict=True):
        log = read_logs(paths)
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
    _save(fig, output)


def figure8(logs: Paths, weights: Paths, output: str | Path, scale: str, runs: int = 4) -> None:
    """Attention maps at initialisation and at the end of training, side by side."""
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
    _save(fig, output)


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
    _save(fig, output)


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
    """Figures 12-14: the ``which``-th largest detected loss spike (over all runs), with
    the loss around it and the frame panels just before and at its peak."""
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
        _save(fig, output)
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
    _save(fig, output)


def gradnorm_figure(number: int, logs: Paths, output: str | Path, scale: str, batch: str) -> None:
    """Figures 15, 16, 18, 19: loss, accuracy and per-layer gradient norms (log and linear)
    of the best run."""
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
        for layer in LAYERS:
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
    _save(fig, output)


def sparsity_curves(log: pd.DataFrame, snaps: dict[str, np.ndarray], eps: np.ndarray) -> np.ndarray:
    """Activation sparsity (runs, len(eps)) of every run's final weights on its test set."""
    task = task_of(log)
    last = analysis.final_rows(log).set_index("run").sort_index()
    curves = []
    for run, row in last.iterrows():
        params = {n: torch.as_tensor(snaps[n][-1, run])[None] for n in PARAMS}
        vocab, d = params["token"].shape[1:]
        model = Sandbox(Shape(task.seq_len, vocab, d, params["biases"].shape[1]), [0])
        model.load_members(params)
        data = make_data(task, int(row.n), int(row.n_test), int(row.seed), bool(row.disjoint_test))
        x_test = data[2]
        with torch.no_grad():
            activations = model.trace(torch.as_tensor(x_test)[None], task.p)["activations"]
        curves.append(analysis.activation_sparsity(activations.numpy(), eps))
    return np.array(curves)


def sparsity_figure(
    logs: Paths,
    weights: Paths,
    output: str | Path,
    scale: str,
    threshold: float,
    eps_range: tuple[float, float] = (1e-5, 1e2),
    by_d: bool = False,
) -> pd.DataFrame:
    """Activation sparsity of final models against epsilon.

    Figure 17 (``by_d`` False): successful (test acc > ``threshold``) vs failed models,
    and the same curves coloured by test accuracy. Figure 20 (``by_d``): one panel per
    embedding width d, jobs grouped by the ``d`` in their logs. Returns one row per
    model: ``d``, ``run``, ``test_acc``, ``success`` and ``mean_sparsity`` (the curve's
    mean over the log-spaced epsilons, i.e. its area in log ε, normalised).
    """
    eps = np.logspace(np.log10(eps_range[0]), np.log10(eps_range[1]), 60)
    groups: dict[int, tuple[list, list]] = {}
    for log_path, weights_path in zip(logs, weights, strict=True):
        d = int(pd.read_parquet(log_path, columns=["d"])["d"].iloc[0]) if by_d else 0
        groups.setdefault(d, ([], []))[0].append(log_path)
        groups[d][1].append(weights_path)
    panels = len(groups) if by_d else 2
    fig, axes = plt.subplots(1, panels, figsize=(4.5 * panels, 4.2), squeeze=False)
    axes = axes[0]
    runs, rows = 0, []
    for ax, (_, (log_paths, weight_paths)) in zip(axes, sorted(groups.items()), strict=False):
        log = read_logs(log_paths)
        curves = sparsity_curves(log, load_snapshots(weight_paths), eps)
        acc = analysis.final_rows(log).set_index("run").sort_index()["test_acc"].to_numpy()
        ok = acc > threshold
        runs += len(acc)
        rows.append(
            pd.DataFrame(
                {
                    "d": int(log["d"].iloc[0]),
                    "run": np.arange(len(acc)),
                    "test_acc": acc,
                    "success": ok,
                    "mean_sparsity": np.asarray(curves).mean(axis=1),
                }
            )
        )
        for curve, good in zip(curves, ok, strict=True):
            ax.plot(eps, curve, color="tab:blue" if good else "tab:red", alpha=0.7)
        ax.set_title(
            f"d={log['d'].iloc[0]}: {ok.sum()} successful (blue), {(~ok).sum()} failed (red)"
        )
        if not by_d:
            cmap = plt.get_cmap("viridis")
            for curve, a in zip(curves, acc, strict=True):
                axes[1].plot(eps, curve, color=cmap(a))
            plt.colorbar(plt.cm.ScalarMappable(cmap=cmap), ax=axes[1], label="final test accuracy")
            axes[1].set_title("coloured by final test accuracy")
    for ax in axes:
        ax.set_xscale("log"), ax.set_xlabel("ε"), ax.set_ylabel("share of MLP activations |a| < ε")
    number = 20 if by_d else 17
    first = log.iloc[0]
    fig.suptitle(
        f"Figure {number}: activation sparsity of final models on their test sets\n"
        f"(success: test acc > {threshold}); p={first.p}, {runs} runs, "
        f"{log['epoch'].max()} epochs, scale: {scale}"
    )
    fig.tight_layout()
    _save(fig, output)
    return pd.concat(rows, ignore_index=True)
