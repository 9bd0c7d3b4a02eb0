"""The metrics table of a folder of saved checkpoints (MultiBERTs, or the user's own runs).

A checkpoint is either a Hugging Face model folder (``config.json`` beside
``model.safetensors`` or ``pytorch_model.bin``, sharded or not; e.g. one
MultiBERTs seed and step, or a ``checkpoint-<step>`` folder of the
``transformers`` Trainer) or a file holding a state dict (``.safetensors``,
``.pt``, ``.pth``, ``.bin``, ``.ckpt``). Each checkpoint's path relative to
the folder gives its run and step through a regular expression with named
groups ``run`` and ``step`` (:data:`DEFAULT_PATTERN`: the first folder is the
run, the one number in the name is the step).

Loading never runs code from the files: safetensors files hold only tensors,
and everything else goes through ``torch.load(weights_only=True)``, which
refuses a pickle that would call anything but tensor constructors; that
refusal becomes a :class:`~trainmap.errors.TrainmapError`. The weight files
are read directly (no model class is built), so a folder's custom modelling
code is never imported.

Which parameters count is a pair of regular-expression lists: a parameter
counts when its name matches one of ``include`` and none of ``exclude``
(MultiBERTs: everything but embeddings, layer norms and the output layer tied
to the embeddings, as in Hu et al. 2023). Of those, tensors with ≥ 2
dimensions are weight matrices (convolution kernels ``out × in·kh·kw``,
:func:`trainmap.metrics.weights.as_matrix`), 1-D tensors whose name ends in
``bias`` are biases, and the rest (1-D gains, running statistics, integer
buffers) is skipped and logged. Every checkpoint must yield the same
parameters, so that the metrics stay comparable along a run.
"""

from __future__ import annotations

import io
import json
import logging
import os
import pickle
import pickletools
import re
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file
from torch import Tensor

from trainmap import fingerprints, tables
from trainmap.errors import TrainmapError
from trainmap.metrics.weights import as_matrix, weight_metrics

log = logging.getLogger(__name__)

#: Run = the first folder of the relative path; step = the one number in the checkpoint's name.
DEFAULT_PATTERN = r"^(?P<run>[^/]+)/\D*(?P<step>\d+)\D*$"
#: Column of the resume state's rows: the fingerprint of the options that measured them.
FINGERPRINT = "fingerprint"
#: Suffixes of files that hold a state dict.
SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")
#: Weight files of a Hugging Face model folder, in order of preference.
HF_WEIGHTS = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint: a file or a Hugging Face folder, its relative name, run and step."""

    path: Path
    name: str
    run: str
    step: int


def _hf_weights(directory: Path) -> Path | None:
    if not (directory / "config.json").is_file():
        return None
    return next((directory / w for w in HF_WEIGHTS if (directory / w).is_file()), None)


def find_checkpoints(
    folder: str | Path, pattern: str = DEFAULT_PATTERN, step_scale: int = 1
) -> list[Checkpoint]:
    """Every checkpoint under ``folder`` whose relative path matches ``pattern``.

    ``pattern`` is searched in the relative path (with ``/`` separators) and
    must have the named groups ``run`` and ``step``; the step is the matched
    integer times ``step_scale`` (MultiBERTs name steps in thousands). Entries
    that do not match are skipped with a warning. Sorted by run, then step.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise TrainmapError(f"checkpoints: folder {folder} does not exist")
    try:
        regex = re.compile(pattern)
    except re.error as error:
        raise TrainmapError(
            f"pattern: {pattern!r} is not a regular expression ({error})"
        ) from error
    if not {"run", "step"} <= set(regex.groupindex):
        raise TrainmapError(
            f"pattern: {pattern!r} needs the named groups (?P<run>…) and (?P<step>…)"
        )
    found, unmatched = [], []
    for directory, subdirs, files in os.walk(folder):
        subdirs.sort()
        here = Path(directory)
        if here != folder and _hf_weights(here) is not None:
            entries, subdirs[:] = [here], []  # one checkpoint; do not look inside
        else:
            entries = [here / f for f in sorted(files) if f.endswith(SUFFIXES)]
        for path in entries:
            name = path.relative_to(folder).as_posix()
            match = regex.search(name)
            if match is None:
                unmatched.append(name)
                continue
            if not (match["step"] or "").isdigit():
                raise TrainmapError(
                    f"pattern: the step group matched {match['step']!r} in {name}, "
                    "not a whole number"
                )
            step = int(match["step"]) * step_scale
            found.append(Checkpoint(path, name, match["run"], step))
    if unmatched:
        log.warning("skipped %d entries that do not match pattern %r: %s", len(unmatched), pattern,
                    ", ".join(unmatched[:5]) + (" …" if len(unmatched) > 5 else ""))  # fmt: skip
    if not found:
        raise TrainmapError(
            f"checkpoints: no checkpoint in {folder} matches pattern {pattern!r} "
            f"(looked for Hugging Face folders and files ending in {', '.join(SUFFIXES)})"
        )
    seen: dict[tuple[str, int], str] = {}
    for c in found:
        if (c.run, c.step) in seen:
            raise TrainmapError(
                f"pattern: {seen[c.run, c.step]} and {c.name} are both run {c.run!r}, step {c.step}"
            )
        seen[c.run, c.step] = c.name
    return sorted(found, key=lambda c: (_run_key(c.run), c.step))


