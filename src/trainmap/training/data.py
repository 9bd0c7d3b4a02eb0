"""Data sets of the algorithmic settings and the per-seed random streams.

With ``data.split: fixed`` a setting's data set (the train/evaluation split,
the bit strings) is fixed by its ``data.seed``, the same for every run, so that
runs differ only in initialisation and data order, and the per-example losses
of different runs are losses of the same validation examples. With
``data.split: per_seed`` (the authors' code) each run draws its own data set
from (``data.seed``, run seed). A run's random streams (data order,
augmentation) are derived from (run seed, epoch or step) alone, so they do not
depend on which other seeds share the job or on when a job resumed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass
class TaskData:
    """Training and evaluation tensors (inputs ``x``, integer class labels ``y``)."""

    x_train: Tensor
    y_train: Tensor
    x_eval: Tensor
    y_eval: Tensor


def generator(*key: int) -> torch.Generator:
    """A CPU generator seeded from a tuple of non-negative ints (e.g. seed, epoch)."""
    state = np.random.SeedSequence(list(key)).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def modular_addition(p: int, train_fraction: float, seed: int | tuple[int, ...]) -> TaskData:
    """All pairs ``(a, b)`` as tokens ``[a, b, =]`` (``=`` is token ``p``), label ``(a + b) mod p``.

    A random ``train_fraction`` of the ``p²`` pairs is the training set, the
    rest the evaluation set (both in random order).
    """
    a, b = torch.cartesian_prod(torch.arange(p), torch.arange(p)).T
    tokens = torch.stack([a, b, torch.full_like(a, p)], dim=1)
    labels = (a + b) % p
    order = torch.randperm(p * p, generator=generator(*_key(seed)))
    n_train = round(train_fraction * p * p)
    train, test = order[:n_train], order[n_train:]
    return TaskData(tokens[train], labels[train], tokens[test], labels[test])


def sparse_parities(
    n_bits: int, k: int, n_train: int, n_eval: int, seed: int | tuple[int, ...]
) -> TaskData:
    """Random ±1 vectors of ``n_bits``; label 1 when the first ``k`` bits hold an odd number of -1s.

    Barak et al. (2022): the network must find which ``k`` of the ``n_bits``
    bits matter. Train and evaluation sets are independent draws.
    """
    g = generator(*_key(seed))
    bits = torch.randint(0, 2, (n_train + n_eval, n_bits), generator=g)
    labels = bits[:, :k].sum(1) % 2
    x = (1 - 2 * bits).float()
    return TaskData(x[:n_train], labels[:n_train], x[n_train:], labels[n_train:])


def _key(seed: int | tuple[int, ...]) -> tuple[int, ...]:
    """A data seed as a generator key: ``seed`` or ``(data seed, run seed)``."""
    return (seed,) if isinstance(seed, int) else tuple(seed)


def example_subset(n_eval: int, size: int, seed: int) -> Tensor:
    """Sorted indices of ``size`` evaluation examples (all of them if ``size >= n_eval``)."""
    if size >= n_eval:
        return torch.arange(n_eval)
    return torch.randperm(n_eval, generator=generator(seed, 1))[:size].sort().values
