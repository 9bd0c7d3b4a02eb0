"""Record the 14 weight metrics from inside a training loop (:class:`MetricsRecorder`).

Each :meth:`MetricsRecorder.record` call measures the model's current weights
with the checkpoint reader's code (:func:`trainmap.metrics.checkpoints.select_parameters`
and :func:`~trainmap.metrics.checkpoints.measure`: the same include/exclude
rules, convolutions as ``out × in·kh·kw`` matrices, tied weights once) and
adds one row in the metrics-table format. Rows are buffered and flushed to
``<path>/<run>/<first step>-<last step>.parquet``, one small Parquet file per
flush, written to a temporary name, synced and renamed, so a killed training
loses at most the rows since the last flush and never leaves a half-written
file. A recorder opened again on the same path and run continues the run: it
skips every step up to the last one saved. :meth:`MetricsRecorder.close`
merges a run's parts into one file.

The workflow reads the folder as an experiment (``table: <path>``; README,
"Record while you train") through :func:`trainmap.tables.read_recorded`.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import pandas as pd
import torch
from torch import Tensor, nn

from trainmap import fingerprints, tables
from trainmap.errors import TrainmapError
from trainmap.metrics.checkpoints import check_patterns, measure, select_parameters

log = logging.getLogger(__name__)

#: Run ids become folder names: letters, digits and ``._=+-``.
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=+-]*")
#: Columns of a predicted convergence time and its interval (with a ``predictor``).
PREDICTED = ("predicted_convergence", "predicted_convergence_low", "predicted_convergence_high")
#: Columns a recorder writes itself; ``**scalars`` may not use these names.
RESERVED = {tables.RUN, tables.RUN_NAME, tables.STEP, tables.EPOCH, tables.EVAL_ACC,
            tables.DIVERGED, *tables.METRICS, *PREDICTED}  # fmt: skip
#: Scalars whose non-finite value marks the run as diverged.
LOSSES = (tables.TRAIN_LOSS, tables.EVAL_LOSS)
OPTIONS_FILE = "recorder.json"

ExampleLosses = Callable[[nn.Module], Tensor] | tuple[Tensor, Tensor]


class Predictor(Protocol):
    """What the recorder needs of a fitted
    :class:`trainmap.analysis.predict.ConvergencePredictor` (not imported here)."""

    def predict_run(self, run: pd.DataFrame, methods: tuple[str, ...]) -> pd.DataFrame: ...


def _write_part(frame: pd.DataFrame, path: Path) -> None:
    with tables.atomic_output(path, durable=True) as tmp:
        frame.to_parquet(tmp, index=False)


def _scalar(value: object, name: str) -> float:
    try:
        return float(value.item() if isinstance(value, Tensor) else value)  # type: ignore[arg-type]
    except (TypeError, ValueError, RuntimeError) as error:
        raise TrainmapError(f"record: {name}={value!r} is not a number") from error


class MetricsRecorder:
    """Record the 14 metrics of ``model``'s weights as one run of a metrics table.

    Parameters
    ----------
    model
        The model being trained; its ``state_dict()`` is measured at each call.
    run
        The run id (e.g. the seed): an int, or text of letters, digits and
        ``._=+-``. It names the run's sub-folder; a recorder opened again with
        the same ``path`` and ``run`` continues that run.
    path
        The folder of the recording, shared by all runs of an experiment.
    include, exclude
        Regular expressions on parameter names: a parameter counts if it
        matches one of ``include`` and none of ``exclude`` (as for checkpoint
        folders; e.g. ``exclude=["embed", "norm"]``).
    example_losses
        Optional per-example losses on a fixed set of examples, written as
        ``example_loss_<i>`` columns (the blog post's PCA): either a pair
        ``(inputs, targets)``, measured with cross-entropy on ``model(inputs)``,
        or a function ``model -> 1-D tensor of losses``. Measured in eval mode
        without gradients; the model's mode is restored.
    flush_every, flush_seconds
        Rows are written when this many are buffered or when this many
        seconds have passed since the last write, whichever comes first
        (``flush_every=1``: every row at once).
    predictor
        Optional: a :class:`~trainmap.analysis.predict.ConvergencePredictor`
        fitted on finished runs of the same metrics. Each row then gets the
        run's predicted convergence time and its interval from every row so far
        (columns :data:`PREDICTED`, in the predictor's time unit; also returned
        by :attr:`prediction`); every call must pass ``eval_acc``.

    Use it as a context manager, or call :meth:`close` at the end; buffered
    rows are also written when the interpreter exits normally.
    """

    def __init__(
        self,
        model: nn.Module,
        run: int | str,
        path: str | Path,
        include: Sequence[str] = (".*",),
        exclude: Sequence[str] = (),
        example_losses: ExampleLosses | None = None,
        flush_every: int = 10,
        flush_seconds: float = 60.0,
        predictor: Predictor | None = None,
    ) -> None:
        if isinstance(run, bool) or not isinstance(run, int | str):
            raise TrainmapError(f"run: {run!r} is not an int or a str")
        if not RUN_ID.fullmatch(str(run)):
            raise TrainmapError(
                f"run: {run!r} cannot name a folder; use letters, digits and ._=+- only"
            )
        check_patterns(include, "include")
        check_patterns(exclude, "exclude")
        if flush_every < 1:
            raise TrainmapError(f"flush_every: {flush_every} is not a positive number of rows")
        self.model, self.run = model, run
        self.include, self.exclude = list(include), list(exclude)
        self.example_losses = example_losses
        self.flush_every, self.flush_seconds = flush_every, flush_seconds
        self.folder = Path(path) / str(run)
        self._buffer: list[dict] = []
        self._flushed_at = time.monotonic()
        self._shapes = self._parameter_shapes()
        self._open_folder()
        self._skipped_logged = False
        self._exit_hook = False  # flush at interpreter exit while rows may be buffered
        self.predictor = predictor
        self.prediction: dict[str, float] | None = None
        # A continued run's prediction reads the rows recorded before the restart too.
        self._history = [
            row for part in self._parts() for row in pd.read_parquet(part).to_dict("records")
        ] if predictor is not None else []  # fmt: skip

    def _selected(self) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        weights, biases, _ = select_parameters(self.model.state_dict(), self.include, self.exclude)
        return weights, biases

    def _parameter_shapes(self) -> dict[str, list[int]]:
        weights, biases = self._selected()
        if not weights:
            raise TrainmapError(
                f"include/exclude: no weight matrix of the model is selected "
                f"(include {self.include}, exclude {self.exclude})"
            )
        return {n: list(t.shape) for n, t in {**weights, **biases}.items()}

    def _open_folder(self) -> None:
        """Create the run's folder, or check and continue what it holds."""
        options = {"run": self.run, "include": self.include, "exclude": self.exclude,
                   "parameters": self._shapes}  # fmt: skip
        self.folder.mkdir(parents=True, exist_ok=True)
        saved = self.folder / OPTIONS_FILE
        if saved.exists():
            before = json.loads(saved.read_text())
            changed = fingerprints.changed(before, options)
            if changed:
                raise TrainmapError(
                    f"run {self.run!r}: {self.folder} was recorded with other {', '.join(changed)} "
                    f"({', '.join(f'{k}={before.get(k)!r}' for k in changed if k != 'parameters')}"
                    "); record under another run id or path, or delete the folder"
                )
        else:
            with tables.atomic_output(saved) as tmp:
                tmp.write_text(json.dumps(options, indent=1))
        self.last_step: int | None = None
        self.stopped = False
        for part in self._parts():
            done = pd.read_parquet(part, columns=[tables.STEP, tables.DIVERGED])
            if len(done):
                last = int(done[tables.STEP].max())
                self.last_step = last if self.last_step is None else max(self.last_step, last)
                self.stopped |= bool(done[tables.DIVERGED].any())
        if self.last_step is not None:
            log.info("run %s: continuing %s after step %d", self.run, self.folder, self.last_step)

    def _parts(self) -> list[Path]:
        return sorted(self.folder.glob(tables.RECORDED_PART))

    def record(
        self,
        step: int,
        epoch: float | None = None,
        eval_acc: float | None = None,
        **scalars: float,
    ) -> bool:
        """Measure the model now and add a row for ``step``; ``False`` if the row was skipped.

        ``step`` is the number of optimiser steps done (0 = initialisation) and
        must grow from call to call; a step up to the last one recorded is
        skipped (a restarted run passing steps it recorded before). ``scalars``
        are further numeric columns, e.g. ``train_loss``, ``eval_loss``,
        ``train_acc``. After a row with non-finite weights or a non-finite
        ``train_loss``/``eval_loss`` the run counts as diverged and later
        calls are skipped.
        """
        step = self._checked_step(step, scalars)
        if self._skips(step):
            return False
        weights, biases = self._selected()
        shapes = {n: list(t.shape) for n, t in {**weights, **biases}.items()}
        if shapes != self._shapes:
            raise TrainmapError(
                f"run {self.run!r} step {step}: the counted parameters changed since the "
                f"recorder started ({sorted(set(shapes) ^ set(self._shapes))[:5]})"
            )
        values, finite = measure(weights, biases)
        row: dict = {tables.RUN: self.run, tables.STEP: step,
                     tables.EPOCH: math.nan if epoch is None else _scalar(epoch, "epoch"),
                     **values}  # fmt: skip
        if eval_acc is not None:
            row[tables.EVAL_ACC] = _scalar(eval_acc, "eval_acc")
        row.update({name: _scalar(v, name) for name, v in scalars.items() if v is not None})
        diverged = not finite or any(not math.isfinite(row.get(k, 0.0)) for k in LOSSES)
        row[tables.DIVERGED] = diverged
        if self.example_losses is not None:
            row.update(self._example_losses())
        if self.predictor is not None:
            row.update(self._predict(row))
        self._buffer.append(row)
        self.last_step = step
        if not self._exit_hook:
            atexit.register(self.flush)
            self._exit_hook = True
        if diverged:
            log.warning("run %s diverged at step %d; later steps are not recorded", self.run, step)
            self.stopped = True
        if (
            diverged
            or len(self._buffer) >= self.flush_every
            or time.monotonic() - self._flushed_at >= self.flush_seconds
        ):
            self.flush()
        return True

    @staticmethod
    def _checked_step(step: int, scalars: dict[str, float]) -> int:
        """``step`` as an int, once it and the names of ``scalars`` are checked."""
        if isinstance(step, bool) or int(step) != step or step < 0:
            raise TrainmapError(f"record: step {step!r} is not a whole number of steps >= 0")
        step = int(step)
        bad = sorted(set(scalars) & RESERVED)
        if bad or any(s.startswith(tables.EXAMPLE_LOSS_PREFIX) for s in scalars):
            raise TrainmapError(
                f"record: {bad or list(scalars)} are columns the recorder writes itself; "
                "pass step, epoch and eval_acc as arguments and name other scalars differently"
            )
        return step

    def _skips(self, step: int) -> bool:
        """Whether ``step`` is skipped: the run diverged, or recorded this step already."""
        if self.stopped or (self.last_step is not None and step <= self.last_step):
            if not self._skipped_logged:  # once: a restarted loop may pass many recorded steps
                why = "diverged" if self.stopped else f"recorded up to step {self.last_step}"
                log.info("run %s %s: step %d and later such steps skipped", self.run, why, step)
                self._skipped_logged = True
            return True
        return False

    def _predict(self, row: dict) -> dict[str, float]:
        if tables.EVAL_ACC not in row:
            raise TrainmapError(
                f"record: step {row[tables.STEP]} has no eval_acc; a recorder with a "
                "predictor needs the evaluation accuracy at every step"
            )
        self._history.append(row)
        predicted = self.predictor.predict_run(pd.DataFrame(self._history), ("map",)).iloc[0]
        self.prediction = dict(
            zip(PREDICTED, map(float, predicted[["predicted", "low", "high"]]), strict=True)
        )
        return self.prediction

    def _example_losses(self) -> dict[str, float]:
        training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                if callable(self.example_losses):
                    losses = self.example_losses(self.model)
                else:
                    inputs, targets = self.example_losses  # type: ignore[misc]
                    losses = nn.functional.cross_entropy(
                        self.model(inputs), targets, reduction="none"
                    )
        finally:
            self.model.train(training)
        losses = losses.detach().float().cpu().flatten()
        return {f"{tables.EXAMPLE_LOSS_PREFIX}{i}": v for i, v in enumerate(losses.tolist())}

    def flush(self) -> None:
        """Write the buffered rows as one part file now."""
        self._flushed_at = time.monotonic()
        if not self._buffer:
            return
        frame = pd.DataFrame(self._buffer)
        for column in frame.columns:
            if column.startswith(tables.EXAMPLE_LOSS_PREFIX):
                frame[column] = frame[column].astype("float32")
        first, last = self._buffer[0][tables.STEP], self._buffer[-1][tables.STEP]
        _write_part(frame, self.folder / f"{first:012d}-{last:012d}.parquet")
        self._buffer = []

    def close(self) -> None:
        """Write the buffered rows and merge the run's part files into one."""
        self.flush()
        if self._exit_hook:
            atexit.unregister(self.flush)
            self._exit_hook = False
        parts = self._parts()
        if len(parts) < 2:
            return
        merged = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
        first, last = merged[tables.STEP].min(), merged[tables.STEP].max()
        target = self.folder / f"{first:012d}-{last:012d}.parquet"
        _write_part(merged, target)
        for part in parts:  # a kill in here leaves overlapping parts; the reader keeps one copy
            if part != target:
                part.unlink()

    def __enter__(self) -> MetricsRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
