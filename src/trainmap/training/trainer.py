"""Train the seeds of one setting together and measure them at every checkpoint.

The seeds of a job are one batched model: their parameters are stacked along a
leading seed dimension and the model is evaluated with ``torch.func.vmap``
over ``functional_call`` (:class:`StackedModels`). Each seed keeps its own
initialisation (torch's RNG seeded with the seed before building its model)
and its own data order (a permutation drawn from a generator of
(seed, epoch)). The loss is the sum over seeds of each seed's mean batch
loss, so each seed's gradient is its own; AdamW and SGD act element by
element, so one optimiser over the stacked parameters updates every seed
exactly as its own optimiser would. Models with buffers (batch norm) cannot be
vmapped this way; they, and tasks with ``batched = False``, are trained as one
model per seed in the same loop (:class:`SeparateModels`).

At step 0 and every ``checkpoint_every`` epochs (or steps) the trainer
evaluates the full train and evaluation sets, the losses of a fixed subset of
evaluation examples and the 14 weight metrics, one row per live seed. A seed
whose loss or weights become NaN/inf gets ``diverged = True`` at that
checkpoint and no later rows; the job goes on with the other seeds.

Every ``resume_every`` checkpoints the whole training state (weights,
optimiser, rows so far) is written atomically to ``resume_path``; a rerun
with the same config continues from it and produces the same table as an
uninterrupted run (the random streams depend only on seed and epoch/step).
The caller deletes the state once it has written the table.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from trainmap import tables
from trainmap.errors import TrainmapError
from trainmap.metrics.weights import weight_metrics
from trainmap.training.data import TaskData, example_subset, generator
from trainmap.training.tasks import Task, get_task

log = logging.getLogger(__name__)


class StackedModels:
    """``S`` models of one architecture as stacked parameters ``(S, ...)``, run with ``vmap``."""

    def __init__(self, models: Sequence[nn.Module], device: torch.device) -> None:
        self.reference = copy.deepcopy(models[0]).to("meta")
        params, _ = stack_module_state(list(models))
        self.params = {k: v.detach().to(device).requires_grad_() for k, v in params.items()}

    def __call__(self, x: Tensor, shared: bool = False) -> Tensor:
        """Logits ``(S, B, C)`` of inputs ``(S, B, ...)``, or ``(B, ...)`` fed to every seed."""

        def one(params: dict[str, Tensor], xb: Tensor) -> Tensor:
            return functional_call(self.reference, params, (xb,))

        return vmap(one, in_dims=(0, None if shared else 0))(self.params, x)

    def parameters(self) -> list[Tensor]:
        return list(self.params.values())

    def stacked(self) -> dict[str, Tensor]:
        return {k: v.detach() for k, v in self.params.items()}

    def train(self, mode: bool) -> None:
        self.reference.train(mode)

    def state_dict(self) -> dict[str, Tensor]:
        return self.stacked()

    def load_state_dict(self, state: Mapping[str, Tensor]) -> None:
        with torch.no_grad():
            for k, v in self.params.items():
                v.copy_(state[k])


class SeparateModels:
    """``S`` separate models (for models with buffers), used like :class:`StackedModels`."""

    def __init__(self, models: Sequence[nn.Module], device: torch.device) -> None:
        self.models = nn.ModuleList(models).to(device)
        self.reference = self.models[0]

    def __call__(self, x: Tensor, shared: bool = False) -> Tensor:
        return torch.stack([m(x if shared else x[s]) for s, m in enumerate(self.models)])

    def parameters(self) -> list[Tensor]:
        return list(self.models.parameters())

    def stacked(self) -> dict[str, Tensor]:
        names = [n for n, _ in self.reference.named_parameters()]
        per_model = [dict(m.named_parameters()) for m in self.models]
        return {n: torch.stack([p[n].detach() for p in per_model]) for n in names}

    def train(self, mode: bool) -> None:
        self.models.train(mode)

    def state_dict(self) -> dict[str, Tensor]:
        return self.models.state_dict()

    def load_state_dict(self, state: Mapping[str, Tensor]) -> None:
        self.models.load_state_dict(state)


def resolve_device(device: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise TrainmapError("config key 'device' is 'cuda' but no CUDA device is available")
    return torch.device(device)


def seed_chunks(n_seeds: int, per_job: int) -> list[tuple[int, int]]:
    """Seeds ``0..n_seeds-1`` in jobs of ``per_job``: ``[(first, last), ...]`` (inclusive)."""
    return [(a, min(a + per_job, n_seeds) - 1) for a in range(0, n_seeds, per_job)]


def _build_models(task: Task, seeds: Sequence[int], device: torch.device):
    models = []
    for seed in seeds:
        torch.manual_seed(seed)
        try:
            models.append(task.build_model())
        except (TypeError, KeyError) as error:
            raise TrainmapError(f"bad 'model'/'data' config for this task: {error}") from error
    has_buffers = any(True for _ in models[0].buffers())
    cls = StackedModels if task.batched and not has_buffers else SeparateModels
    return cls(models, device)


def _optimizer(params: list[Tensor], config: Mapping[str, Any]) -> torch.optim.Optimizer:
    options = {k: v for k, v in config.items() if k != "name"}
    if "betas" in options:
        options["betas"] = tuple(options["betas"])
    kinds = {"adamw": torch.optim.AdamW, "sgd": torch.optim.SGD, "adam": torch.optim.Adam}
    # Fused kernels: one call for all parameters (3x faster AdamW steps for small models).
    return kinds[config["name"]](params, fused=True, **options)


def _fingerprint(setting: Mapping[str, Any], seeds: Sequence[int]) -> str:
    """A hash of what determines the training (not titles, resources or logging)."""
    training = {k: v for k, v in setting["training"].items() if k != "log_every_seconds"}
    keys = ("task", "model", "data", "optimizer", "metrics")
    what = {"seeds": list(seeds), "training": training, **{k: setting.get(k) for k in keys}}
    text = json.dumps(what, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _save_atomically(state: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _load_data(task: Task, seeds: Sequence[int]) -> TaskData:
    """The setting's data, or with ``data.split: per_seed`` every run's, stacked ``(S, N, ...)``."""
    if task.split == "fixed":
        return task.build_data()
    runs = [task.run_data(seed) for seed in seeds]
    fields = ("x_train", "y_train", "x_eval", "y_eval")
    return TaskData(*(torch.stack([getattr(run, f) for run in runs]) for f in fields))


@torch.no_grad()
def _evaluate(
    models, task: Task, x: Tensor, y: Tensor, batch_size: int, per_seed: bool
) -> tuple[Tensor, Tensor]:
    """Per-example loss and correctness ``(S, N)`` of every seed on ``(x, y)``.

    ``x``, ``y`` are one set for all seeds, or with ``per_seed`` one per seed ``(S, N, ...)``.
    """
    losses, correct = [], []
    for i in range(0, y.shape[-1], batch_size):
        if per_seed:
            logits = models(x[:, i : i + batch_size])
            yb = y[:, i : i + batch_size].flatten()
        else:
            logits = models(x[i : i + batch_size], shared=True)
            yb = y[i : i + batch_size].repeat(logits.shape[0])
        n_seeds, n = logits.shape[:2]
        flat = logits.flatten(0, 1)
        losses.append(task.loss(flat, yb).view(n_seeds, n))
        correct.append(task.correct(flat, yb).view(n_seeds, n))
    return torch.cat(losses, 1), torch.cat(correct, 1)


def train_seeds(
    setting: Mapping[str, Any],
    seeds: Sequence[int],
    device: str = "auto",
    resume_path: str | Path | None = None,
    name: str = "setting",
) -> pd.DataFrame:
    """Train ``seeds`` of a setting as one batched model; return their metrics table.

    Parameters
    ----------
    setting
        One entry of the config's ``settings:`` (keys ``task``, ``model``,
        ``data``, ``optimizer``, ``training``; see ``config/README.md``).
    seeds
        The runs to train; seed ``s`` gives the same rows whichever seeds
        share the job (up to float rounding of batched kernels).
    device
        ``auto``, ``cpu`` or ``cuda``.
    resume_path
        Where the training state is saved every ``training.resume_every``
        checkpoints, and resumed from if it exists and matches the config.
        Removed after success. ``None``: no saving.
    name
        The setting's name, for log messages.

    Returns
    -------
    pandas.DataFrame
        One row per (seed, checkpoint), the columns of the metrics table
        (``docs/architecture.md``), sorted by run and step.
    """
    dev = resolve_device(device)
    task = get_task(setting["task"], setting.get("model", {}), setting.get("data", {}))
    cfg = setting["training"]
    try:
        data = _load_data(task, seeds)
    except TypeError as error:
        raise TrainmapError(f"bad 'data' config for task {setting['task']!r}: {error}") from error
    x_train, y_train = data.x_train.to(dev), data.y_train.to(dev)
    x_eval, y_eval = data.x_eval.to(dev), data.y_eval.to(dev)
    per_seed = task.split == "per_seed"
    n_train, n_eval = y_train.shape[-1], y_eval.shape[-1]
    examples = example_subset(n_eval, cfg["example_losses"], setting["data"]["seed"]).to(dev)
    if cfg["example_losses"] == 0:
        examples = examples[:0]

    models = _build_models(task, seeds, dev)
    optimizer = _optimizer(models.parameters(), setting["optimizer"])
    n_seeds, batch_size = len(seeds), cfg["batch_size"]
    steps_per_epoch = math.ceil(n_train / batch_size)
    total_steps = cfg["epochs"] * steps_per_epoch
    per_unit = steps_per_epoch if cfg["checkpoint_unit"] == "epoch" else 1
    every = cfg["checkpoint_every"] * per_unit
    eval_batch = cfg["eval_batch_size"]

    seed_ids = torch.tensor(list(seeds))
    alive = torch.ones(n_seeds, dtype=torch.bool)  # no diverged checkpoint yet
    bad = torch.zeros(n_seeds, dtype=torch.bool, device=dev)  # a batch loss was NaN/inf
    records: list[dict[str, Tensor]] = []
    step, n_checkpoints = 0, 0
    fingerprint = _fingerprint(setting, seeds)
    resume = Path(resume_path) if resume_path is not None else None

    if resume is not None and resume.exists():
        state = torch.load(resume, map_location=dev, weights_only=True)
        if state["fingerprint"] == fingerprint:
            models.load_state_dict(state["models"])
            optimizer.load_state_dict(state["optimizer"])
            step, n_checkpoints = state["step"], state["n_checkpoints"]
            records, alive, bad = state["records"], state["alive"], state["bad"].to(dev)
            log.info("%s: resumed from %s at step %d", name, resume, step)
        else:
            log.warning("%s: ignoring %s, saved with another config", name, resume)

    def checkpoint() -> None:
        models.train(False)
        train_loss, train_ok = _evaluate(models, task, x_train, y_train, eval_batch, per_seed)
        eval_loss, eval_ok = _evaluate(models, task, x_eval, y_eval, eval_batch, per_seed)
        models.train(True)
        params = models.stacked()
        finite = torch.stack([p.flatten(1).isfinite().all(1) for p in params.values()]).all(0)
        finite &= train_loss.isfinite().all(1) & eval_loss.isfinite().all(1) & ~bad
        finite = finite.cpu()
        metrics = {m: torch.full((n_seeds,), math.nan, dtype=torch.float64) for m in tables.METRICS}
        if finite.any():
            keep = finite.nonzero().squeeze(1).to(dev)
            weights, biases = task.metric_tensors(
                models.reference, {k: v.index_select(0, keep) for k, v in params.items()}
            )
            singular_values = setting.get("metrics", {}).get("singular_values", "per_matrix")
            for m, values in weight_metrics(weights, biases, singular_values).items():
                metrics[m][finite] = values.cpu()
        record = {
            tables.RUN: seed_ids,
            tables.STEP: torch.full((n_seeds,), step),
            tables.EPOCH: torch.full((n_seeds,), step / steps_per_epoch, dtype=torch.float64),
            **metrics,
            tables.TRAIN_LOSS: train_loss.double().mean(1).cpu(),
            tables.TRAIN_ACC: train_ok.double().mean(1).cpu(),
            tables.EVAL_LOSS: eval_loss.double().mean(1).cpu(),
            tables.EVAL_ACC: eval_ok.double().mean(1).cpu(),
            tables.DIVERGED: ~finite,
            "example_losses": eval_loss[:, examples].float().cpu(),
        }
        records.append({k: v[alive] for k, v in record.items()})
        newly = alive & ~finite
        for seed in seed_ids[newly].tolist():
            log.warning("%s: seed %d diverged by step %d", name, seed, step)
        alive.copy_(alive & finite)

    started, last_log, start_step = time.monotonic(), 0.0, step
    if step == 0 and not records:
        checkpoint()
    order, order_epoch = None, -1
    while step < total_steps and alive.any():
        epoch, batch_index = divmod(step, steps_per_epoch)
        if epoch != order_epoch:
            order = torch.stack(
                [torch.randperm(n_train, generator=generator(s, epoch)) for s in seeds]
            ).to(dev)
            order_epoch = epoch
        idx = order[:, batch_index * batch_size : (batch_index + 1) * batch_size]
        if per_seed:
            rows = torch.arange(n_seeds, device=dev)[:, None]
            xb, yb = x_train[rows, idx], y_train[rows, idx]
        else:
            xb, yb = x_train[idx], y_train[idx]
        if task.augment is not None:
            xb = torch.stack(
                [task.augment(xb[i], generator(s, step, 2)) for i, s in enumerate(seeds)]
            )
        logits = models(xb)
        losses = task.loss(logits.flatten(0, 1), yb.flatten()).view(n_seeds, -1).mean(1)
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        optimizer.step()
        bad |= ~losses.detach().isfinite()
        step += 1
        if step % every == 0 or step == total_steps:
            checkpoint()
            n_checkpoints += 1
            now = time.monotonic() - started
            last = records[-1]
            if now - last_log >= cfg["log_every_seconds"] or step == total_steps:
                last_log = now
                rate = n_seeds * (step - start_step) / steps_per_epoch / max(now, 1e-9)
                log.info(
                    "%s seeds %d-%d: epoch %.0f/%d, train loss %.3g acc %.3f, "
                    "eval loss %.3g acc %.3f (means over %d live seeds), %.1f seed-epochs/s",
                    name, seeds[0], seeds[-1], step / steps_per_epoch, cfg["epochs"],
                    last[tables.TRAIN_LOSS].mean(), last[tables.TRAIN_ACC].mean(),
                    last[tables.EVAL_LOSS].mean(), last[tables.EVAL_ACC].mean(),
                    int(alive.sum()), rate,
                )  # fmt: skip
            if resume is not None and n_checkpoints % cfg["resume_every"] == 0:
                _save_atomically(
                    {
                        "fingerprint": fingerprint,
                        "step": step,
                        "n_checkpoints": n_checkpoints,
                        "models": models.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "records": records,
                        "alive": alive,
                        "bad": bad.cpu(),
                    },
                    resume,
                )
    # The resume state stays until the caller has written the table
    # (trainmap.tables.write_table(..., resume=...)): a kill before that loses nothing.
    return _to_table(records)


def _to_table(records: list[dict[str, Tensor]]) -> pd.DataFrame:
    """Checkpoint records → the metrics table, sorted by run and step."""
    columns: dict[str, np.ndarray] = {}
    for key in records[0]:
        if key != "example_losses":
            columns[key] = torch.cat([r[key] for r in records]).numpy()
    example = torch.cat([r["example_losses"] for r in records]).numpy()
    for i in range(example.shape[1]):
        columns[f"{tables.EXAMPLE_LOSS_PREFIX}{i}"] = example[:, i]
    table = pd.DataFrame(columns)
    table[tables.RUN] = table[tables.RUN].astype("int64")
    table[tables.STEP] = table[tables.STEP].astype("int64")
    return table.sort_values([tables.RUN, tables.STEP], kind="stable").reset_index(drop=True)
