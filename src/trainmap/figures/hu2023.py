"""Tables and figures of Hu et al. (2023) from the analysis outputs.

Every figure names what it is made from: the setting's title, the config's
``scale`` and the number of runs.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import graphviz
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from trainmap.analysis.align import warn_few_runs
from trainmap.analysis.stability import summary_row
from trainmap.analysis.training_map import feature_label
from trainmap.figures import save_png
from trainmap.tables import atomic_output


@dataclass(frozen=True)
class Panel:
    """What one setting contributes to a multi-setting figure or table."""

    name: str
    title: str
    runs: int


def read_panels(panels: list[dict], splits: Sequence[str | Path]) -> list[Panel]:
    """Each setting's panel with its number of analysed runs.

    Parameters
    ----------
    panels
        ``{"name", "title"}`` per setting, in the rule's order.
    splits
        Each setting's ``split.csv`` (one row per analysed run), in the same order.
    """
    return [
        Panel(**panel, runs=len(pd.read_csv(split)))
        for panel, split in zip(panels, splits, strict=True)
    ]


def read_tables(panels: list[dict], files: Sequence[str | Path]) -> dict[str, pd.DataFrame]:
    """Each setting's CSV table by its name; ``files`` in the order of ``panels``."""
    return {panel["name"]: pd.read_csv(f) for panel, f in zip(panels, files, strict=True)}


def label(title: str, scale: str, runs: int, width: int = 60) -> str:
    """The line every figure carries: what it is made from.

    The title is wrapped at ``width`` characters so that the titles of neighbouring
    panels do not run into each other.
    """
    return f"{textwrap.fill(title, width)}\nscale: {scale}, {runs} runs"


def training_map(
    edges: pd.DataFrame, nodes: pd.DataFrame, title: str, png: Path, svg: Path
) -> None:
    """Draw the training map with Graphviz: states as nodes, labelled edges; PNG and SVG."""
    graph = graphviz.Digraph(
        graph_attr={
            "rankdir": "LR",
            "label": title,
            "labelloc": "t",
            "fontsize": "16",
            "fontname": "Helvetica",
            "nodesep": "0.6",
            "ranksep": "1.2",
        },
        node_attr={"shape": "circle", "fontname": "Helvetica", "style": "filled"},
        edge_attr={"fontname": "Helvetica", "fontsize": "10"},
    )
    for node in nodes.itertuples(index=False):
        starts = node.runs_starting > 0
        graph.node(
            str(node.state),
            f"{node.state}\n{node.runs_visiting} runs",
            fillcolor="#cde4f7" if starts else "#f2f2f2",
            penwidth="2.5" if starts else "1",
        )
    for edge in edges.itertuples(index=False):
        graph.edge(
            str(edge.source),
            str(edge.target),
            label=edge.label,
            penwidth=str(1 + 3 * edge.runs / edge.runs_total),
        )
    for path, fmt in ((png, "png"), (svg, "svg")):
        with atomic_output(path) as tmp:
            tmp.write_bytes(graph.pipe(format=fmt, engine="dot"))


def edge_figure_table(edges: pd.DataFrame, top: int = 3) -> pd.DataFrame:
    """The table beside a map, in the paper's layout (figure 2)."""
    features = [
        ", ".join(
            feature_label(row[f"feature_{i}"], row[f"change_{i}"])
            for i in range(1, top + 1)
            if isinstance(row.get(f"feature_{i}"), str)
        )
        for row in edges.to_dict("records")
    ]
    convergence = [
        f"{m:.4g} ± {s:.3g}" if pd.notna(m) and pd.notna(s) else (f"{m:.4g}" if pd.notna(m) else "")
        for m, s in zip(edges["mean_convergence"], edges["sem_convergence"], strict=True)
    ]
    unit = edges["convergence_unit"].dropna()
    return pd.DataFrame(
        {
            "Edge": [f"{s} → {t}" for s, t in zip(edges["source"], edges["target"], strict=True)],
            f"Top {top} important feature changes (z-score)": features,
            "Transition frequency": [
                f"{r} / {n}" for r, n in zip(edges["runs"], edges["runs_total"], strict=True)
            ],
            f"Mean convergence {unit.iloc[0] if len(unit) else 'time'}": convergence,
        }
    )


