"""The task registry: what a setting's ``task:`` key names.

A task builds a setting's data and a fresh model for one seed, and says how
the model is measured. Add a task in its own module inside
``trainmap.training`` (every module of the package is imported when a task is
looked up, so nothing else needs editing)::

    from trainmap.training.tasks import Task, register_task

    @register_task("mnist_mlp")
    class MnistMLP(Task):
        def build_data(self) -> TaskData: ...        # uses self.data  (config "data:")
        def build_model(self) -> nn.Module: ...      # uses self.model (config "model:")

and describe its ``model:``/``data:`` keys in ``workflow/schemas/settings.schema.yaml``.

The interface (override what differs from the defaults):

``build_data()``
    :class:`~trainmap.training.data.TaskData`: train and evaluation tensors,
    fixed by the config (``data.seed``).
``splits``
    The ``data.split`` values the task accepts, its default first: ``fixed``
    (one data set for all runs, :meth:`build_data`) and, for tasks whose data
    a seed draws, ``per_seed`` (:meth:`Task.run_data` builds each run's data
    with ``self.data["seed"] = (data seed, run seed)``).
``build_model()``
    A fresh ``nn.Module`` for one seed, mapping a batch of inputs to class
    logits ``(B, C)``. The trainer seeds torch's global RNG with the run seed
    just before calling it, so the initialisation is the seed's.
``loss(logits, y)``
    Loss of each example, ``(B,)``; cross-entropy by default.
``correct(logits, y)``
    Whether each example is classified correctly; argmax by default.
``augment(x, generator)``
    Optional per-batch augmentation of one seed's batch, with a generator
    derived from (seed, step); ``None`` (the default) means no augmentation.
``batched``
    ``True`` (default): the seeds of a job are one batched model,
    ``torch.func.vmap`` over stacked parameters. A model with buffers (batch
    norm's running statistics) cannot be vmapped this way; the trainer then
    falls back to one model per seed (still one job, one optimiser, the same
    data streams), as it does when a task sets ``batched = False``.
``excluded``
    Name prefixes of parameters that the metrics skip, besides those of
    ``nn.Embedding`` and normalisation layers (which are always skipped):
    e.g. the unembedding and position embeddings.
``metric_tensors(model, params)``
    The weight matrices ``(S, m, n)`` and bias vectors ``(S, n)`` that
    :func:`trainmap.metrics.weights.weight_metrics` measures, from parameters
    with a leading seed dimension. Default: every parameter not excluded,
    ≥2-D ones as matrices via :func:`~trainmap.metrics.weights.as_matrix`
    (conv kernels ``out × in·kh·kw``), 1-D ones as biases.
"""

from __future__ import annotations

import copy
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainmap.errors import TrainmapError
from trainmap.metrics.weights import as_matrix
from trainmap.training import data as datasets
from trainmap.training.data import TaskData
from trainmap.training.models import MLP, OneLayerTransformer

_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)
_TASKS: dict[str, type[Task]] = {}


