"""The member-batched training engine that both trainers run on.

A job trains ``M`` *members* (runs) as one batched model: a member is one seed with
its own hyperparameter values among those that keep the parameter shapes (learning
rate, weight decay, a per-parameter learning-rate factor such as the sandbox's MLP
discount). Members never interact, so each follows the trajectory it would follow
alone. The engine holds everything that does not depend on the model:

* :func:`resolve_device`: the device of a job;
* :class:`MemberOptimizer`: Adam, AdamW or SGD with per-member hyperparameters, on one
  flat parameter buffer;
* :class:`Divergence`: which members are still finite;
* :class:`Resume`: the job's state on disk, atomically, checked against a fingerprint
  of what determines the training;
* :class:`Engine`: the loop (step, checkpoint, progress log, resume) over a
  :class:`MemberJob`, the part a trainer writes: its model, data, evaluation and what
  it records.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor
from torch.optim.adam import adam
from torch.optim.adamw import adamw
from torch.optim.sgd import sgd

from trainmap import fingerprints
from trainmap.errors import TrainmapError
from trainmap.tables import atomic_output

log = logging.getLogger(__name__)

#: Changes whenever the layout of the resume state changes, so that an old state is ignored.
STATE_VERSION = 3

#: The optimisers a config may name.
OPTIMIZERS = ("adam", "adamw", "sgd")


def resolve_device(device: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without CUDA is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise TrainmapError("config key 'device' is 'cuda' but no CUDA device is available")
    return torch.device(device)


def member_values(values: Tensor, like: Tensor) -> Tensor:
    """Per-member ``values`` (M,) shaped to broadcast over a stacked parameter (M, ...)."""
    return values.view(-1, *[1] * (like.dim() - 1))


class MemberOptimizer:
    """Adam, AdamW or SGD with a learning rate and weight decay per member and parameter.

    The parameters are moved into one flat buffer (each a contiguous block of it) and
    their gradients into another; :meth:`zero_grad` clears the gradient buffer in place
    and backward accumulates into it. When every member and parameter has the same
    hyperparameters, a step is torch's own fused optimiser on that one buffer (one
    kernel). Otherwise the hyperparameters are tensors broadcast over the buffer and the
    update is torch's single-tensor formula of the same optimiser, a handful of kernels
    whatever the number of parameters and members: torch takes a tensor learning rate
    only as one number, and parameter groups of one member slice each would cost a
    kernel call per member and step. ``tests/test_engine.py`` checks both step by step
    against one torch optimiser per member.

    Parameters
    ----------
    params
        The parameters (stacked over members, or one model's each).
    lr, weight_decay
        One tensor per parameter, broadcastable to it (:func:`member_values` for a
        stacked parameter, a number for one member's).
    name
        ``adam`` (weight decay added to the gradient), ``adamw`` (decoupled weight
        decay) or ``sgd``.
    betas, eps
        Adam's.
    momentum
        SGD's (no dampening, no Nesterov).
    """

    def __init__(
        self,
        params: Sequence[Tensor],
        lr: Sequence[Tensor | float],
        weight_decay: Sequence[Tensor | float],
        name: str = "adam",
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        momentum: float = 0.0,
    ) -> None:
        if name not in OPTIMIZERS:
            raise TrainmapError(f"config key 'optimizer.name': unknown optimizer {name!r}")
        self.name, self.betas, self.eps, self.momentum = name, tuple(betas), eps, momentum
        self.params = list(params)
        self.flat = torch.cat([p.detach().flatten() for p in self.params])
        self.grad = torch.zeros_like(self.flat)
        self.grad_views: list[Tensor] = []
        start = 0
        for p in self.params:
            p.data = self.flat[start : start + p.numel()].view_as(p)
            self.grad_views.append(self.grad[start : start + p.numel()].view_as(p))
            p.grad = self.grad_views[-1]
            start += p.numel()
        self.steps = 0
        rate, decay = self._spread(lr), self._spread(weight_decay)
        self.shared = bool((rate == rate[0]).all() and (decay == decay[0]).all())
        buffers = ("momentum",) if name == "sgd" else ("exp_avg", "exp_avg_sq")
        self.buffers = {b: torch.zeros_like(self.flat) for b in buffers}
        if self.shared:
            self.lr, self.decay = float(rate[0]), float(decay[0])
            # torch's fused kernels count steps in a float tensor of their own.
            self.step_count = torch.zeros((), dtype=torch.float32, device=self.flat.device)
            return
        if name == "adamw":
            decay = 1 - rate * decay  # the factor applied to the weights
        neutral = 1.0 if name == "adamw" else 0.0
        self.lr = rate.to(self.flat)
        self.decay = decay.to(self.flat) if bool((decay != neutral).any()) else None
        self.scratch = (torch.empty_like(self.flat), torch.empty_like(self.flat))

    def _spread(self, values: Sequence[Tensor | float]) -> Tensor:
        """One float64 value per parameter element, in the order of the flat buffer."""
        parts = [
            torch.as_tensor(v, dtype=torch.float64, device=self.flat.device).expand(p.shape)
            for v, p in zip(values, self.params, strict=True)
        ]
        return torch.cat([part.flatten() for part in parts])

    def zero_grad(self) -> None:
        self.grad.zero_()

    @torch.no_grad()
    def gradients(self) -> list[Tensor]:
        """Every parameter's gradient (views of the buffer; a ``.grad`` set outside it
        is copied in)."""
        for p, view in zip(self.params, self.grad_views, strict=True):
            if p.grad is None:
                view.zero_()
            elif p.grad.data_ptr() != view.data_ptr():
                view.copy_(p.grad)
            p.grad = view
        return self.grad_views

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter from its ``.grad``."""
        self.steps += 1
        self.gradients()
        if self.shared:
            self._fused_step()
            return
        grad = self.grad
        work, rate = self.scratch
        if self.decay is not None and self.name != "adamw":
            grad = torch.addcmul(grad, self.decay, self.flat, out=rate)
        if self.name == "sgd":
            if self.momentum:
                buffer = self.buffers["momentum"]
                if self.steps == 1:
                    buffer.copy_(grad)
                else:
                    buffer.mul_(self.momentum).add_(grad)
                grad = buffer
            self.flat.addcmul_(grad, self.lr, value=-1)
            return
        if self.decay is not None and self.name == "adamw":
            self.flat.mul_(self.decay)
        beta1, beta2 = self.betas
        exp_avg, exp_avg_sq = self.buffers["exp_avg"], self.buffers["exp_avg_sq"]
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        # In place, into two scratch buffers: fresh temporaries of a large buffer cost
        # more than the arithmetic.
        denom = torch.sqrt(exp_avg_sq, out=work).div_(math.sqrt(1 - beta2**self.steps))
        ratio = torch.div(exp_avg, denom.add_(self.eps), out=work)
        self.flat.sub_(ratio.mul_(torch.div(self.lr, 1 - beta1**self.steps, out=rate)))

    def _fused_step(self) -> None:
        """torch's own fused optimiser on the flat buffer, through its functional API.

        The functional API runs the same kernel as ``torch.optim.Adam(..., fused=True)``
        without constructing an ``Optimizer``, whose first construction in a process
        imports torch's compiler stack (about a second per training job).
        """
        if self.name == "sgd":
            # A None buffer on the first step makes the kernel start it from the gradient.
            first = self.steps == 1 and bool(self.momentum)
            momentum = [None if first else self.buffers["momentum"]]
            sgd(
                [self.flat], [self.grad], momentum, fused=True, weight_decay=self.decay,
                momentum=self.momentum, lr=self.lr, dampening=0.0, nesterov=False,
                maximize=False,
            )  # fmt: skip
            if first:
                self.buffers["momentum"] = momentum[0]
            return
        update = adamw if self.name == "adamw" else adam
        beta1, beta2 = self.betas
        update(
            [self.flat], [self.grad], [self.buffers["exp_avg"]], [self.buffers["exp_avg_sq"]],
            [], [self.step_count], fused=True, amsgrad=False, beta1=beta1, beta2=beta2,
            lr=self.lr, weight_decay=self.decay, eps=self.eps, maximize=False,
        )  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, **self.buffers}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = state["steps"]
        for name, buffer in self.buffers.items():
            buffer.copy_(state[name])
        if self.shared:
            self.step_count.fill_(self.steps)