def _grid(n: int) -> tuple[plt.Figure, np.ndarray]:
    columns = min(n, 3)
    rows = int(np.ceil(n / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.6 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat


def model_selection(
    panels: list[Panel], selections: Mapping[str, pd.DataFrame], scale: str, path: Path
) -> None:
    """Figure 10: held-out BIC, AIC and −2 log-likelihood against the number of states.

    With K folds each point scores the held-out runs of all folds together (every
    run held out once), with its standard error as a bar. A choice at the largest k
    tried is marked: more states may fit better.
    """
    fig, axes = _grid(len(panels))
    for ax, panel in zip(axes, panels, strict=False):
        sel = selections[panel.name]
        curves = (
            ("heldout_bic", 1, "o-", "BIC"),
            ("heldout_aic", 1, "s--", "AIC"),
            ("heldout_loglik", -2, "^:", "−2 log-lik."),
        )
        folds = int(sel["folds"].max())
        where = f"held-out, {folds} folds together ± SE" if folds > 1 else "held-out"
        for column, factor, style, name in curves:
            ax.errorbar(
                sel["k"],
                factor * sel[column],
                yerr=abs(factor) * sel[f"{column}_se"].fillna(0),
                fmt=style,
                capsize=2,
                label=f"{name} ({where})",
            )
        chosen = sel.loc[sel["chosen"]].iloc[0]
        ax.axvline(chosen["k"], color="grey", lw=0.8)
        rule = ", 1-SE rule" if chosen["one_standard_error"] else ""
        edge = "\nlargest k tried: more states may fit better" if chosen["at_edge"] else ""
        ax.set_title(
            f"{label(panel.title, scale, panel.runs)}\n{int(chosen['k'])} states "
            f"({chosen['criterion']}{rule}){edge}",
            fontsize=8,
            color="firebrick" if chosen["at_edge"] else "black",
        )
        ax.set_xlabel("hidden states k")
        ax.set_xticks(sel["k"])
        ax.legend(fontsize=7)
    fig.suptitle("Model selection curves (Hu et al. 2023, figure 10)")
    fig.tight_layout()
    save_png(fig, path, dpi=130)


def convergence_histograms(
    panels: list[Panel],
    convergence: Mapping[str, pd.DataFrame],
    thresholds: Mapping[str, float],
    scale: str,
    path: Path,
) -> None:
    """Figure 11: histogram of convergence times per setting; censored runs hatched."""
    fig, axes = _grid(len(panels))
    for ax, panel in zip(axes, panels, strict=False):
        times = convergence[panel.name]
        bins = np.histogram_bin_edges(times["time"], bins=min(20, max(5, len(times) // 2)))
        ax.hist(times.loc[times["converged"], "time"], bins=bins, label="converged")
        censored = times.loc[~times["converged"], "time"]
        if len(censored):
            ax.hist(censored, bins=bins, hatch="//", alpha=0.6, label="never (censored)")
        ax.set_xlabel(f"convergence {times['unit'].iloc[0]}")
        ax.set_ylabel("runs")
        ax.set_title(
            f"{label(panel.title, scale, panel.runs)}\nthreshold {thresholds[panel.name]}",
            fontsize=8,
        )
        ax.legend(fontsize=7)
    fig.suptitle("Convergence times (Hu et al. 2023, figure 11)")
    fig.tight_layout()
    save_png(fig, path, dpi=130)


#: Line styles of the prediction methods (trainmap.analysis.predict.METHODS).
PREDICTION_STYLES = {
    "map": ("o-", "map (forward-filtered states)"),
    "mean": ("s--", "mean of the other runs"),
    "accuracy": ("^:", "eval-accuracy extrapolation"),
    "metrics": ("d-.", "ridge on raw z-scores (no map)"),
}


def prediction_errors(
    panels: list[Panel],
    summaries: Mapping[str, pd.DataFrame],
    seeds: Mapping[str, list[int]],
    scale: str,
    path: Path,
) -> None:
    """Error of the predicted convergence time against the prefix's length, per method.

    Mean |log predicted − log true| over held-out runs (K folds over runs, the map
    refitted without them); the legend gives each method's interval coverage at 25 %.
    """
    fig, axes = _grid(len(panels))
    for ax, panel in zip(axes, panels, strict=False):
        summary = summaries[panel.name]
        seen = seeds.get(panel.name)
        title = label(panel.title, scale, panel.runs)
        if seen:
            title += f", seeds {min(seen)}–{max(seen)}"
        ax.set_title(title, fontsize=8)
        if summary.empty:
            ax.text(0.5, 0.5, "too few converged runs:\nnot evaluated", ha="center",
                    va="center", transform=ax.transAxes)  # fmt: skip
            continue
        for method, rows in summary.groupby("method", sort=False):
            style, name = PREDICTION_STYLES[method]
            at25 = rows.loc[rows["fraction"] == 0.25, "coverage"]
            coverage = f", coverage {at25.iloc[0]:.0%} at 25 %" if len(at25) else ""
            ax.plot(100 * rows["fraction"], rows["mean_log_error"], style, label=name + coverage)
        ax.set_xlabel("prefix: % of the median convergence time")
        ax.set_ylabel("mean |log error| (held-out runs)")
        ax.set_xticks(100 * np.sort(summary["fraction"].unique()))
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=6)
    fig.suptitle("Convergence predicted from a run's first checkpoints (beyond the papers)",
                 fontsize=9)  # fmt: skip
    fig.tight_layout()
    save_png(fig, path, dpi=130)


def table1(
    panels: list[Panel],
    summaries: Mapping[str, pd.DataFrame],
    selections: Mapping[str, pd.DataFrame],
    normalization: str = "pooled",
) -> pd.DataFrame:
    """Table 1: predictability of convergence time from the state distribution, per setting.

    ``Normalization`` names the config's, with a warning where ``aligned`` has
    too few runs (:func:`trainmap.analysis.align.warn_few_runs`).

    Beside the paper's in-sample R² (with its bootstrap interval, which surrounds
    that optimistic number), ``R2 (held-out runs)`` predicts each run from the
    others and ``Permutation p`` tests R² against shuffled convergence times. An
    underpowered regression (too few runs per state) shows none of these, only
    why (``Regression``); its numbers stay in the setting's
    ``results/regression/<name>/summary.csv``. With censored runs the regression's
    target is the convergence time restricted at ``Restricted at``.
    """
    rows = []
    for panel in panels:
        s = summaries[panel.name].iloc[0]
        chosen = selections[panel.name].loc[selections[panel.name]["chosen"]].iloc[0]
        rows.append(_table1_row(panel, s, chosen, normalization))
    return pd.DataFrame(rows)


def _regression_state(s: pd.Series) -> str:
    """``ok``, or why the regression's numbers are not shown."""
    if np.isnan(s["rsquared"]):
        return "none (see the regression log)"
    if s["underpowered"]:
        return (
            f"underpowered: {int(s['regressed_runs'])} runs for {int(s['states_visited'])} states"
        )
    return "ok"


def _table1_row(panel: Panel, s: pd.Series, chosen: pd.Series, normalization: str) -> dict:
    """One setting's row: ``s`` its regression summary, ``chosen`` its chosen k's row."""
    regression = _regression_state(s)
    shown = regression == "ok"
    interval = (
        f"{s['rsquared_low']:.2f} to {s['rsquared_high']:.2f}"
        if shown and np.isfinite(s["rsquared_low"])
        else ""
    )
    return {
        "name": panel.name,
        "Dataset": panel.title,
        "runs": int(s["runs"]),
        "Normalization": normalization_note(normalization, int(s["runs"])),
        "states": int(s["k"]),
        "States chosen": (
            f"{int(chosen['k'])}, the largest tried: more may fit better"
            if chosen["at_edge"]
            else "inside the sweep"
        ),
        "R2": s["rsquared"] if shown else np.nan,
        "R2 interval": interval,
        "Adjusted R2": s["adj_rsquared"] if shown else np.nan,
        "R2 (held-out runs)": s["rsquared_heldout"] if shown else np.nan,
        "p-value": s["f_pvalue"] if shown else np.nan,
        "Permutation p": s["permutation_pvalue"] if shown else np.nan,
        "Regression": regression,
        "Dissimilarity": s["dissimilarity"],
        "Dissimilarity (label-free)": s["dissimilarity_label_free"],
        "Forking": "yes" if s["forking"] else "no",
        "Detour states": s["detours"] if isinstance(s["detours"], str) else "",
        "Unconverged runs": s["unconverged"],
        "Restricted at": s["restricted_at"],
    }


def normalization_note(normalization: str, runs: int) -> str:
    """Table 1's normalization cell: the method, and the warning of aligning too few runs."""
    warning = warn_few_runs(runs) if normalization == "aligned" else ""
    return f"{normalization}: {warning}" if warning else normalization


def table2(panels: list[Panel], coefficients: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Table 2: regression coefficients per state with their intervals, detours marked."""
    frames = []
    for panel in panels:
        c = coefficients[panel.name]
        frames.append(
            pd.DataFrame(
                {
                    "name": panel.name,
                    "Dataset": panel.title,
                    "State": c["state"],
                    "Coefficient": c["coefficient"],
                    "CI low": c["ci_low"],
                    "CI high": c["ci_high"],
                    "p-value": c["p_value"],
                    "Slowdown": c["slowdown"],
                    "Slowdown low": c["slowdown_low"],
                    "Slowdown high": c["slowdown_high"],
                    "Runs visiting": c["runs_visiting"],
                    "Detour": c["detour"],
                    "Not judged because": c["detour_note"],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def table2_markdown(table: pd.DataFrame) -> pd.DataFrame:
    """Table 2 for Markdown: detour states in bold, as in the paper."""
    out = table.copy()
    out["State"] = [
        f"**{s}**" if d else str(s) for s, d in zip(out["State"], out["Detour"], strict=True)
    ]
    return out


def table4(
    panels: list[Panel],
    hmm_selection: Mapping[str, pd.DataFrame],
    baseline_selection: Mapping[str, pd.DataFrame],
) -> pd.DataFrame:
    """Table 4: components and held-out BIC of K-means, HMM-1 and the HMM, per setting."""
    rows = []
    for panel in panels:
        row = {"name": panel.name, "Dataset": panel.title}
        chosen = baseline_selection[panel.name]
        chosen = chosen[chosen["chosen"]].set_index("model")
        for model, column in (("kmeans", "k-means"), ("hmm1", "HMM-1")):
            found = model in chosen.index
            row[f"{column} components"] = int(chosen.loc[model, "k"]) if found else np.nan
            row[f"{column} BIC"] = chosen.loc[model, "heldout_bic"] if found else np.nan
        hmm = hmm_selection[panel.name]
        best = hmm[hmm["chosen"]].iloc[0]
        row["HMM components"] = int(best["k"])
        row["HMM BIC"] = best["heldout_bic"]
        rows.append(row)
    return pd.DataFrame(rows)


def stability_table(
    panels: list[Panel],
    replicates: Mapping[str, pd.DataFrame],
    edges: Mapping[str, pd.DataFrame],
) -> pd.DataFrame:
    """Stability of each map across restarts and bootstrap resamples, one row per setting."""
    return pd.DataFrame(
        [
            {
                "name": panel.name,
                "Dataset": panel.title,
                **summary_row(replicates[panel.name], edges[panel.name]),
            }
            for panel in panels
        ]
    )
