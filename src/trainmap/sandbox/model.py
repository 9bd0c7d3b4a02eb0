"""The one-layer transformer of the visual sandbox, batched over independent members.

Every parameter has a leading member dimension M: member m is one run (one seed,
one learning rate, ...). Members never interact, so M runs train in one set of
kernel calls. For a sequence x of L tokens::

    z_t  = (E[x_t] + P[t]) / ||E[x_t] + P[t]||        RMS-normalised embedding, no gain
    a    = softmax(z q / sqrt(d))                     single query vector, no key matrix
    xi   = V sum_t a_t z_t                            value matrix, no residual
    zeta = xi + sum_i GELU(w_i . xi/||xi|| + b_i) u_i MLP with pre-norm and residual
    logits_y = E[y] . zeta,  y < p                    output tied to the token embeddings

Initialisation follows PyTorch defaults: embeddings N(0, 1) (``nn.Embedding``), V,
receptors w and biases b as ``nn.Linear(d, .)`` (U(-1/sqrt(d), 1/sqrt(d))), assemblers
u as ``nn.Linear(h, d)`` (U(-1/sqrt(h), 1/sqrt(h))); the query vector is N(0, 1).
Each member draws from its own generator seeded by its seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

EPS = 1e-12


@dataclass(frozen=True)
class Shape:
    """What fixes the parameter shapes: length L, vocabulary, width d, hidden neurons h."""

    seq_len: int = 12
    vocab: int = 3
    d: int = 2
    hidden: int = 32


def init_member(shape: Shape, seed: int) -> dict[str, Tensor]:
    """Initial parameters of one run, drawn from a generator seeded by ``seed``."""
    g = torch.Generator().manual_seed(seed)
    d, h = shape.d, shape.hidden

    def uniform(bound: float, *size: int) -> Tensor:
        return (torch.rand(*size, generator=g) * 2 - 1) * bound

    return {
        "token": torch.randn(shape.vocab, d, generator=g),
        "position": torch.randn(shape.seq_len, d, generator=g),
        "query": torch.randn(d, generator=g),
        "value": uniform(1 / math.sqrt(d), d, d),
        "receptors": uniform(1 / math.sqrt(d), h, d),
        "biases": uniform(1 / math.sqrt(d), h),
        "assemblers": uniform(1 / math.sqrt(h), h, d),
    }


def normalize(x: Tensor) -> Tensor:
    """x / ||x|| over the last axis (the paper's RMS-norm without gain)."""
    return x * torch.rsqrt(x.square().sum(-1, keepdim=True) + EPS)


class Sandbox(nn.Module):
    """M independent sandbox transformers, parameters stacked on a leading member axis.

    Args:
        shape: the parameter shapes.
        seeds: one seed per member (its initialisation).
    """

    def __init__(self, shape: Shape, seeds: list[int]) -> None:
        super().__init__()
        self.shape = shape
        members = [init_member(shape, s) for s in seeds]
        for name in members[0]:
            self.register_parameter(name, nn.Parameter(torch.stack([m[name] for m in members])))

    @property
    def members(self) -> int:
        return self.token.shape[0]

    def slots(self, x: Tensor) -> Tensor:
        """Row ``t * vocab + x_t`` of the (position, token) tables for token ids ``x`` (..., L)."""
        return x + self.shape.vocab * torch.arange(x.shape[-1], device=x.device)

    def tables(self) -> tuple[Tensor, Tensor]:
        """Normalised embedding z (M, d, L*vocab) and attention score (M, L*vocab) of every
        (position, token) pair.

        A sequence only selects L of these columns, so the embedding and the scores are
        computed once per step for all sequences rather than once per token.
        """
        members, d = self.members, self.shape.d
        z = normalize(self.position[:, :, None] + self.token[:, None]).view(members, -1, d)
        scores = torch.bmm(z, self.query[:, :, None]).view(members, -1) / math.sqrt(d)
        return z.transpose(1, 2), scores

    def attend(self, slots: Tensor) -> dict[str, Tensor]:
        """``attention`` (M,L,B) and sequence embeddings ``xi`` (M,d,B) of ``slots`` (M,L,B).

        Sequences are the last axis throughout: every reduction (softmax over positions,
        norms over d) then runs over a short strided axis while the vectorised inner loop
        runs over the batch, which is many times faster than reducing 12 or 2 contiguous
        numbers per sequence.
        """
        members, length, batch = slots.shape
        z, scores = self.tables()
        flat = slots.reshape(members, 1, -1)
        attention = scores[:, None].gather(2, flat).view(members, length, batch).softmax(1)
        zs = z.gather(2, flat.expand(-1, self.shape.d, -1)).view(members, -1, length, batch)
        pooled = (attention[:, None] * zs).sum(2)
        return {"attention": attention, "xi": torch.bmm(self.value, pooled)}

    def trace(self, x: Tensor, p: int) -> dict[str, Tensor]:
        """Every intermediate of the forward pass (what the frames draw).

        Args:
            x: token ids (M, B, L).
            p: number of classes; logits use the first p token embeddings.

        Returns:
            ``z`` (M,B,L,d), ``attention`` (M,B,L), ``xi`` and ``zeta`` (M,B,d),
            ``activations`` (M,B,h) and ``logits`` (M,B,p).
        """
        members, batch, length = x.shape
        slots = self.slots(x)
        rows = slots.reshape(members, 1, -1).expand(-1, self.shape.d, -1)
        z = self.tables()[0].gather(2, rows).view(members, -1, batch, length)
        attended = self.attend(slots.transpose(1, 2))
        mlp = self.mlp(attended["xi"])
        columns = {**attended, **mlp, **self.decode(mlp["zeta"], p)}
        return {"z": z.permute(0, 2, 3, 1), **{k: v.transpose(1, 2) for k, v in columns.items()}}

    def mlp(self, xi: Tensor) -> dict[str, Tensor]:
        """MLP with pre-norm and residual: ``activations`` (M,h,B) and ``zeta`` (M,d,B)."""
        unit = xi * torch.rsqrt(xi.square().sum(1, keepdim=True) + EPS)
        activations = F.gelu(torch.baddbmm(self.biases[:, :, None], self.receptors, unit))
        zeta = torch.baddbmm(xi, self.assemblers.transpose(1, 2), activations)
        return {"activations": activations, "zeta": zeta}

    def decode(self, zeta: Tensor, p: int) -> dict[str, Tensor]:
        """Logits (M,p,B): alignment of zeta (M,d,B) with the first p token embeddings."""
        return {"logits": torch.bmm(self.token[:, :p], zeta)}

    def forward(self, x: Tensor, p: int) -> Tensor:
        """Logits (M, B, p) of token ids ``x`` (M, B, L)."""
        return self.logits(self.slots(x).transpose(1, 2), p).transpose(1, 2)

    def logits(self, slots: Tensor, p: int) -> Tensor:
        """Logits (M, p, B) of sequences given as table columns ``slots`` (M, L, B)."""
        xi = self.attend(slots)["xi"]
        return self.decode(self.mlp(xi)["zeta"], p)["logits"]

    def member_state(self, m: int) -> dict[str, Tensor]:
        """Parameters of member ``m`` (detached copies)."""
        return {name: param[m].detach().clone() for name, param in self.named_parameters()}

    def load_members(self, states: dict[str, Tensor]) -> None:
        """Overwrite the parameters with stacked tensors ``states[name]`` (M, ...)."""
        with torch.no_grad():
            for name, param in self.named_parameters():
                param.copy_(torch.as_tensor(states[name], dtype=param.dtype))
