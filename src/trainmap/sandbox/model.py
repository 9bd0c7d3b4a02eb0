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

#: Parameter names, and the layer each belongs to (gradient norms are logged per layer).
LAYERS: dict[str, tuple[str, ...]] = {
    "token": ("token",),
    "position": ("position",),
    "attention": ("query", "value"),
    "mlp": ("receptors", "biases", "assemblers"),
}
MLP_PARAMS = LAYERS["mlp"]
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

    def embed(self, x: Tensor) -> Tensor:
        """Normalised embeddings z (M, B, L, d) of token ids ``x`` (M, B, L)."""
        members, batch, length = x.shape
        onehot = F.one_hot(x.reshape(members, -1), self.shape.vocab).to(self.token.dtype)
        tokens = torch.bmm(onehot, self.token).view(members, batch, length, -1)
        return normalize(tokens + self.position[:, None])

    def trace(self, x: Tensor, p: int) -> dict[str, Tensor]:
        """Every intermediate of the forward pass (what the frames draw).

        Args:
            x: token ids (M, B, L).
            p: number of classes; logits use the first p token embeddings.

        Returns:
            ``z`` (M,B,L,d), ``attention`` (M,B,L), ``xi`` and ``zeta`` (M,B,d),
            ``activations`` (M,B,h) and ``logits`` (M,B,p).
        """
        z = self.embed(x)
        members, batch, length, d = z.shape
        scores = torch.bmm(z.view(members, -1, d), self.query[:, :, None]) / math.sqrt(d)
        attention = scores.view(members, batch, length).softmax(-1)
        pooled = torch.matmul(attention[:, :, None], z).view(members, batch, d)
        xi = torch.bmm(pooled, self.value.transpose(1, 2))
        mlp = self.mlp(xi)
        return {"z": z, "attention": attention, "xi": xi, **mlp, **self.decode(mlp["zeta"], p)}

    def mlp(self, xi: Tensor) -> dict[str, Tensor]:
        """MLP with pre-norm and residual: ``activations`` (M,B,h) and ``zeta`` (M,B,d)."""
        pre = torch.baddbmm(self.biases[:, None], normalize(xi), self.receptors.transpose(1, 2))
        activations = F.gelu(pre)
        zeta = torch.baddbmm(xi, activations, self.assemblers)
        return {"activations": activations, "zeta": zeta}

    def decode(self, zeta: Tensor, p: int) -> dict[str, Tensor]:
        """Logits (M,B,p): alignment of zeta with the first p token embeddings."""
        return {"logits": torch.bmm(zeta, self.token[:, :p].transpose(1, 2))}

    def forward(self, x: Tensor, p: int) -> Tensor:
        """Logits (M, B, p) of token ids ``x`` (M, B, L)."""
        return self.trace(x, p)["logits"]

    def member_state(self, m: int) -> dict[str, Tensor]:
        """Parameters of member ``m`` (detached copies)."""
        return {name: param[m].detach().clone() for name, param in self.named_parameters()}

    def load_members(self, states: dict[str, Tensor]) -> None:
        """Overwrite the parameters with stacked tensors ``states[name]`` (M, ...)."""
        with torch.no_grad():
            for name, param in self.named_parameters():
                param.copy_(torch.as_tensor(states[name], dtype=param.dtype))
