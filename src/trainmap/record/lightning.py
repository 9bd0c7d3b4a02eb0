"""A ``lightning.Callback`` that records the 14 metrics during ``Trainer.fit()``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

try:
    import lightning
except ImportError as error:
    raise ImportError(
        "trainmap.record.LightningCallback needs the lightning package: pip install lightning"
    ) from error

from trainmap.record.recorder import ExampleLosses, MetricsRecorder


class LightningCallback(lightning.Callback):
    """Record the LightningModule as run ``run`` in folder ``path`` (:class:`MetricsRecorder`).

    A row is recorded after each validation loop (not the sanity check), with
    the logged metrics ``accuracy_key`` as evaluation accuracy and
    ``loss_key`` as ``eval_loss`` when they were logged; with
    ``every_n_train_steps`` also at the start of training (step 0) and every
    that many optimiser steps. Steps are ``trainer.global_step``; epochs are
    steps over the optimiser steps of an epoch. Only the global-zero process
    records. ``include``, ``exclude``, ``example_losses``, ``flush_every``
    are :class:`MetricsRecorder`'s.

    Examples
    --------
    >>> callback = LightningCallback(run=seed, path="data/runs")  # doctest: +SKIP
    >>> trainer = lightning.Trainer(..., callbacks=[callback])  # doctest: +SKIP
    """

    def __init__(
        self,
        run: int | str,
        path: str | Path,
        include: Sequence[str] = (".*",),
        exclude: Sequence[str] = (),
        example_losses: ExampleLosses | None = None,
        accuracy_key: str = "val_acc",
        loss_key: str = "val_loss",
        every_n_train_steps: int | None = None,
        flush_every: int = 1,
    ) -> None:
        self.options = {"run": run, "path": path, "include": include, "exclude": exclude,
                        "example_losses": example_losses, "flush_every": flush_every}  # fmt: skip
        self.accuracy_key, self.loss_key = accuracy_key, loss_key
        self.every_n_train_steps = every_n_train_steps
        self.recorder: MetricsRecorder | None = None

    def _record(self, trainer: lightning.Trainer, **scalars: float | None) -> None:
        if self.recorder is None:
            return
        per_epoch = trainer.num_training_batches / max(1, trainer.accumulate_grad_batches)
        epoch = trainer.global_step / per_epoch if 0 < per_epoch < math.inf else None
        self.recorder.record(trainer.global_step, epoch=epoch, **scalars)

    def on_fit_start(
        self, trainer: lightning.Trainer, pl_module: lightning.LightningModule
    ) -> None:
        if trainer.is_global_zero:
            self.recorder = MetricsRecorder(pl_module, **self.options)

    def on_train_start(
        self, trainer: lightning.Trainer, pl_module: lightning.LightningModule
    ) -> None:
        if self.every_n_train_steps:
            self._record(trainer)

    def on_train_batch_end(
        self,
        trainer: lightning.Trainer,
        pl_module: lightning.LightningModule,
        outputs: object,
        batch: object,
        batch_idx: int,
    ) -> None:
        n = self.every_n_train_steps
        if n and trainer.global_step % n == 0:
            self._record(trainer)

    def on_validation_end(
        self, trainer: lightning.Trainer, pl_module: lightning.LightningModule
    ) -> None:
        if trainer.sanity_checking:
            return
        logged = trainer.callback_metrics
        self._record(
            trainer,
            eval_acc=logged.get(self.accuracy_key),
            eval_loss=logged.get(self.loss_key),
        )

    def on_fit_end(self, trainer: lightning.Trainer, pl_module: lightning.LightningModule) -> None:
        if self.recorder is not None:
            self.recorder.close()
