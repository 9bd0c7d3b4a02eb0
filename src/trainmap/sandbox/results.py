"""What the sandbox trainer writes, read back without torch.

A sandbox job writes two files (``results/sandbox2025/runs/<job>/``): ``log.parquet``,
one row per (member, epoch) with the losses, accuracies, per-layer gradient norms and
the job's hyperparameters; and ``weights.npz``, the weight snapshots: ``epochs`` (E,),
``seeds``/``lr``/``mlp_discount``/``weight_decay`` (M,) and one array (E, M, ...) per parameter in
:data:`PARAMS`. The figures, the video and the fidelity report read both through this
module.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trainmap.errors import TrainmapError
from trainmap.sandbox import analysis
from trainmap.sandbox.data import Task

#: The model's parameter names, by the layer each belongs to: the names of a weight
#: snapshot's arrays and of the per-layer gradient norms in the log.
LAYERS: dict[str, tuple[str, ...]] = {
    "token": ("token",),
    "position": ("position",),
    "attention": ("query", "value"),
    "mlp": ("receptors", "biases", "assemblers"),
}
MLP_PARAMS = LAYERS["mlp"]
#: Every parameter name, in the order of the model's parameters and of the snapshot files.
PARAMS = tuple(name for names in LAYERS.values() for name in names)

Paths = Sequence[str | Path]


def load_snapshots(paths: Iterable[str | Path]) -> dict[str, np.ndarray]:
    """Weight snapshots of one or more jobs, members concatenated.

    Parameters
    ----------
    paths
        ``weights.npz`` files of jobs that saved the same epochs.

    Returns
    -------
    dict
        ``epochs`` (E,), ``seeds``/``lr``/``mlp_discount``/``weight_decay`` (M,) and one array
        (E, M, ...) per parameter.
    """
    parts = [dict(np.load(path)) for path in paths]
    if not parts:
        raise TrainmapError("sandbox: no weight snapshots given")
    out = {"epochs": parts[0]["epochs"]}
    for key in parts[0]:
        if key != "epochs":
            axis = 0 if parts[0][key].ndim == 1 else 1
            out[key] = np.concatenate([part[key] for part in parts], axis=axis)
    return out


def member_params(snapshots: dict[str, np.ndarray], epoch: int, member: int) -> dict[str, Any]:
    """One member's weights at one saved epoch of :func:`load_snapshots`' result."""
    epochs = list(snapshots["epochs"])
    if epoch not in epochs:
        raise TrainmapError(f"sandbox: no weights saved at epoch {epoch} (saved: {epochs[:5]}...)")
    e = epochs.index(epoch)
    return {name: snapshots[name][e, member] for name in PARAMS}


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
    """The task (sequence length, summed positions, classes) the logged runs learnt."""
    first = log.iloc[0]
    return Task(int(first["seq_len"]), int(first["k"]), int(first["p"]))


def describe(log: pd.DataFrame, scale: str, runs: int | None = None) -> str:
    """What a figure is made from: p, d, h, runs, epochs and the config's ``scale``."""
    runs = log["run"].nunique() if runs is None else runs
    return (
        f"p={log['p'].iloc[0]}, d={log['d'].iloc[0]}, h={log['hidden'].iloc[0]}, "
        f"{runs} run(s), {log['epoch'].max()} epochs, scale: {scale}"
    )


def ranked_runs(log: pd.DataFrame) -> list[int]:
    """Runs ordered by final test accuracy (best first; ties by lower seed)."""
    last = analysis.final_rows(log).sort_values(["test_acc", "seed"], ascending=[False, True])
    return last["run"].tolist()


def gradient_layers(log: pd.DataFrame) -> list[str]:
    """The layers whose gradient norm the log holds (columns ``grad_<layer>``), in order."""
    return [c.removeprefix("grad_") for c in log.columns if c.startswith("grad_")]
