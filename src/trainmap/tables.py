"""The metrics table: one row per (run, checkpoint), the contract between stages.

The trainer and the checkpoint reader write it, the analysis reads it. See
``docs/architecture.md`` for what each column means.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from trainmap.errors import TrainmapError, did_you_mean

RUN = "run"
RUN_NAME = "run_name"
STEP = "step"
EPOCH = "epoch"
DIVERGED = "diverged"
TRAIN_LOSS, TRAIN_ACC = "train_loss", "train_acc"
EVAL_LOSS, EVAL_ACC = "eval_loss", "eval_acc"
EXAMPLE_LOSS_PREFIX = "example_loss_"

#: The 14 weight metrics of Hu et al. (2023), appendix B, in the paper's order.
METRICS: tuple[str, ...] = (
    "l1",
    "l2",
    "l1_over_l2",
    "trace",
    "spectral",
    "trace_over_spectral",
    "sv_mean",
    "sv_var",
    "weight_mean",
    "weight_median",
    "weight_var",
    "bias_mean",
    "bias_median",
    "bias_var",
)

#: Short labels for maps and tables (the paper's notation).
METRIC_LABELS: dict[str, str] = {
    "l1": "L1",
    "l2": "L2",
    "l1_over_l2": "L1/L2",
    "trace": "trace",
    "spectral": "λmax",
    "trace_over_spectral": "trace/λmax",
    "sv_mean": "σ mean",
    "sv_var": "σ var",
    "weight_mean": "w mean",
    "weight_median": "w median",
    "weight_var": "w var",
    "bias_mean": "b mean",
    "bias_median": "b median",
    "bias_var": "b var",
}


def example_loss_columns(table: pd.DataFrame) -> list[str]:
    """The per-example validation loss columns, in example order."""
    return [c for c in table.columns if c.startswith(EXAMPLE_LOSS_PREFIX)]


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a Parquet (``.parquet``, ``.pq``) or CSV file (any other suffix).

    Any failure is a :class:`TrainmapError` naming the file and the reason.
    """
    path = Path(path)
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except Exception as error:  # the readers raise many kinds of errors
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise TrainmapError(f"cannot read {path}: {type(error).__name__}: {reason}") from error


def read_metrics_table(path: str | Path, required: tuple[str, ...] = (RUN, STEP)) -> pd.DataFrame:
    """Read a metrics table and check it has ``required`` columns, sorted by run and step."""
    path = Path(path)
    if not path.exists():
        raise TrainmapError(f"metrics table {path} does not exist")
    table = read_table(path)
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise TrainmapError(
            f"metrics table {path} lacks column {missing[0]!r}"
            f"{did_you_mean(missing[0], table.columns)} (missing: {missing}; "
            f"it has {list(table.columns)})"
        )
    return table.sort_values([RUN, STEP], kind="stable").reset_index(drop=True)


#: Part files of a recorder's folder (:class:`trainmap.record.MetricsRecorder`): one
#: sub-folder per run, one Parquet file per flush named by its first and last step.
RECORDED_PART = "[0-9]*-[0-9]*.parquet"
RECORDED_PARTS = f"*/{RECORDED_PART}"


def read_recorded(folder: str | Path) -> pd.DataFrame:
    """The rows a :class:`trainmap.record.MetricsRecorder` wrote to ``folder``, all runs.

    Parts overlap only when a compaction was interrupted; their rows are equal
    and kept once. Sorted by run and step; run ids of mixed types become text.
    """
    folder = Path(folder)
    parts = sorted(folder.glob(RECORDED_PARTS))
    if not parts:
        raise TrainmapError(
            f"{folder} holds no recorded rows (expected <run>/<first>-<last>.parquet files "
            "written by trainmap.record.MetricsRecorder)"
        )
    frames = [read_table(p) for p in parts]
    if len({f[RUN].dtype.kind for f in frames}) > 1:
        frames = [f.assign(**{RUN: f[RUN].astype(str)}) for f in frames]
    table = pd.concat(frames, ignore_index=True)
    table = table.drop_duplicates([RUN, STEP], keep="last")
    return table.sort_values([RUN, STEP], kind="stable").reset_index(drop=True)


@contextlib.contextmanager
def atomic_output(
    path: str | Path, resume: str | Path | None = None, *, durable: bool = False
) -> Iterator[Path]:
    """A temporary file beside ``path`` to write; it becomes ``path`` when the block ends.

    The one way trainmap saves a file. A job killed while writing leaves ``path`` as
    it was (absent or complete), never half written; the temporary file is removed
    when the block raises. ``resume``, the job's resume state, is deleted only after
    ``path`` is in place, so a kill at any moment loses at most the work since the
    last save. ``durable``: the file and its rename are synced to disk, so they also
    survive a power cut (for many small files written during training). The
    temporary name keeps the suffix, for writers that choose a format by it, and
    starts with a dot, so globs for the finished files skip it. An OS error while
    writing (disk full, a read-only folder) is a :class:`TrainmapError` naming ``path``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        if durable:
            _fsync(tmp)
        os.replace(tmp, path)
        if durable:
            _fsync(path.parent)  # the rename is an entry of the folder
    except OSError as error:  # disk full, a read-only folder: a failed write names no file
        raise TrainmapError(f"cannot write {path}: {error.strerror or error}") from error
    finally:
        with contextlib.suppress(OSError):  # a folder that cannot be written, raised above
            tmp.unlink(missing_ok=True)
    if resume is not None:
        Path(resume).unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_table(table: pd.DataFrame, path: str | Path, resume: str | Path | None = None) -> None:
    """Write a table as Parquet (``.parquet``), CSV (``.csv``) or Markdown (``.md``).

    Atomically; ``resume`` (a job's resume state) is deleted once the table is in place.
    """
    path = Path(path)
    if path.suffix not in (".parquet", ".csv", ".md"):
        raise TrainmapError(f"cannot write a table as {path.suffix!r} ({path})")
    with atomic_output(path, resume) as tmp:
        if path.suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        elif path.suffix == ".csv":
            table.to_csv(tmp, index=False)
        else:
            tmp.write_text(to_markdown(table) + "\n")


def to_markdown(table: pd.DataFrame, float_format: str = "{:.3g}") -> str:
    """A GitHub Markdown table (pandas' own needs the optional tabulate package)."""

    def cell(value: object) -> str:
        if isinstance(value, float | np.floating):
            return float_format.format(value)
        return str(value).replace("|", "\\|")

    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in table.columns) + " |"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *rows])