class Task:
    """A trainable task (see the module docstring for the interface)."""

    batched: ClassVar[bool] = True
    splits: ClassVar[tuple[str, ...]] = ("fixed",)
    excluded: ClassVar[tuple[str, ...]] = ()
    augment: Callable[[Tensor, torch.Generator], Tensor] | None = None

    def __init__(self, model: Mapping[str, Any], data: Mapping[str, Any]) -> None:
        self.model = dict(model)
        self.data = dict(data)
        self.split = self.data.pop("split", self.splits[0])
        if self.split not in self.splits:
            raise TrainmapError(
                f"data.split must be one of {list(self.splits)} for "
                f"{type(self).__name__}, got {self.split!r}"
            )

    def build_data(self) -> TaskData:
        raise NotImplementedError

    def run_data(self, seed: int) -> TaskData:
        """The data of run ``seed`` when ``data.split`` is ``per_seed``."""
        run = copy.copy(self)
        run.data = {**self.data, "seed": (self.data["seed"], seed)}
        return run.build_data()

    def build_model(self) -> nn.Module:
        raise NotImplementedError

    def loss(self, logits: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(logits, y, reduction="none")

    def correct(self, logits: Tensor, y: Tensor) -> Tensor:
        return logits.argmax(-1) == y

    def measured_parameters(
        self, model: nn.Module, params: Mapping[str, Tensor]
    ) -> dict[str, Tensor]:
        """The parameters the metrics see: not in embeddings, norm layers or ``excluded``."""
        skipped = {
            f"{module_name}.{p}".lstrip(".")
            for module_name, module in model.named_modules()
            if isinstance(module, (nn.Embedding, *_NORMS))
            for p, _ in module.named_parameters(recurse=False)
        }
        return {
            name: value
            for name, value in params.items()
            if name not in skipped and not name.startswith(self.excluded)
        }

    def metric_tensors(
        self, model: nn.Module, params: Mapping[str, Tensor]
    ) -> tuple[list[Tensor], list[Tensor]]:
        """Weight matrices ``(S, m, n)`` and bias vectors ``(S, n)`` for the 14 metrics."""
        measured = self.measured_parameters(model, params).values()
        weights = [as_matrix(p) for p in measured if p.dim() >= 3]
        biases = [p for p in measured if p.dim() == 2]
        return weights, biases


def register_task(name: str) -> Callable[[type[Task]], type[Task]]:
    """Class decorator: make a :class:`Task` available as ``task: <name>`` in the config."""

    def register(cls: type[Task]) -> type[Task]:
        if name in _TASKS:
            raise ValueError(f"task {name!r} is registered twice")
        _TASKS[name] = cls
        return cls

    return register


def task_names() -> list[str]:
    """Every registered task (after importing all of ``trainmap.training``)."""
    import trainmap.training as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
    return sorted(_TASKS)


def get_task(name: str, model: Mapping[str, Any], data: Mapping[str, Any]) -> Task:
    """The task called ``name``, configured with a setting's ``model:`` and ``data:``."""
    if name not in task_names():
        raise TrainmapError(f"unknown task {name!r} (config key 'task'); known: {task_names()}")
    return _TASKS[name](model, data)


@register_task("modular_addition")
class ModularAddition(Task):
    """``(a + b) mod p`` with a one-layer transformer (Nanda et al. 2023; Hu et al. table 6).

    ``data:`` ``p``, ``train_fraction``, ``seed``. ``model:`` the keyword
    arguments of :class:`~trainmap.training.models.OneLayerTransformer` except
    the vocabulary sizes. Metrics: ``W_Q``, ``W_K``, ``W_V`` of each head,
    ``W_O``, ``W_in``, ``W_out`` (3·H + 3 matrices) and the MLP biases;
    embeddings, unembedding and LayerNorms are skipped.
    """

    excluded = ("pos_embed", "unembed")
    splits = ("per_seed", "fixed")  # the authors split per seed

    def build_data(self) -> TaskData:
        return datasets.modular_addition(**self.data)

    def build_model(self) -> nn.Module:
        p = self.data["p"]
        return OneLayerTransformer(vocab=p + 1, context=3, vocab_out=p, **self.model)

    def metric_tensors(
        self, model: nn.Module, params: Mapping[str, Tensor]
    ) -> tuple[list[Tensor], list[Tensor]]:
        weights, biases = [], []
        heads = self.model["n_heads"]
        for name, p in self.measured_parameters(model, params).items():
            if name.endswith(("query.weight", "key.weight", "value.weight")):
                weights += p.chunk(heads, dim=1)  # rows of head h: (S, d_head, d_model)
            elif p.dim() == 3:
                weights.append(p)
            else:
                biases.append(p)
        return weights, biases


@register_task("sparse_parities")
class SparseParities(Task):
    """Parity of ``k`` of ``n_bits`` bits with an MLP (Barak et al. 2022; Hu et al. table 5).

    ``data:`` ``n_bits``, ``k``, ``n_train``, ``n_eval``, ``seed``. ``model:``
    ``hidden`` (list of hidden widths). Metrics: every layer's weight and bias.
    """

    splits = ("per_seed", "fixed")  # the authors draw the bit strings per seed

    def build_data(self) -> TaskData:
        return datasets.sparse_parities(**self.data)

    def build_model(self) -> nn.Module:
        return MLP(d_in=self.data["n_bits"], n_classes=2, **self.model)
