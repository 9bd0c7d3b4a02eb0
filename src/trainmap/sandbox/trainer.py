"""Train many sandbox runs at once as one batched model, resumably, on the engine
(:mod:`trainmap.engine`: loop, optimiser, divergence, resume, device).

Each member has its own seed (initialisation, data draw, batch order), learning rate,
MLP learning-rate discount and weight decay; members never interact, so a run trained inside a batch
follows the same trajectory as the run trained alone (``tests/test_sandbox_trainer.py``).
Per epoch the trainer logs train/test loss and accuracy of every member on its full
sets and the per-layer gradient norm (mean over the epoch's steps); it keeps full
weights at every ``snapshot_every``-th epoch (0: only at initialisation and the end).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

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
from trainmap.sandbox.data import SHUFFLE_STREAM, Task, make_data, overlap
from trainmap.sandbox.model import Sandbox, Shape
from trainmap.sandbox.plan import JobSpec
from trainmap.sandbox.results import LAYERS, MLP_PARAMS, PARAMS, load_snapshots
from trainmap.tables import atomic_output

log = logging.getLogger("trainmap.sandbox")

#: The columns of the spec repeated on every row of the log.
SPEC_COLUMNS = ("seq_len", "k", "p", "n", "n_test", "disjoint_test", "d", "hidden", "batch_size")


def _initial_states(spec: JobSpec, sources: list[str]) -> dict[str, Tensor]:
    """Final weights of the source runs with the same seeds (transfer)."""
    snaps = load_snapshots(sources)
    index = {int(s): i for i, s in enumerate(snaps["seeds"])}
    missing = sorted(set(spec.seeds) - set(index))
    if missing:
        raise TrainmapError(f"sandbox init_from {spec.init_from!r}: no run with seeds {missing}")
    rows = [index[s] for s in spec.seeds]
    return {n: torch.as_tensor(snaps[n][-1][rows]) for n in PARAMS}


def _layer_slots(model: Sandbox) -> Tensor:
    """``member * layers + layer`` of every element of the optimiser's flat buffer (the
    parameters one after another, each stacked over members)."""
    layer = {n: i for i, names in enumerate(LAYERS.values()) for n in names}
    members = torch.arange(model.members)[:, None] * len(LAYERS)
    slots = [(members + layer[n]).expand(-1, p[0].numel()) for n, p in model.named_parameters()]
    return torch.cat([s.flatten() for s in slots])


def _distinct_sequences(sets: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Every member's distinct sequences (M, U, L) of ``sets`` ((M, N, L) each), padded
    to one count by repeating its first, and where each set's sequences are among them
    ((M, N) each)."""
    x = np.ascontiguousarray(np.concatenate(sets, axis=1))
    whole = x.view(np.dtype((np.void, x.shape[2] * x.itemsize)))[..., 0]  # one per sequence
    distinct, where = [], []
    for member, sequences in zip(x, whole, strict=True):
        _, first, inverse = np.unique(sequences, return_index=True, return_inverse=True)
        distinct.append(member[first])
        where.append(inverse.reshape(-1))
    width = max(len(d) for d in distinct)
    padded = [np.concatenate([d, d[:1].repeat(width - len(d), axis=0)]) for d in distinct]
    bounds = np.cumsum([s.shape[1] for s in sets])[:-1]
    return np.stack(padded), np.split(np.stack(where), bounds, axis=1)


