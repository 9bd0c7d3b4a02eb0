"""A ``transformers.TrainerCallback`` that records the 14 metrics during ``Trainer.train()``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

try:
    import transformers
except ImportError as error:
    raise ImportError(
        "trainmap.record.HFCallback needs the transformers package: pip install transformers"
    ) from error

from torch import nn

from trainmap.record.recorder import ExampleLosses, MetricsRecorder

Args, State, Control = (
    transformers.TrainingArguments,
    transformers.TrainerState,
    transformers.TrainerControl,
)


class HFCallback(transformers.TrainerCallback):
    """Record the Trainer's model as run ``run`` in folder ``path`` (:class:`MetricsRecorder`).

    When the Trainer evaluates (``eval_strategy`` not ``"no"``) a row is
    recorded after each evaluation, with the evaluation accuracy
    ``metrics[accuracy_key]`` (what ``compute_metrics`` returns as
    ``accuracy``) and ``eval_loss``; otherwise one at the start of training
    (step 0) and one at each save. Steps are ``state.global_step`` and epochs
    ``state.epoch``. Only the main process records. ``include``, ``exclude``,
    ``example_losses``, ``flush_every`` are :class:`MetricsRecorder`'s.

    Examples
    --------
    >>> callback = HFCallback(run=seed, path="data/my_runs")  # doctest: +SKIP
    >>> trainer = Trainer(..., callbacks=[callback])  # doctest: +SKIP
    """

    def __init__(
        self,
        run: int | str,
        path: str | Path,
        include: Sequence[str] = (".*",),
        exclude: Sequence[str] = (),
        example_losses: ExampleLosses | None = None,
        accuracy_key: str = "eval_accuracy",
        flush_every: int = 1,
    ) -> None:
        self.options = {"run": run, "path": path, "include": include, "exclude": exclude,
                        "example_losses": example_losses, "flush_every": flush_every}  # fmt: skip
        self.accuracy_key = accuracy_key
        self.recorder: MetricsRecorder | None = None
        self.evaluates = False

    def on_train_begin(
        self,
        args: Args,
        state: State,
        control: Control,
        model: nn.Module | None = None,
        **kwargs: object,
    ) -> None:
        if not state.is_world_process_zero:
            return
        self.recorder = MetricsRecorder(model, **self.options)
        self.evaluates = args.eval_strategy != transformers.IntervalStrategy.NO
        if not self.evaluates:
            self.recorder.record(state.global_step, epoch=state.epoch or 0.0)

    def on_evaluate(
        self,
        args: Args,
        state: State,
        control: Control,
        metrics: dict | None = None,
        **kwargs: object,
    ) -> None:
        if self.recorder is None:
            return
        metrics = metrics or {}
        self.recorder.record(
            state.global_step,
            epoch=state.epoch,
            eval_acc=metrics.get(self.accuracy_key),
            eval_loss=metrics.get("eval_loss"),
        )

    def on_save(self, args: Args, state: State, control: Control, **kwargs: object) -> None:
        if self.recorder is not None and not self.evaluates:
            self.recorder.record(state.global_step, epoch=state.epoch)

    def on_train_end(self, args: Args, state: State, control: Control, **kwargs: object) -> None:
        if self.recorder is not None:
            self.recorder.close()