def _run_key(run: str) -> tuple[int, int | str]:
    """Numeric run names in numeric order, before the others in text order."""
    return (0, int(run)) if run.isdigit() else (1, run)


def _holds_pickles(path: Path) -> bool:
    """Whether a file is well-formed pickles, as torch saves them (read, never run).

    A zip archive holds its pickle in ``data.pkl``; the legacy format is up to four
    pickles in a row, then raw tensor bytes.
    """
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if n.endswith("/data.pkl")]
                streams, count = [io.BytesIO(archive.read(n)) for n in names], 1
        else:
            streams, count = [io.BytesIO(path.read_bytes())], 4
        if not streams:
            return False
        for stream in streams:
            for _ in range(count):
                for _ in pickletools.genops(stream):
                    pass
                if stream.tell() == len(stream.getbuffer()):
                    break
    except Exception:  # genops and zipfile raise many kinds of errors on bad bytes
        return False
    return True


def _torch_load(path: Path) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load raises many kinds of errors on bad bytes
        # The weights-only unpickler's own reason, under torch's general advice.
        detail = error.__context__ if isinstance(error, pickle.UnpicklingError) else None
        detail = detail or error
        if isinstance(error, pickle.UnpicklingError) and _holds_pickles(path):
            raise TrainmapError(
                f"refusing to load {path}: it is a pickle that would run code or build objects "
                f"other than tensors (torch.load with weights_only=True rejected it: {detail}). "
                "Save the weights as a state dict (torch.save(model.state_dict(), ...)) or as "
                "safetensors"
            ) from error
        reason = (
            str(error)
            if isinstance(error, OSError)
            else "it is not a PyTorch checkpoint, or it is damaged "
            f"(torch.load: {type(detail).__name__}: {detail})"
        )
        raise TrainmapError(f"cannot read checkpoint {path}: {reason}") from error


def _load_file(path: Path) -> object:
    try:
        size = path.stat().st_size
    except OSError as error:  # e.g. a link to a file that is gone
        raise TrainmapError(f"cannot read checkpoint {path}: {error.strerror}") from error
    if size == 0:
        raise TrainmapError(
            f"checkpoint {path} is empty (0 bytes), perhaps from an interrupted save: "
            "save it again or delete it"
        )
    if path.suffix == ".safetensors":
        try:
            return load_file(path)
        except Exception as error:  # safetensors raises its own error types
            raise TrainmapError(f"cannot read checkpoint {path}: {error}") from error
    return _torch_load(path)