class Trainer:
    """Train the members of one job: an engine job (:class:`trainmap.engine.MemberJob`)
    of the sandbox's model, data, per-epoch evaluation, log and weight snapshots.

    Parameters
    ----------
    spec
        The job (what to train).
    device
        ``auto``, ``cpu`` or ``cuda``.
    init_from
        Weight snapshot files of the source job(s) when ``spec.init_from``.
    eval_chunk
        Sequences per forward pass when evaluating; ``None``: as many as keep the MLP
        activations of all members near 2**21 numbers (cache-sized).
    """

    def __init__(
        self,
        spec: JobSpec,
        device: str = "auto",
        init_from: list[str] | None = None,
        eval_chunk: int | None = None,
    ) -> None:
        self.spec, self.device = spec, resolve_device(device)
        self.eval_chunk = eval_chunk or max(16, 2**21 // (len(spec.seeds) * spec.hidden))
        self.task = Task(spec.seq_len, spec.k, spec.p)
        if spec.p > spec.vocab:
            raise TrainmapError(f"sandbox: p={spec.p} needs vocab >= p, got vocab={spec.vocab}")
        shape = Shape(spec.seq_len, spec.vocab, spec.d, spec.hidden)
        self.model = Sandbox(shape, list(spec.seeds)).to(self.device)
        if spec.init_from:
            self.model.load_members(_initial_states(spec, init_from or []))
        x_train, x_test = self._set_training_data()
        self._set_eval_chunks(x_train, x_test)
        self.engine = self._member_engine()
        self.steps_per_epoch = math.ceil(spec.n / self.batch_size)
        self.total_steps = spec.epochs * self.steps_per_epoch
        self.layer_slots = _layer_slots(self.model).to(self.device)
        self.shuffles = [np.random.default_rng([s, SHUFFLE_STREAM]) for s in spec.seeds]
        self.norms = torch.zeros(self.model.members, len(LAYERS), device=self.device)
        self.epoch_rows, self.epoch_labels = self.train_rows, self.train_labels
        self.records: list[dict[str, Tensor]] = []
        self.snapshots: dict[int, dict[str, Tensor]] = {}

    def _set_training_data(self) -> tuple[np.ndarray, np.ndarray]:
        """Draw every member's data; keep the training set compact, return (x_train, x_test)."""
        spec = self.spec
        data = [
            make_data(self.task, spec.n, spec.n_test, s, spec.disjoint_test) for s in spec.seeds
        ]
        self.overlap = np.array([overlap(d.x_train, d.x_test, spec.p) for d in data])
        x_train = np.stack([d.x_train for d in data])
        y_train = np.stack([d.y_train for d in data])
        x_test = np.stack([d.x_test for d in data])
        # The training rows (M, n, L) and labels in the smallest integer type that holds
        # them, for the epoch's shuffle: short rows are cheaper to select.
        compact = torch.uint8 if spec.seq_len * spec.vocab <= 256 else torch.int32
        x_train_slots = self.model.slots(torch.as_tensor(x_train, device=self.device))
        self.train_rows = x_train_slots.to(compact)
        self.train_labels = torch.as_tensor(y_train, device=self.device).to(compact)
        return x_train, x_test

    def _set_eval_chunks(self, x_train: np.ndarray, x_test: np.ndarray) -> None:
        """Chunks of every member's distinct sequences, and where each set's draws are."""
        # Evaluation runs on every member's distinct sequences of both sets, once each: at
        # small p the draws of both sets repeat many sequences (docs/decisions.md,
        # "Sandbox trainer: each distinct sequence evaluated once").
        distinct, where = _distinct_sequences([x_train, x_test])
        self.eval_rows = [torch.as_tensor(w, device=self.device) for w in where]
        slots = self.model.slots(torch.as_tensor(distinct, device=self.device)).transpose(1, 2)
        labels = torch.as_tensor(self.task.labels(distinct), device=self.device)
        # In contiguous chunks, sequences on the last axis: the layout the model computes in.
        self.eval_chunks = [
            (x.contiguous(), y)
            for x, y in zip(
                slots.split(self.eval_chunk, 2), labels.split(self.eval_chunk, 1), strict=True
            )
        ]

    def _member_engine(self) -> Engine:
        """Adam over every member's parameters, at the member's own learning rates."""
        spec = self.spec
        lr = torch.tensor(spec.lr, dtype=torch.float64)
        mlp_lr = lr / torch.tensor(spec.mlp_discount, dtype=torch.float64)
        params = dict(self.model.named_parameters())
        rates = [member_values(mlp_lr if n in MLP_PARAMS else lr, p) for n, p in params.items()]
        # Adam's weight decay, added to the gradient (torch.optim.Adam's weight_decay): the
        # sandbox is trained with torch's Adam, and its authors set no weight decay.
        weight_decay = torch.tensor(spec.weight_decay, dtype=torch.float64)
        decays = [member_values(weight_decay, p) for p in params.values()]
        optimizer = MemberOptimizer(list(params.values()), rates, decays, "adam", spec.betas)
        return Engine(
            optimizer, self.model.members, self.device, "sandbox", stop_when_all_diverged=False
        )

    @property
    def batch_size(self) -> int:
        return self.spec.batch_size if self.spec.batch_size > 0 else self.spec.n

    @torch.no_grad()
    def evaluate(self) -> tuple[Tensor, Tensor]:
        """Loss and correctness (M, U) of every member on each of its distinct sequences.

        Chunks are small so that the intermediates stay in cache: the passes are
        memory-bound and a cache-sized chunk makes them several times faster.
        """
        losses, correct = [], []
        for slots, y in self.eval_chunks:
            logits = self.model.logits(slots, self.spec.p)
            losses.append(F.cross_entropy(logits, y, reduction="none"))
            # argmax over a short non-contiguous axis is slow; over the contiguous one it is not.
            correct.append(logits.transpose(1, 2).contiguous().argmax(-1) == y)
        return torch.cat(losses, 1), torch.cat(correct, 1)

    def losses(self, step: int) -> Tensor:
        """Mean loss (M,) of every member on its batch of ``step``."""
        spec = self.spec
        batch = step % self.steps_per_epoch
        if batch == 0:  # a new epoch: every member's order, its sequences selected once
            order = np.stack([rng.permutation(spec.n) for rng in self.shuffles])
            order += spec.n * np.arange(len(order))[:, None]  # rows of (member, sequence)
            order = torch.as_tensor(order, device=self.device).view(-1)
            rows, labels = self.train_rows, self.train_labels
            self.epoch_rows = rows.flatten(0, 1).index_select(0, order).view_as(rows)
            self.epoch_labels = labels.flatten().index_select(0, order).view_as(labels)
        i = batch * self.batch_size
        xb = self.epoch_rows[:, i : i + self.batch_size].transpose(1, 2).long()
        yb = self.epoch_labels[:, i : i + self.batch_size].long()
        logits = self.model.logits(xb, spec.p)
        return F.cross_entropy(logits, yb, reduction="none").mean(1)

    @torch.no_grad()
    def after_backward(self, gradients: list[Tensor]) -> None:
        """Add the step's per-layer gradient norms (averaged over the epoch when logged)."""
        # One pass over the optimiser's flat gradient buffer (the ``gradients`` are views
        # of it) rather than a few small kernels per parameter.
        squares = torch.zeros_like(self.norms).view(-1)
        squares.index_add_(0, self.layer_slots, self.engine.optimizer.grad.square())
        self.norms += squares.view_as(self.norms).sqrt()

    def is_checkpoint(self, step: int) -> bool:
        return step % self.steps_per_epoch == 0

    def checkpoint(self, step: int, divergence: Divergence) -> None:
        """Log this epoch's losses, accuracies and gradient norms (and snapshot the
        weights when due)."""
        spec, epoch = self.spec, step // self.steps_per_epoch
        losses, correct = self.evaluate()
        (train_loss, train_acc), (test_loss, test_acc) = (
            (
                losses.gather(1, rows).double().mean(1).cpu(),
                correct.gather(1, rows).double().mean(1).cpu(),
            )
            for rows in self.eval_rows
        )
        params = dict(self.model.named_parameters())
        finite = divergence.finite(params.values(), train_loss[:, None], test_loss[:, None])
        divergence.settle(finite)
        record = {
            "epoch": torch.tensor(epoch),
            "train_loss": train_loss,
            "train_acc": train_acc,
            "test_loss": test_loss,
            "test_acc": test_acc,
            "diverged": ~finite,
        }
        if epoch > 0:
            record["grads"] = (self.norms / self.steps_per_epoch).cpu()
            self.norms.zero_()
        self.records.append(record)
        every = spec.snapshot_every
        if epoch in (0, spec.epochs) or (every and epoch % every == 0):
            self.snapshots[epoch] = {n: p.detach().cpu().clone() for n, p in params.items()}

    def summary(self) -> str:
        last = self.records[-1]
        return (
            f"train loss {float(last['train_loss'].mean()):.4f} "
            f"test acc {float(last['test_acc'].mean()):.3f} (means)"
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "shuffles": [rng.bit_generator.state for rng in self.shuffles],
            "records": self.records,
            "snapshots": self.snapshots,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        for rng, bits in zip(self.shuffles, state["shuffles"], strict=True):
            rng.bit_generator.state = bits
        self.records, self.snapshots = state["records"], state["snapshots"]

    def fit(self, state_path: str | Path | None = None, save_every_s: float = 60.0) -> None:
        """Train all epochs; with ``state_path``, resume from it and save to it periodically."""
        resume = Resume(state_path, fingerprint(self.spec.to_dict()), every_s=save_every_s)
        self.engine.fit(self, resume)

    def history(self) -> pd.DataFrame:
        """The per-epoch log of every member (one row per member and epoch)."""
        spec, members = self.spec, self.model.members
        nan = np.full(members, np.nan)
        frames = []
        for record in self.records:
            grads = record["grads"].numpy() if "grads" in record else None
            frame = pd.DataFrame(
                {
                    "member": np.arange(members),
                    "seed": spec.seeds,
                    "lr": spec.lr,
                    "mlp_discount": spec.mlp_discount,
                    "weight_decay": spec.weight_decay,
                    "epoch": int(record["epoch"]),
                    **{k: record[k].numpy() for k in ("train_loss", "train_acc")},
                    **{k: record[k].numpy() for k in ("test_loss", "test_acc")},
                    **{
                        f"grad_{layer}": nan if grads is None else grads[:, i]
                        for i, layer in enumerate(LAYERS)
                    },
                    "diverged": record["diverged"].numpy(),
                }
            )
            frames.append(frame)
        frame = pd.concat(frames, ignore_index=True)
        frame["overlap"] = self.overlap[frame["member"].to_numpy()]
        for key in SPEC_COLUMNS:
            frame[key] = getattr(spec, key)
        frame["diverged"] = frame.groupby("member")["diverged"].cummax()
        return frame.sort_values(["member", "epoch"], ignore_index=True)

    def save(self, log_path: str | Path, weights_path: str | Path) -> None:
        """Write the log (Parquet) and the weight snapshots (npz, arrays (E, M, ...))."""
        with atomic_output(log_path) as tmp:
            self.history().to_parquet(tmp, index=False)
        epochs = sorted(self.snapshots)
        with atomic_output(weights_path) as tmp:
            np.savez_compressed(
                tmp,
                epochs=np.array(epochs),
                seeds=np.array(self.spec.seeds),
                lr=np.array(self.spec.lr),
                mlp_discount=np.array(self.spec.mlp_discount),
                weight_decay=np.array(self.spec.weight_decay),
                **{n: np.stack([self.snapshots[e][n].numpy() for e in epochs]) for n in PARAMS},
            )


def train_job(
    spec: JobSpec,
    log_path: str | Path,
    weights_path: str | Path,
    device: str = "auto",
    init_from: list[str] | None = None,
    state_path: str | Path | None = None,
) -> None:
    """Train one job end to end, resumably, and write its log and weights."""
    trainer = Trainer(spec, device, init_from)
    trainer.fit(state_path)
    trainer.save(log_path, weights_path)
    if state_path:
        Path(state_path).unlink(missing_ok=True)
