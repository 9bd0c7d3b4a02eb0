"""Sparse modular addition: sequences of ``L`` tokens in Z_p, label = sum of the first ``k`` mod p.

Every draw is made from a numpy generator seeded by ``(seed, stream)`` so that a run's
data depend on its own seed only, never on which other runs share its batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from trainmap.errors import TrainmapError

#: Independent random streams of one seed.
TRAIN_STREAM, TEST_STREAM, SHUFFLE_STREAM = 0, 1, 2


@dataclass(frozen=True)
class Task:
    """The sparse modular addition problem.

    Attributes:
        seq_len: input length L.
        k: the label is the sum of the first ``k`` tokens modulo ``p``.
        p: vocabulary size (classes).
    """

    seq_len: int = 12
    k: int = 5
    p: int = 2

    def __post_init__(self) -> None:
        if not 1 <= self.k <= self.seq_len:
            raise TrainmapError(f"sandbox: need 1 <= k <= L, got k={self.k}, L={self.seq_len}")
        if self.p < 2:
            raise TrainmapError(f"sandbox: p must be at least 2, got {self.p}")

    def labels(self, x: np.ndarray) -> np.ndarray:
        """Labels of sequences ``x`` (..., L): sum of the first k tokens mod p."""
        return x[..., : self.k].sum(axis=-1) % self.p


def _encode(x: np.ndarray, p: int) -> np.ndarray:
    """One integer per sequence (base-p number), for set operations."""
    return (x.astype(np.int64) * p ** np.arange(x.shape[-1], dtype=np.int64)).sum(axis=-1)


def draw(
    task: Task, n: int, seed: int, stream: int, exclude: np.ndarray | None = None
) -> np.ndarray:
    """``n`` sequences drawn uniformly with replacement, optionally outside ``exclude``.

    Args:
        task: the problem.
        n: number of sequences.
        seed: the run's seed.
        stream: which independent stream of that seed (``TRAIN_STREAM``, ``TEST_STREAM``).
        exclude: sequences (m, L) that must not be drawn (a disjoint test set).

    Returns:
        int64 array (n, L).
    """
    rng = np.random.default_rng([seed, stream])
    if exclude is None:
        return rng.integers(0, task.p, size=(n, task.seq_len))
    banned = np.unique(_encode(exclude, task.p))
    if banned.size >= task.p**task.seq_len:
        raise TrainmapError("sandbox.disjoint_test: the training set covers every sequence")
    kept: list[np.ndarray] = []
    count = 0
    while count < n:
        x = rng.integers(0, task.p, size=(2 * n, task.seq_len))
        x = x[~np.isin(_encode(x, task.p), banned)]
        kept.append(x)
        count += len(x)
    return np.concatenate(kept)[:n]


class RunData(NamedTuple):
    """Training and test sets of one run; still unpacks as a 4-tuple."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def make_data(task: Task, n: int, n_test: int, seed: int, disjoint_test: bool = False) -> RunData:
    """Training and test sets of one run: ``(x_train, y_train, x_test, y_test)``."""
    x_train = draw(task, n, seed, TRAIN_STREAM)
    x_test = draw(task, n_test, seed, TEST_STREAM, exclude=x_train if disjoint_test else None)
    return RunData(x_train, task.labels(x_train), x_test, task.labels(x_test))


def overlap(x_train: np.ndarray, x_test: np.ndarray, p: int) -> float:
    """Share of test sequences that also occur in the training set."""
    return float(np.isin(_encode(x_test, p), _encode(x_train, p)).mean())


def probe_sequences(task: Task, suffixes: int = 2, seed: int = 0) -> np.ndarray:
    """The sequences shown in a frame: every prefix of length k times a few fixed suffixes.

    Returns an array (p**k * suffixes, L), grouped by prefix.
    """
    prefixes = np.stack(np.meshgrid(*[np.arange(task.p)] * task.k, indexing="ij"), axis=-1).reshape(
        -1, task.k
    )
    tails = np.random.default_rng([seed, 99]).integers(
        0, task.p, size=(suffixes, task.seq_len - task.k)
    )
    return np.concatenate(
        [np.repeat(prefixes, suffixes, axis=0), np.tile(tails, (len(prefixes), 1))], axis=1
    )
