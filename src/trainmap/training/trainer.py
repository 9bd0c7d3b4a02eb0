"""Train the seeds of one setting together and measure them at every checkpoint.

The runs of a job are the members of one :class:`trainmap.engine.Engine` job
(:class:`SettingJob`): the engine runs the loop, the optimiser, divergence and
resume; this module supplies the models, data order, evaluation and metrics. A
member is a seed at one grid point of the setting (:mod:`trainmap.training.grid`):
with a ``grid:``, every seed of the job is trained once per combination of the grid's
optimizer values, each member with its own learning rate and weight decay.

The seeds' parameters are stacked along a leading seed dimension and the model
is evaluated with ``torch.func.vmap`` over ``functional_call``
(:class:`StackedModels`). Each seed keeps its own initialisation (torch's RNG
seeded with the seed before building its model) and its own data order (a
permutation drawn from a generator of (seed, epoch)). The loss is the sum over
seeds of each seed's mean batch loss, so each seed's gradient is its own, and
the engine's optimiser updates every seed as its own optimiser would. Models
with buffers (batch norm) cannot be vmapped this way; they, and tasks with
``batched = False``, are trained as one model per seed in the same loop
(:class:`SeparateModels`).

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
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from trainmap import tables
from trainmap.engine import (
    Divergence,
    Engine,
    MemberOptimizer,
    Resume,
    fingerprint,
    member_values,
    resolve_device,
)
from trainmap.errors import TrainmapError
from trainmap.metrics.weights import weight_metrics
from trainmap.training.data import TaskData, example_subset, generator
from trainmap.training.grid import grid_values
from trainmap.training.settings import TRAINING_KEYS, training_determinants
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

    def spread(self, values: Tensor) -> list[Tensor]:
        """Per-seed ``values`` (S,), one tensor per parameter, broadcastable to it."""
        return [member_values(values, p) for p in self.params.values()]

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

    def spread(self, values: Tensor) -> list[Tensor]:
        """Per-seed ``values`` (S,), one number per parameter (of its seed's model)."""
        return [values[s] for s, m in enumerate(self.models) for _ in m.parameters()]

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


def _optimizer(
    models: StackedModels | SeparateModels,
    config: Mapping[str, Any],
    values: Mapping[str, Sequence[float]],
) -> MemberOptimizer:
    """The setting's ``optimizer:``, with each member's own ``lr`` and ``weight_decay``
    (``values``)."""
    options = {k: v for k, v in config.items() if k not in ("name", "lr", "weight_decay")}
    if "betas" in options:
        options["betas"] = tuple(options["betas"])
    # In float32, the parameters' precision, in which the per-member update applies them
    # anyway: a job whose members share the values (torch's fused optimiser) then gets the
    # same rounded values as one whose members differ.
    lr, weight_decay = (torch.tensor(values[k]) for k in ("lr", "weight_decay"))
    params, rates, decays = models.parameters(), models.spread(lr), models.spread(weight_decay)
    return MemberOptimizer(params, rates, decays, config["name"], **options)


def _members(
    setting: Mapping[str, Any], seeds: Sequence[int], name: str
) -> tuple[list[int], dict[str, list[float]]]:
    """Every member's seed and optimizer values: each grid point's ``seeds`` in turn."""
    points = grid_values(name, setting.get("grid"))
    members = [(s, {**setting["optimizer"], **p}) for p in points for s in seeds]
    keys = ("lr", "weight_decay")
    return [s for s, _ in members], {k: [float(o[k]) for _, o in members] for k in keys}


def _fingerprint(setting: Mapping[str, Any], seeds: Sequence[int]) -> str:
    """A hash of what determines the training (:mod:`trainmap.training.settings`)."""
    part = training_determinants(setting)
    # An absent key hashes as None, as states saved before the keys had one home did.
    return fingerprint({"seeds": list(seeds), **{k: part.get(k) for k in TRAINING_KEYS}})


def _load_data(task: Task, seeds: Sequence[int]) -> TaskData:
    """The setting's data, or with ``data.split: per_seed`` every run's, stacked ``(S, N, ...)``."""
    if task.split == "fixed":
        return task.build_data()
    runs = {seed: task.run_data(seed) for seed in dict.fromkeys(seeds)}
    fields = ("x_train", "y_train", "x_eval", "y_eval")
    return TaskData(*(torch.stack([getattr(runs[s], f) for s in seeds]) for f in fields))


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


class SettingJob:
    """The members of one setting's job as an engine job (:class:`trainmap.engine.MemberJob`):
    their models, data order, checkpoint evaluation and metrics records.

    Parameters
    ----------
    setting
        The configured setting.
    seeds
        Each member's seed (a seed repeats when the setting has a grid).
    device
        Where the job's tensors live.
    name
        The setting's name, for log messages.
    grid_values
        Each member's value of every key of the setting's grid (recorded beside the
        seed, so that the grid points' rows can be told apart).
    """

    def __init__(
        self,
        setting: Mapping[str, Any],
        seeds: Sequence[int],
        device: torch.device,
        name: str,
        grid_values: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        self.setting, self.seeds, self.name = setting, list(seeds), name
        self.grid_values = {
            k: torch.tensor(v, dtype=torch.float64) for k, v in (grid_values or {}).items()
        }
        self.task = task = get_task(
            setting["task"], setting.get("model", {}), setting.get("data", {})
        )
        cfg = self.cfg = setting["training"]
        try:
            data = _load_data(task, seeds)
        except TypeError as error:
            raise TrainmapError(
                f"bad 'data' config for task {setting['task']!r}: {error}"
            ) from error
        self.x_train, self.y_train = data.x_train.to(device), data.y_train.to(device)
        self.x_eval, self.y_eval = data.x_eval.to(device), data.y_eval.to(device)
        self.per_seed = task.split == "per_seed"
        n_eval = self.y_eval.shape[-1]
        self.n_train = self.y_train.shape[-1]
        examples = example_subset(n_eval, cfg["example_losses"], setting["data"]["seed"])
        self.examples = examples[: cfg["example_losses"]].to(device)
        self.models = _build_models(task, seeds, device)
        self.device = device
        self.steps_per_epoch = math.ceil(self.n_train / cfg["batch_size"])
        self.total_steps = cfg["epochs"] * self.steps_per_epoch
        per_unit = self.steps_per_epoch if cfg["checkpoint_unit"] == "epoch" else 1
        self.every = cfg["checkpoint_every"] * per_unit
        self.seed_ids = torch.tensor(self.seeds)
        self.records: list[dict[str, Tensor]] = []
        self.order, self.order_epoch = torch.empty(0), -1

    def losses(self, step: int) -> Tensor:
        epoch, batch_index = divmod(step, self.steps_per_epoch)
        if epoch != self.order_epoch:
            orders = [
                torch.randperm(self.n_train, generator=generator(s, epoch)) for s in self.seeds
            ]
            self.order, self.order_epoch = torch.stack(orders).to(self.device), epoch
        batch_size = self.cfg["batch_size"]
        idx = self.order[:, batch_index * batch_size : (batch_index + 1) * batch_size]
        if self.per_seed:
            rows = torch.arange(len(self.seeds), device=self.device)[:, None]
            xb, yb = self.x_train[rows, idx], self.y_train[rows, idx]
        else:
            xb, yb = self.x_train[idx], self.y_train[idx]
        if self.task.augment is not None:
            xb = torch.stack(
                [self.task.augment(xb[i], generator(s, step, 2)) for i, s in enumerate(self.seeds)]
            )
        logits = self.models(xb)
        return self.task.loss(logits.flatten(0, 1), yb.flatten()).view(len(self.seeds), -1).mean(1)

    def after_backward(self, gradients: list[Tensor]) -> None:
        pass

    def is_checkpoint(self, step: int) -> bool:
        return step % self.every == 0 or step == self.total_steps

    def checkpoint(self, step: int, divergence: Divergence) -> None:
        """Evaluate every seed on the full sets; one metrics row per live seed."""
        models, task, cfg, n_seeds = self.models, self.task, self.cfg, len(self.seeds)
        models.train(False)
        sets = ((self.x_train, self.y_train), (self.x_eval, self.y_eval))
        (train_loss, train_ok), (eval_loss, eval_ok) = (
            _evaluate(models, task, x, y, cfg["eval_batch_size"], self.per_seed) for x, y in sets
        )
        models.train(True)
        params = models.stacked()
        finite = divergence.finite(params.values(), train_loss, eval_loss)
        metrics = {m: torch.full((n_seeds,), math.nan, dtype=torch.float64) for m in tables.METRICS}
        if finite.any():
            keep = finite.nonzero().squeeze(1).to(self.device)
            weights, biases = task.metric_tensors(
                models.reference, {k: v.index_select(0, keep) for k, v in params.items()}
            )
            singular_values = self.setting.get("metrics", {}).get("singular_values", "per_matrix")
            for m, values in weight_metrics(weights, biases, singular_values).items():
                metrics[m][finite] = values.cpu()
        record = {
            tables.RUN: self.seed_ids,
            **self.grid_values,
            tables.STEP: torch.full((n_seeds,), step),
            tables.EPOCH: torch.full((n_seeds,), step / self.steps_per_epoch, dtype=torch.float64),
            **metrics,
            tables.TRAIN_LOSS: train_loss.double().mean(1).cpu(),
            tables.TRAIN_ACC: train_ok.double().mean(1).cpu(),
            tables.EVAL_LOSS: eval_loss.double().mean(1).cpu(),
            tables.EVAL_ACC: eval_ok.double().mean(1).cpu(),
            tables.DIVERGED: ~finite,
            "example_losses": eval_loss[:, self.examples].float().cpu(),
        }
        self.records.append({k: v[divergence.alive] for k, v in record.items()})
        for member in divergence.settle(finite).nonzero().squeeze(1).tolist():
            values = "".join(f", {k} {float(v[member]):g}" for k, v in self.grid_values.items())
            log.warning(
                "%s: seed %d%s diverged by step %d", self.name, self.seeds[member], values, step
            )

    def summary(self) -> str:
        last = {k: float(v.mean()) for k, v in self.records[-1].items() if v.is_floating_point()}
        return (
            f"seeds {self.seeds[0]}-{self.seeds[-1]}: train loss {last[tables.TRAIN_LOSS]:.3g} "
            f"acc {last[tables.TRAIN_ACC]:.3f}, eval loss {last[tables.EVAL_LOSS]:.3g} "
            f"acc {last[tables.EVAL_ACC]:.3f} (means over live seeds)"
        )

    def state_dict(self) -> dict[str, Any]:
        return {"models": self.models.state_dict(), "records": self.records}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.models.load_state_dict(state["models"])
        self.records = state["records"]


def train_seeds(
    setting: Mapping[str, Any],
    seeds: Sequence[int],
    device: str = "auto",
    resume_path: str | Path | None = None,
    name: str = "setting",
) -> pd.DataFrame:
    """Train ``seeds`` of a setting, at every point of its grid, as one batched model;
    return their metrics table.

    Parameters
    ----------
    setting
        One entry of the config's ``settings:`` (keys ``task``, ``model``,
        ``data``, ``optimizer``, ``training``, optionally ``grid``; see
        ``config/README.md``).
    seeds
        The seeds to train; seed ``s`` at a grid point gives the same rows
        whichever members share the job (up to float rounding of batched kernels).
    device
        ``auto``, ``cpu`` or ``cuda``.
    resume_path
        Where the training state is saved every ``training.resume_every``
        checkpoints, and resumed from if it exists and matches the config.
        ``None``: no saving.
    name
        The setting's name, for log messages.

    Returns
    -------
    pandas.DataFrame
        One row per (member, checkpoint), the columns of the metrics table
        (``docs/architecture.md``), sorted by run and step; with a grid, a column per
        grid key after ``run`` (the member's value), sorted by them first.
    """
    dev = resolve_device(device)
    member_seeds, values = _members(setting, seeds, name)
    grid_values = {k: v for k, v in values.items() if k in (setting.get("grid") or {})}
    job = SettingJob(setting, member_seeds, dev, name, grid_values)
    optimizer = _optimizer(job.models, setting["optimizer"], values)
    cfg = setting["training"]
    engine = Engine(optimizer, len(member_seeds), dev, name, cfg["log_every_seconds"])
    engine.fit(job, Resume(resume_path, _fingerprint(setting, seeds), every=cfg["resume_every"]))
    # The resume state stays until the caller has written the table
    # (trainmap.tables.write_table(..., resume=...)): a kill before that loses nothing.
    return _to_table(job.records, list(grid_values))


def _to_table(records: list[dict[str, Tensor]], grid_keys: list[str]) -> pd.DataFrame:
    """Checkpoint records → the metrics table, sorted by grid values, run and step."""
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
    order = [*grid_keys, tables.RUN, tables.STEP]
    return table.sort_values(order, kind="stable").reset_index(drop=True)