def load_state_dict(path: str | Path, key: str | None = None) -> dict[str, Tensor]:
    """The tensors of one checkpoint (a file or a Hugging Face folder), by parameter name.

    ``key`` picks an entry of a checkpoint that holds more than a state dict
    (e.g. ``model`` in ``{"model": ..., "optimizer": ...}``; dots go deeper).
    """
    path = Path(path)
    if path.is_dir():
        weights = _hf_weights(path)
        if weights is None:
            raise TrainmapError(
                f"{path} is not a Hugging Face model folder (no config.json + weights)"
            )
        if weights.name.endswith(".index.json"):
            try:
                shards = sorted(set(json.loads(weights.read_text())["weight_map"].values()))
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
                raise TrainmapError(
                    f"cannot read checkpoint index {weights}: {type(error).__name__}: {error} "
                    '(expected JSON with a "weight_map" of parameter names to shard files)'
                ) from error
            state: object = {}
            for shard in shards:
                state.update(_load_file(path / shard))  # type: ignore[union-attr]
        else:
            state = _load_file(weights)
    else:
        state = _load_file(path)
    for part in key.split(".") if key else []:
        if not isinstance(state, dict) or part not in state:
            keys = list(state) if isinstance(state, dict) else type(state).__name__
            raise TrainmapError(f"state_dict_key: {path} has no entry {key!r} (it has {keys})")
        state = state[part]
    tensors = (
        {k: v for k, v in state.items() if isinstance(v, Tensor)} if isinstance(state, dict) else {}
    )
    if not tensors:
        keys = list(state) if isinstance(state, dict) else type(state).__name__
        raise TrainmapError(
            f"{path} holds no tensors at the top level (it has {keys}); "
            "set state_dict_key to the entry with the model's state dict"
        )
    return tensors


def select_parameters(
    state: dict[str, Tensor], include: Sequence[str] = (".*",), exclude: Sequence[str] = ()
) -> tuple[dict[str, Tensor], dict[str, Tensor], list[str]]:
    """Split a state dict into weight matrices, biases and skipped names (see the module doc).

    A tensor that is a view of the same memory as an earlier one (tied weights,
    e.g. an output layer sharing the embedding matrix) counts once, under its
    first name, as in a Hugging Face folder, which saves tied weights once.
    """
    weights, biases, skipped = {}, {}, []
    seen: set[tuple] = set()
    for name, value in state.items():
        if not any(re.search(p, name) for p in include) or any(re.search(p, name) for p in exclude):
            continue
        memory = (
            value.untyped_storage().data_ptr(),
            value.storage_offset(),
            tuple(value.shape),
            value.stride(),
        )
        if value.numel() and memory in seen:
            skipped.append(name)
        elif value.is_floating_point() and value.dim() >= 2:
            weights[name] = as_matrix(value, batched=False)
        elif value.is_floating_point() and value.dim() == 1 and name.endswith("bias"):
            biases[name] = value
        else:
            skipped.append(name)
        seen.add(memory)
    return weights, biases, skipped


def measure(
    weights: dict[str, Tensor], biases: dict[str, Tensor], singular_values: str = "per_matrix"
) -> tuple[dict[str, float], bool]:
    """The 14 metrics of one model's selected parameters, and whether all of them are finite.

    ``singular_values`` is ``per_matrix`` or ``pooled``
    (:func:`~trainmap.metrics.weights.weight_metrics`).

    With a non-finite parameter every metric is NaN (the SVD fails on them) and
    the model counts as diverged.
    """
    finite = all(bool(t.isfinite().all()) for t in (*weights.values(), *biases.values()))
    if not finite:
        return dict.fromkeys(tables.METRICS, np.nan), False
    batch = [w[None] for w in weights.values()], [b[None] for b in biases.values()]
    return {m: float(v[0]) for m, v in weight_metrics(*batch, singular_values).items()}, True


def check_patterns(patterns: Sequence[str], key: str) -> None:
    """Raise a :class:`TrainmapError` naming ``key`` for a pattern that is not a regex."""
    for p in patterns:
        try:
            re.compile(p)
        except re.error as error:
            raise TrainmapError(f"{key}: {p!r} is not a regular expression ({error})") from error


