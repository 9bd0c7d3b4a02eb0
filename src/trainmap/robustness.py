"""Which verdicts survive a rerun: the claims of this run against other runs of them.

Another run of the same config on a second block of fresh seeds (``first_seed``,
``config/confirm.yaml``) or under another rounding path (``numerics: native`` on
another CPU) judges the same claims. A claim that holds in one run and fails in
another is *fragile*: its verdict is a coin toss of seeds or rounding, whatever
either run says. One judged alike everywhere is *stable*; one that some run could not
judge (or lacks) is *not compared*.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from trainmap.errors import TrainmapError
from trainmap.fidelity import FAILS, HOLDS
from trainmap.tables import to_markdown

FRAGILE, STABLE, NOT_COMPARED = "fragile", "stable", "not compared"
THIS_RUN = "this run"


def read_verdicts(path: str | Path) -> pd.Series:
    """A fidelity table's status by claim id (``results/fidelity.csv`` of a run)."""
    path = Path(path)
    if not path.exists():
        raise TrainmapError(f"robustness: fidelity table {path} does not exist")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ("id", "claim", "status") if c not in table]
    if missing:
        raise TrainmapError(f"robustness: fidelity table {path} lacks column(s) {missing}")
    return table.set_index("id")["status"]


def compare_verdicts(this: pd.DataFrame, others: Mapping[str, pd.Series]) -> pd.DataFrame:
    """One row per claim of ``this`` (a fidelity table): its status in this run and in
    each other run (``""``: the run lacks the claim), and ``fragile``, ``stable`` or
    ``not compared``. Fragile claims first, then in the fidelity table's order."""
    out = this[["id", "claim"]].copy()
    out[THIS_RUN] = this["status"].to_numpy()
    for label, verdicts in others.items():
        out[label] = out["id"].map(verdicts).fillna("")
    runs = out[[THIS_RUN, *others]]
    judged = runs.isin([HOLDS, FAILS]).all(axis=1)
    alike = runs.nunique(axis=1) == 1
    out["robustness"] = NOT_COMPARED
    out.loc[judged & alike, "robustness"] = STABLE
    out.loc[runs.isin([HOLDS]).any(axis=1) & runs.isin([FAILS]).any(axis=1), "robustness"] = FRAGILE
    order = out["robustness"].map({FRAGILE: 0, STABLE: 1, NOT_COMPARED: 2})
    return out.iloc[order.argsort(kind="stable")].reset_index(drop=True)


def markdown(table: pd.DataFrame, runs: Mapping[str, str]) -> str:
    """The robustness report: which claims are fragile, then every claim's verdicts."""
    counts = table["robustness"].value_counts()
    fragile = table.loc[table["robustness"] == FRAGILE, "id"].tolist()
    lines = [
        "# Robustness of the verdicts",
        "",
        "This run's claims against the same claims judged by "
        + ", ".join(f"**{label}** (`{path}`)" for label, path in runs.items())
        + ". Fragile: holds in one run and fails in another; not compared: some run "
        "did not judge it.",
        "",
        f"{counts.get(FRAGILE, 0)} fragile, {counts.get(STABLE, 0)} stable, "
        f"{counts.get(NOT_COMPARED, 0)} not compared.",
        "",
        f"Fragile claims: {', '.join(fragile) if fragile else 'none'}.",
        "",
        to_markdown(table),
    ]
    return "\n".join(lines)
