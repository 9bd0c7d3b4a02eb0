"""Saved sandbox weights run forward (torch): what the frames draw, activation sparsity.

The figures that need the model's intermediates (the frames, figures 5, 8 and 12-14,
the video) and the sparsity of figures 17 and 20 rebuild one member's model from its
weight snapshot (:mod:`trainmap.sandbox.results`) here; every other figure reads the
logs only and never imports torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from trainmap.sandbox import analysis
from trainmap.sandbox.analysis import SparsityGroup
from trainmap.sandbox.data import make_data
from trainmap.sandbox.model import Sandbox, Shape
from trainmap.sandbox.results import Paths, load_snapshots, member_params, read_logs, task_of

#: Number of log-spaced epsilons a sparsity curve is measured at.
SPARSITY_POINTS = 60


def snapshot_model(params: dict[str, Any]) -> Sandbox:
    """A one-member model holding one member's saved weights (:func:`member_params`)."""
    vocab, d = params["token"].shape
    shape = Shape(params["position"].shape[0], vocab, d, params["biases"].shape[0])
    model = Sandbox(shape, [0])
    model.load_members({n: torch.as_tensor(v)[None] for n, v in params.items()})
    return model


def trace(params: dict[str, Any], x: np.ndarray, p: int) -> dict[str, Any]:
    """Every intermediate of the forward pass of one member on token ids ``x`` (B, L).

    Returns
    -------
    dict
        The model (``model``) and :meth:`Sandbox.trace`'s arrays without the member
        axis: ``z`` (B, L, d), ``attention`` (B, L), ``xi``, ``zeta`` (B, d),
        ``activations`` (B, h), ``logits`` (B, p).
    """
    model = snapshot_model(params)
    with torch.no_grad():
        out = model.trace(torch.as_tensor(x)[None], p)
    return {"model": model, **{k: v[0].numpy() for k, v in out.items()}}


def level_probabilities(model: Sandbox, points: np.ndarray, p: int, stage: str) -> np.ndarray:
    """Class probabilities (N, p) of points (N, d) placed at ``stage`` ``"xi"`` or ``"zeta"``.

    At ``"xi"`` the points go through the MLP first; at ``"zeta"`` they are decoded as
    they are.
    """
    columns = torch.as_tensor(points.T[None], dtype=torch.float32)
    with torch.no_grad():
        zeta = model.mlp(columns)["zeta"] if stage == "xi" else columns
        return model.decode(zeta, p)["logits"][0].T.softmax(-1).numpy()


def epsilons(eps_range: tuple[float, float]) -> np.ndarray:
    """The log-spaced thresholds a sparsity curve is measured at."""
    return np.logspace(np.log10(eps_range[0]), np.log10(eps_range[1]), SPARSITY_POINTS)


def sparsity_curves(log: pd.DataFrame, snaps: dict[str, np.ndarray], eps: np.ndarray) -> np.ndarray:
    """Activation sparsity (runs, len(eps)) of every run's final weights on its test set."""
    task = task_of(log)
    last = analysis.final_rows(log).set_index("run").sort_index()
    final = int(snaps["epochs"][-1])
    curves = []
    for run, row in last.iterrows():
        data = make_data(task, int(row.n), int(row.n_test), int(row.seed), bool(row.disjoint_test))
        x_test = data.x_test
        activations = trace(member_params(snaps, final, int(run)), x_test, task.p)["activations"]
        curves.append(analysis.activation_sparsity(activations, eps))
    return np.array(curves)


def sparsity_groups(
    logs: Paths, weights: Paths, eps: np.ndarray, by_d: bool
) -> list[SparsityGroup]:
    """Sparsity curves of every job's final models, in one group or one per width d.

    Parameters
    ----------
    logs, weights
        ``log.parquet`` and ``weights.npz`` of the same jobs, in the same order.
    eps
        The thresholds (:func:`epsilons`).
    by_d
        Group the jobs by the ``d`` in their logs (figure 20) instead of all in one
        group (figure 17).
    """
    groups: dict[int, tuple[list[str | Path], list[str | Path]]] = {}
    for log_path, weights_path in zip(logs, weights, strict=True):
        d = int(pd.read_parquet(log_path, columns=["d"])["d"].iloc[0]) if by_d else 0
        groups.setdefault(d, ([], []))[0].append(log_path)
        groups[d][1].append(weights_path)
    out = []
    for _, (log_paths, weight_paths) in sorted(groups.items()):
        log = read_logs(log_paths)
        out.append(SparsityGroup(log, sparsity_curves(log, load_snapshots(weight_paths), eps)))
    return out