class Divergence:
    """Which members are still finite.

    A member diverges at the first checkpoint where one of its weights or evaluation
    losses, or the loss of any training step so far, is NaN or infinite.
    """

    def __init__(self, members: int, device: torch.device) -> None:
        self.alive = torch.ones(members, dtype=torch.bool)  # no diverged checkpoint yet
        self.bad = torch.zeros(members, dtype=torch.bool, device=device)  # a step loss was not

    def observe(self, losses: Tensor) -> None:
        """Note the step losses (M,)."""
        self.bad |= ~losses.detach().isfinite()

    @torch.no_grad()
    def finite(self, params: Iterable[Tensor], *values: Tensor) -> Tensor:
        """Members (M,) whose stacked ``params`` (M, ...) and ``values`` (M, ...) are all
        finite and whose step losses were."""
        ok = ~self.bad
        for tensor in (*params, *values):
            ok = ok & tensor.flatten(1).isfinite().all(1)
        return ok.cpu()

    def settle(self, finite: Tensor) -> Tensor:
        """Record a checkpoint's ``finite`` mask; return the members that diverged at it."""
        newly = self.alive & ~finite
        self.alive &= finite
        return newly

    def state_dict(self) -> dict[str, Tensor]:
        return {"alive": self.alive.clone(), "bad": self.bad.cpu()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.alive.copy_(state["alive"])
        self.bad.copy_(state["bad"])


def fingerprint(what: Any) -> str:
    """A hash of ``what`` (JSON-able: what determines a job's training) and the state's layout."""
    return fingerprints.fingerprint({"state": STATE_VERSION, "what": what})


class Resume:
    """A job's training state on disk.

    Parameters
    ----------
    path
        The state file; ``None``: nothing is saved or resumed.
    fingerprint
        Of what determines the training (:func:`fingerprint`); a state saved under
        another is ignored.
    every, every_s
        Save at a checkpoint once ``every`` checkpoints and ``every_s`` seconds have
        passed since the last save.
    """

    def __init__(
        self, path: str | Path | None, fingerprint: str, every: int = 1, every_s: float = 0.0
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.fingerprint, self.every, self.every_s = fingerprint, every, every_s
        self.last_save = time.monotonic()

    def load(self, device: torch.device, name: str) -> dict[str, Any] | None:
        """The saved state, if there is one of this fingerprint."""
        if self.path is None or not self.path.exists():
            return None
        state = torch.load(self.path, map_location=device, weights_only=True)
        if state.get("fingerprint") != self.fingerprint:
            log.warning("%s: ignoring %s, saved with another config", name, self.path)
            return None
        log.info("%s: resumed from %s at step %d", name, self.path, state["step"])
        return state

    def due(self, n_checkpoints: int) -> bool:
        waited = time.monotonic() - self.last_save >= self.every_s
        return self.path is not None and n_checkpoints % self.every == 0 and waited

    def save(self, state: dict[str, Any]) -> None:
        """Write ``state`` atomically (a kill while writing keeps the previous one)."""
        assert self.path is not None
        with atomic_output(self.path) as tmp:
            torch.save({"fingerprint": self.fingerprint, **state}, tmp)
        self.last_save = time.monotonic()


class MemberJob(Protocol):
    """What a trainer gives the engine: its members' model, data, evaluation and records."""

    #: Training steps of the whole job, and per epoch.
    total_steps: int
    steps_per_epoch: int

    def losses(self, step: int) -> Tensor:
        """The mean loss (M,) of every member on its batch of training step ``step``."""

    def after_backward(self, gradients: list[Tensor]) -> None:
        """Look at the step's gradients (views of the optimiser's buffer) before the update."""

    def is_checkpoint(self, step: int) -> bool:
        """Whether to checkpoint once ``step`` steps are done."""

    def checkpoint(self, step: int, divergence: Divergence) -> None:
        """Evaluate and record every member after ``step`` steps; settle ``divergence``."""

    def summary(self) -> str:
        """One line on the last checkpoint, for the progress log."""

    def state_dict(self) -> dict[str, Any]:
        """The job's own part of the resume state (weights, data streams, records)."""

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class Engine:
    """Trains a :class:`MemberJob`'s members with one optimiser, resumably.

    Parameters
    ----------
    optimizer
        Over the job's parameters.
    members
        ``M``.
    device
        Where the job's tensors live.
    name
        For the log.
    log_every_s
        Seconds between progress lines (and one at the end).
    stop_when_all_diverged
        End early once every member has diverged (when nothing more is recorded).
    """

    def __init__(
        self,
        optimizer: MemberOptimizer,
        members: int,
        device: torch.device,
        name: str = "job",
        log_every_s: float = 10.0,
        stop_when_all_diverged: bool = True,
    ) -> None:
        self.optimizer, self.members, self.name = optimizer, members, name
        self.divergence = Divergence(members, device)
        self.device, self.log_every_s = device, log_every_s
        self.stop_when_all_diverged = stop_when_all_diverged
        self.step, self.n_checkpoints = 0, 0

    def state_dict(self, job: MemberJob) -> dict[str, Any]:
        return {
            "step": self.step,
            "n_checkpoints": self.n_checkpoints,
            "optimizer": self.optimizer.state_dict(),
            "divergence": self.divergence.state_dict(),
            "job": job.state_dict(),
        }

    def load_state_dict(self, job: MemberJob, state: dict[str, Any]) -> None:
        self.step, self.n_checkpoints = state["step"], state["n_checkpoints"]
        self.optimizer.load_state_dict(state["optimizer"])
        self.divergence.load_state_dict(state["divergence"])
        job.load_state_dict(state["job"])

    def fit(self, job: MemberJob, resume: Resume | None = None) -> None:
        """Train ``job`` to its last step: checkpoint at step 0 (unless resumed) and
        whenever the job says so, saving to ``resume`` when it is due."""
        state = resume.load(self.device, self.name) if resume is not None else None
        if state is not None:
            self.load_state_dict(job, state)
        else:
            job.checkpoint(0, self.divergence)
        optimizer, divergence = self.optimizer, self.divergence
        started, start_step, last_log = time.monotonic(), self.step, -math.inf
        while self.step < job.total_steps:
            if self.stop_when_all_diverged and not divergence.alive.any():
                break
            losses = job.losses(self.step)
            optimizer.zero_grad()
            losses.sum().backward()
            job.after_backward(optimizer.gradients())
            optimizer.step()
            divergence.observe(losses)
            self.step += 1
            if not job.is_checkpoint(self.step):
                continue
            job.checkpoint(self.step, divergence)
            self.n_checkpoints += 1
            now = time.monotonic()
            if now - last_log >= self.log_every_s or self.step == job.total_steps:
                last_log = now
                epochs = (self.step - start_step) / job.steps_per_epoch
                log.info(
                    "%s: epoch %.0f/%.0f, %s, %d of %d members finite, %.1f run-epochs/s",
                    self.name,
                    self.step / job.steps_per_epoch,
                    job.total_steps / job.steps_per_epoch,
                    job.summary(),
                    int(divergence.alive.sum()),
                    self.members,
                    self.members * epochs / max(now - started, 1e-9),
                )
            if resume is not None and resume.due(self.n_checkpoints):
                resume.save(self.state_dict(job))