def checkpoint_metrics(
    folder: str | Path,
    pattern: str = DEFAULT_PATTERN,
    step_scale: int = 1,
    include: Sequence[str] = (".*",),
    exclude: Sequence[str] = (),
    state_dict_key: str | None = None,
    singular_values: str = "per_matrix",
    scores: str | Path | None = None,
    resume_path: str | Path | None = None,
    save_every_seconds: float = 30.0,
) -> pd.DataFrame:
    """The metrics table of every checkpoint in ``folder``.

    Parameters
    ----------
    folder, pattern, step_scale
        Where the checkpoints are and how their runs and steps are named
        (:func:`find_checkpoints`).
    include, exclude
        Regular expressions on parameter names: which parameters count
        (:func:`select_parameters`).
    state_dict_key
        The entry holding the state dict, for checkpoints that hold more
        (:func:`load_state_dict`).
    singular_values
        ``per_matrix`` or ``pooled`` (:func:`~trainmap.metrics.weights.weight_metrics`).
    scores
        Optional CSV or Parquet file of the runs' losses and accuracies
        (:func:`add_scores`), e.g. for convergence times.
    resume_path, save_every_seconds
        Rows are saved here at most every ``save_every_seconds`` and reused by
        a rerun with the same options; removed at the end. ``None``: no saving.

    Returns
    -------
    pandas.DataFrame
        ``run`` (0..n-1 in order of the run names), ``run_name``, ``step``,
        ``epoch`` (NaN: unknown), the 14 metrics, the columns of ``scores``
        and ``diverged`` (a non-finite selected weight; a run's rows stop there).
    """
    selection = _Selection(include, exclude, state_dict_key, singular_values)
    checkpoints = find_checkpoints(folder, pattern, step_scale)
    options = _options_fingerprint(folder, pattern, step_scale, selection)
    resume = Path(resume_path) if resume_path is not None else None
    done = _resumed_rows(resume, options, len(checkpoints))
    _measure_missing(checkpoints, selection, done, resume, options, save_every_seconds)
    table = _to_table([done[c.name] for c in checkpoints])
    if scores is not None:
        table = add_scores(table, scores)
    # The resume state stays until the caller has written the table.
    return table


@dataclass(frozen=True)
class _Selection:
    """Which parameters of a checkpoint are measured, and how; checks the patterns."""

    include: Sequence[str]
    exclude: Sequence[str]
    state_dict_key: str | None
    singular_values: str

    def __post_init__(self) -> None:
        check_patterns(self.include, "include")
        check_patterns(self.exclude, "exclude")


def _options_fingerprint(
    folder: str | Path, pattern: str, step_scale: int, selection: _Selection
) -> str:
    """The fingerprint saved with the resume rows: a rerun reuses them only when it matches."""
    return fingerprints.fingerprint(
        {
            "folder": str(folder),
            "pattern": pattern,
            "step_scale": step_scale,
            "include": list(selection.include),
            "exclude": list(selection.exclude),
            "state_dict_key": selection.state_dict_key,
            "singular_values": selection.singular_values,
        }
    )


def _resumed_rows(resume: Path | None, options: str, total: int) -> dict[str, dict]:
    """The rows saved by an earlier run with the same options, by checkpoint name."""
    done: dict[str, dict] = {}
    if resume is not None and resume.exists():
        saved = pd.read_parquet(resume)
        if FINGERPRINT in saved and (saved[FINGERPRINT] == options).all():
            done = {r["name"]: r for r in saved.drop(columns=FINGERPRINT).to_dict("records")}
            log.info("resuming: %d of %d checkpoints already measured", len(done), total)
        else:
            log.warning("ignoring %s, saved with other options", resume)
    return done


def _load_selected(
    checkpoint: Checkpoint, selection: _Selection
) -> tuple[dict[str, Tensor], dict[str, Tensor], list[str]]:
    """The selected weights and biases of a checkpoint, and the names skipped."""
    include, exclude = selection.include, selection.exclude
    weights, biases, skipped = select_parameters(
        load_state_dict(checkpoint.path, selection.state_dict_key), include, exclude
    )
    if not weights:
        raise TrainmapError(
            f"include/exclude: no weight matrix of {checkpoint.name} is selected "
            f"(include {list(include)}, exclude {list(exclude)})"
        )
    return weights, biases, skipped


