"""Train many sandbox runs at once as one batched model, resumably.

Each member has its own seed (initialisation, data draw, batch order), learning rate and
MLP learning-rate discount; members never interact, so a run trained inside a batch
follows the same trajectory as the run trained alone (``tests/test_sandbox_trainer.py``).
Per epoch the trainer logs train/test loss and accuracy of every member on its full
sets and the per-layer gradient norm (mean over the epoch's steps); it keeps full
weights at every ``snapshot_every``-th epoch (0: only at initialisation and the end).
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

from trainmap.errors import TrainmapError
from trainmap.sandbox.data import SHUFFLE_STREAM, Task, make_data, overlap
from trainmap.sandbox.model import LAYERS, MLP_PARAMS, Sandbox, Shape
from trainmap.sandbox.plan import JobSpec
from trainmap.sandbox.results import load_snapshots
from trainmap.tables import atomic_output
from trainmap.training.trainer import resolve_device

log = logging.getLogger("trainmap.sandbox")


class BatchedAdam:
    """Adam (no weight decay) with one learning rate per member and parameter.

    ``torch.optim.Adam`` takes one learning rate per parameter group; here every
    parameter is stacked over members, so the learning rate is a tensor broadcast over
    the member axis. The update is torch's single-tensor Adam formula.

    The parameters are moved into one flat buffer (each a contiguous block of it) and
    their gradients into another, so that one step is a handful of kernels on two
    tensors whatever the number of parameters; ``zero_grad`` clears the gradient buffer
    in place and backward accumulates into it.

    Args:
        params: the parameters, by name, each with a leading member axis M.
        lr: learning rate per parameter name, a tensor (M,).
        betas: Adam's (beta1, beta2).
        eps: Adam's epsilon.
    """

    def __init__(
        self,
        params: dict[str, Tensor],
        lr: dict[str, Tensor],
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.params = list(params.values())
        self.flat = torch.cat([p.detach().flatten() for p in self.params])
        self.grad = torch.zeros_like(self.flat)
        self.lr = torch.cat(
            [lr[n].view(-1, 1).expand(-1, p[0].numel()).flatten() for n, p in params.items()]
        ).to(self.flat)
        self.grad_views: list[Tensor] = []
        start = 0
        for p in self.params:
            p.data = self.flat[start : start + p.numel()].view_as(p)
            self.grad_views.append(self.grad[start : start + p.numel()].view_as(p))
            p.grad = self.grad_views[-1]
            start += p.numel()
        self.betas, self.eps, self.steps = betas, eps, 0
        self.exp_avg = torch.zeros_like(self.flat)
        self.exp_avg_sq = torch.zeros_like(self.flat)

    def zero_grad(self) -> None:
        self.grad.zero_()

    @torch.no_grad()
    def gradients(self) -> list[Tensor]:
        """Every parameter's gradient (views of the buffer; a ``.grad`` set outside it is
        copied in)."""
        for p, view in zip(self.params, self.grad_views, strict=True):
            if p.grad is None:
                view.zero_()
            elif p.grad.data_ptr() != view.data_ptr():
                view.copy_(p.grad)
            p.grad = view
        return self.grad_views

    @torch.no_grad()
    def step(self) -> None:
        """One Adam update of every parameter from its ``.grad``."""
        beta1, beta2 = self.betas
        self.steps += 1
        correction1 = 1 - beta1**self.steps
        correction2_sqrt = math.sqrt(1 - beta2**self.steps)
        self.gradients()
        grad = self.grad
        self.exp_avg.lerp_(grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (self.exp_avg_sq.sqrt() / correction2_sqrt).add_(self.eps)
        self.flat.sub_(self.exp_avg / denom * (self.lr / correction1))

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = state["steps"]
        self.exp_avg.copy_(state["exp_avg"])
        self.exp_avg_sq.copy_(state["exp_avg_sq"])


def _initial_states(spec: JobSpec, sources: list[str]) -> dict[str, Tensor]:
    """Final weights of the source runs with the same seeds (transfer)."""
    snaps = load_snapshots(sources)
    index = {int(s): i for i, s in enumerate(snaps["seeds"])}
    missing = sorted(set(spec.seeds) - set(index))
    if missing:
        raise TrainmapError(f"sandbox init_from {spec.init_from!r}: no run with seeds {missing}")
    rows = [index[s] for s in spec.seeds]
    names = ("token", "position", "query", "value", "receptors", "biases", "assemblers")
    return {n: torch.as_tensor(snaps[n][-1][rows]) for n in names}


def _layer_indicator(model: Sandbox) -> Tensor:
    """(parameters, layers) 0/1 matrix: which layer each parameter belongs to."""
    layer = {n: i for i, names in enumerate(LAYERS.values()) for n in names}
    rows = torch.tensor([layer[n] for n, _ in model.named_parameters()])
    return F.one_hot(rows, len(LAYERS)).float()


class Trainer:
    """Train the members of one job.

    Args:
        spec: the job (what to train).
        device: ``auto``, ``cpu`` or ``cuda``.
        init_from: weight snapshot files of the source job(s) when ``spec.init_from``.
        eval_chunk: sequences per forward pass when evaluating; ``None``: as many as keep
            the MLP activations of all members near 2**21 numbers (cache-sized).
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
        data = [
            make_data(self.task, spec.n, spec.n_test, s, spec.disjoint_test) for s in spec.seeds
        ]
        self.overlap = np.array([overlap(d[0], d[2], spec.p) for d in data])
        self.x_train, self.y_train, self.x_test, self.y_test = (
            torch.as_tensor(np.stack([d[i] for d in data]), device=self.device) for i in range(4)
        )
        # Sequences on the last axis (M, L, n): the layout the model computes in.
        self.train_slots, self.test_slots = (
            self.model.slots(x).transpose(1, 2).contiguous() for x in (self.x_train, self.x_test)
        )
        lr = torch.tensor(spec.lr, dtype=torch.float64)
        mlp_lr = lr / torch.tensor(spec.mlp_discount, dtype=torch.float64)
        params = dict(self.model.named_parameters())
        self.optimizer = BatchedAdam(
            params, {n: mlp_lr if n in MLP_PARAMS else lr for n in params}, spec.betas
        )
        self.layer_of = _layer_indicator(self.model).to(self.device)
        self.shuffles = [np.random.default_rng([s, SHUFFLE_STREAM]) for s in spec.seeds]
        self.epoch = 0
        self.rows: list[pd.DataFrame] = []
        self.snapshots: dict[int, dict[str, np.ndarray]] = {}

    @property
    def batch_size(self) -> int:
        return self.spec.batch_size if self.spec.batch_size > 0 else self.spec.n

    @torch.no_grad()
    def evaluate(self, slots: Tensor, y: Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Mean loss and accuracy of every member on its sequences ``slots`` (M, L, B).

        Chunks are small so that the intermediates stay in cache: the passes are
        memory-bound and a cache-sized chunk makes them several times faster.
        """
        loss = torch.zeros(self.model.members, dtype=torch.float64, device=self.device)
        correct = torch.zeros_like(loss)
        size = slots.shape[2]
        for i in range(0, size, self.eval_chunk):
            xb, yb = slots[:, :, i : i + self.eval_chunk], y[:, i : i + self.eval_chunk]
            logits = self.model.logits(xb, self.spec.p)
            loss += F.cross_entropy(logits, yb, reduction="none").sum(1).double()
            # argmax over a short non-contiguous axis is slow; over the contiguous one it is not.
            predicted = logits.transpose(1, 2).contiguous().argmax(-1)
            correct += (predicted == yb).sum(1).double()
        return (loss / size).cpu().numpy(), (correct / size).cpu().numpy()

    def train_epoch(self) -> dict[str, np.ndarray]:
        """One pass over every member's training set; mean per-layer gradient norms."""
        spec, model = self.spec, self.model
        order = np.stack([rng.permutation(spec.n) for rng in self.shuffles])
        order = torch.as_tensor(order, device=self.device)
        slots = self.train_slots.gather(2, order[:, None].expand(-1, spec.seq_len, -1))
        labels = self.y_train.gather(1, order)
        norms = torch.zeros(model.members, len(LAYERS), device=self.device)
        steps = 0
        for i in range(0, spec.n, self.batch_size):
            xb, yb = slots[:, :, i : i + self.batch_size], labels[:, i : i + self.batch_size]
            logits = model.logits(xb, spec.p)
            loss = F.cross_entropy(logits, yb, reduction="none").mean(1)
            self.optimizer.zero_grad()
            loss.sum().backward()
            with torch.no_grad():
                squares = torch.stack(
                    [g.flatten(1).square().sum(1) for g in self.optimizer.gradients()]
                )
                norms += (squares.T @ self.layer_of).sqrt()
            self.optimizer.step()
            steps += 1
        norms = (norms / steps).cpu().numpy()
        return {f"grad_{layer}": norms[:, i] for i, layer in enumerate(LAYERS)}

    def record(self, grads: dict[str, np.ndarray] | None) -> None:
        """Log this epoch's losses/accuracies (and snapshot weights when due)."""
        spec = self.spec
        train_loss, train_acc = self.evaluate(self.train_slots, self.y_train)
        test_loss, test_acc = self.evaluate(self.test_slots, self.y_test)
        nan = np.full(self.model.members, np.nan)
        frame = pd.DataFrame(
            {
                "member": np.arange(self.model.members),
                "seed": spec.seeds,
                "lr": spec.lr,
                "mlp_discount": spec.mlp_discount,
                "epoch": self.epoch,
                "train_loss": train_loss,
                "train_acc": train_acc,
                "test_loss": test_loss,
                "test_acc": test_acc,
                **{f"grad_{layer}": (grads or {}).get(f"grad_{layer}", nan) for layer in LAYERS},
            }
        )
        frame["diverged"] = ~np.isfinite(train_loss)
        self.rows.append(frame)
        every = spec.snapshot_every
        if self.epoch in (0, spec.epochs) or (every and self.epoch % every == 0):
            self.snapshots[self.epoch] = {
                n: p.detach().cpu().numpy().copy() for n, p in self.model.named_parameters()
            }

    def state(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "shuffles": [rng.bit_generator.state for rng in self.shuffles],
            "rows": self.rows,
            "snapshots": self.snapshots,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.epoch = state["epoch"]
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        for rng, bits in zip(self.shuffles, state["shuffles"], strict=True):
            rng.bit_generator.state = bits
        self.rows, self.snapshots = state["rows"], state["snapshots"]

    def fit(self, state_path: str | Path | None = None, save_every_s: float = 60.0) -> None:
        """Train all epochs; with ``state_path``, resume from it and save to it periodically."""
        if state_path and Path(state_path).exists():
            self.load_state(torch.load(state_path, weights_only=False))
            log.info("resumed at epoch %d from %s", self.epoch, state_path)
        if not self.rows:
            self.record(None)
            log.info(
                "%d members, train/test overlap %.3f (mean)",
                self.model.members,
                self.overlap.mean(),
            )
        start, start_epoch, last_save = time.perf_counter(), self.epoch, time.perf_counter()
        report_every = max(1, self.spec.epochs // 10)
        while self.epoch < self.spec.epochs:
            grads = self.train_epoch()
            self.epoch += 1
            self.record(grads)
            now = time.perf_counter()
            if self.epoch % report_every == 0 or self.epoch == self.spec.epochs:
                last = self.rows[-1]
                rate = self.model.members * (self.epoch - start_epoch) / (now - start)
                log.info(
                    "epoch %d/%d train loss %.4f test acc %.3f (mean) %.0f runs*epochs/s",
                    self.epoch,
                    self.spec.epochs,
                    last.train_loss.mean(),
                    last.test_acc.mean(),
                    rate,
                )
            if state_path and now - last_save > save_every_s:
                tmp = Path(f"{state_path}.tmp")
                torch.save(self.state(), tmp)
                os.replace(tmp, state_path)
                last_save = now

    def history(self) -> pd.DataFrame:
        """The per-epoch log of every member (one row per member and epoch)."""
        frame = pd.concat(self.rows, ignore_index=True)
        frame["overlap"] = self.overlap[frame["member"].to_numpy()]
        for key in (
            "seq_len",
            "k",
            "p",
            "n",
            "n_test",
            "disjoint_test",
            "d",
            "hidden",
            "batch_size",
        ):
            frame[key] = getattr(self.spec, key)
        frame["diverged"] = frame.groupby("member")["diverged"].cummax()
        return frame.sort_values(["member", "epoch"], ignore_index=True)

    def save(self, log_path: str | Path, weights_path: str | Path) -> None:
        """Write the log (Parquet) and the weight snapshots (npz, arrays (E, M, ...))."""
        with atomic_output(log_path) as tmp:
            self.history().to_parquet(tmp, index=False)
        epochs = sorted(self.snapshots)
        names = self.snapshots[epochs[0]].keys()
        with atomic_output(weights_path) as tmp:
            np.savez_compressed(
                tmp,
                epochs=np.array(epochs),
                seeds=np.array(self.spec.seeds),
                lr=np.array(self.spec.lr),
                mlp_discount=np.array(self.spec.mlp_discount),
                **{n: np.stack([self.snapshots[e][n] for e in epochs]) for n in names},
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