def _measure_missing(
    checkpoints: list[Checkpoint],
    selection: _Selection,
    done: dict[str, dict],
    resume: Path | None,
    options: str,
    save_every_seconds: float,
) -> None:
    """Measure every checkpoint not in ``done`` into it; save the rows now and then."""
    reference: dict[str, tuple[int, ...]] | None = None
    started = saved_at = time.monotonic()
    for i, c in enumerate(checkpoints):
        if c.name in done:
            continue
        weights, biases, skipped = _load_selected(c, selection)
        shapes = {n: tuple(t.shape) for n, t in {**weights, **biases}.items()}
        if reference is None:
            reference = shapes
            log.info("%d weight matrices, %d biases; skipped %s", len(weights), len(biases),
                     skipped or "nothing")  # fmt: skip
        elif shapes != reference:
            diff = sorted(set(shapes.items()) ^ set(reference.items()))[:5]
            raise TrainmapError(
                f"{c.name} does not have the parameters of the first checkpoint "
                f"{checkpoints[0].name} (differences: {diff})"
            )
        values, finite = measure(weights, biases, selection.singular_values)
        done[c.name] = {
            "name": c.name,
            "run_name": c.run,
            "step": c.step,
            "finite": finite,
            **values,
        }
        log.info("%d/%d %s: run %s step %d (%.1f s so far)", i + 1, len(checkpoints), c.name,
                 c.run, c.step, time.monotonic() - started)  # fmt: skip
        if resume is not None and time.monotonic() - saved_at >= save_every_seconds:
            saved_at = time.monotonic()
            rows = pd.DataFrame(list(done.values())).assign(**{FINGERPRINT: options})
            with tables.atomic_output(resume) as tmp:
                rows.to_parquet(tmp, index=False)


def _to_table(rows: list[dict]) -> pd.DataFrame:
    """Rows in run/step order → the metrics table; a run stops at its first non-finite row."""
    raw = pd.DataFrame(rows)
    names = sorted(raw["run_name"].unique(), key=_run_key)
    table = pd.DataFrame(
        {
            tables.RUN: raw["run_name"].map({n: i for i, n in enumerate(names)}).astype(np.int64),
            tables.RUN_NAME: raw["run_name"].astype(str),
            tables.STEP: raw["step"].astype(np.int64),
            tables.EPOCH: np.nan,
            **{m: raw[m].astype(np.float64) for m in tables.METRICS},
            tables.DIVERGED: ~raw["finite"].astype(bool),
        }
    )
    after = table.groupby(tables.RUN)[tables.DIVERGED].transform(
        lambda d: d.cumsum().shift(fill_value=0) > 0
    )
    for run in table.loc[table[tables.DIVERGED], tables.RUN_NAME].unique():
        log.warning("run %s has non-finite weights; its rows stop there", run)
    return (
        table[~after].sort_values([tables.RUN, tables.STEP], kind="stable").reset_index(drop=True)
    )


#: Columns a scores file may hold besides ``run`` and ``step``.
SCORES = (tables.TRAIN_LOSS, tables.TRAIN_ACC, tables.EVAL_LOSS, tables.EVAL_ACC)


def add_scores(table: pd.DataFrame, path: str | Path) -> pd.DataFrame:
    """Join a file of scores to the checkpoints' metrics table.

    The file (CSV or Parquet) has a row per checkpoint with columns ``run``
    (the run name that ``pattern`` extracts), ``step`` (after ``step_scale``)
    and any of ``train_loss``, ``train_acc``, ``eval_loss``, ``eval_acc``.
    Every checkpoint needs its row.
    """
    path = Path(path)
    if not path.is_file():
        raise TrainmapError(f"scores: file {path} does not exist")
    try:
        raw = tables.read_table(path)
    except TrainmapError as error:
        raise TrainmapError(f"scores: {error}") from error
    columns = [c for c in SCORES if c in raw.columns]
    missing = {tables.RUN, tables.STEP} - set(raw.columns)
    if missing or not columns:
        raise TrainmapError(
            f"scores: {path} needs columns run, step and one of {list(SCORES)}; "
            f"it has {list(raw.columns)}"
        )
    raw = raw.assign(**{tables.RUN_NAME: raw[tables.RUN].astype(str)})[
        [tables.RUN_NAME, tables.STEP, *columns]
    ]
    twice = raw[raw.duplicated([tables.RUN_NAME, tables.STEP])]
    if len(twice):
        pairs = list(zip(twice[tables.RUN_NAME], twice[tables.STEP], strict=True))[:5]
        raise TrainmapError(f"scores: {path} has more than one row for (run, step) {pairs}")
    merged = table.merge(raw, on=[tables.RUN_NAME, tables.STEP], how="left")
    lacking = merged[merged[columns].isna().all(axis=1)]
    if len(lacking):
        pairs = list(zip(lacking[tables.RUN_NAME], lacking[tables.STEP], strict=True))[:5]
        raise TrainmapError(
            f"scores: {path} has no row for {len(lacking)} checkpoint(s), e.g. (run, step) {pairs}"
        )
    return merged
