"""The models of the algorithmic settings: a one-layer transformer and an MLP.

Plain ``nn.Module`` code for one seed; the trainer batches seeds with
``torch.func.vmap`` over stacked parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Attention(nn.Module):
    """Causal multi-head self-attention without biases (Nanda et al. 2023)."""

    def __init__(self, d_model: int, n_heads: int, d_head: int) -> None:
        super().__init__()
        self.n_heads, self.d_head = n_heads, d_head
        self.query = nn.Linear(d_model, n_heads * d_head, bias=False)
        self.key = nn.Linear(d_model, n_heads * d_head, bias=False)
        self.value = nn.Linear(d_model, n_heads * d_head, bias=False)
        self.out = nn.Linear(n_heads * d_head, d_model, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """Attention output ``(B, d_model)`` at the last position of ``x`` ``(B, T, d_model)``.

        In a one-layer model only the last position (the ``=`` token) feeds the
        logits, and it may attend to every position, so this is exactly the
        causal attention's last row.
        """
        batch, length, _ = x.shape
        q = self.query(x[:, -1]).view(batch, 1, self.n_heads, self.d_head)
        k = self.key(x).view(batch, length, self.n_heads, self.d_head)
        v = self.value(x).view(batch, length, self.n_heads, self.d_head)
        # Elementwise products, not matmuls: with T = 3 tiny matmuls cost more than they do.
        weights = torch.softmax((q * k).sum(-1) / self.d_head**0.5, dim=1)  # (B, T, H)
        return self.out((weights.unsqueeze(-1) * v).sum(1).reshape(batch, -1))


class OneLayerTransformer(nn.Module):
    """Token + position embedding, one attention + ReLU-MLP block, unembedding.

    The modular-addition model of Nanda et al. (2023) and Hu et al. (2023),
    table 6. Returns the logits at the last position, ``(B, vocab_out)``.

    ``layer_norm=False`` (default setting): no LayerNorm. ``layer_norm=True``
    (the stabilized setting) with ``norm_position="post"`` is the authors'
    block, ``x = ln1(x + attn(x)); x = ln2(x + mlp(x))`` with no final
    LayerNorm; ``"pre"`` puts LayerNorms before attention, MLP and unembedding
    (GPT-2 style).

    ``init="authors"`` (Nanda et al.'s and Hu et al.'s code): attention and MLP
    weights N(0, 1/d_model), MLP biases zero, unembedding N(0, 1/vocab) (their
    output vocabulary includes the ``=`` token). ``"pytorch"``: ``nn.Linear``
    defaults (uniform, non-zero biases). Embeddings are N(0, 1/d_model) in both.
    """

    def __init__(
        self,
        vocab: int,
        context: int,
        vocab_out: int,
        d_model: int,
        n_heads: int,
        d_head: int,
        d_mlp: int,
        layer_norm: bool,
        norm_position: str = "post",
        init: str = "authors",
    ) -> None:
        super().__init__()
        if norm_position not in ("post", "pre"):
            raise ValueError(f"norm_position must be 'post' or 'pre', not {norm_position!r}")
        if init not in ("authors", "pytorch"):
            raise ValueError(f"init must be 'authors' or 'pytorch', not {init!r}")
        self.pre_norm = norm_position == "pre"
        self.embed = nn.Embedding(vocab, d_model)
        nn.init.normal_(self.embed.weight, std=d_model**-0.5)  # as Nanda et al., not N(0, 1)
        self.pos_embed = nn.Parameter(torch.randn(context, d_model) / d_model**0.5)
        norm = (lambda: nn.LayerNorm(d_model)) if layer_norm else nn.Identity
        self.ln1, self.ln2 = norm(), norm()
        self.ln_final = norm() if self.pre_norm else nn.Identity()
        self.attn = Attention(d_model, n_heads, d_head)
        self.mlp_in = nn.Linear(d_model, d_mlp)
        self.mlp_out = nn.Linear(d_mlp, d_model)
        self.unembed = nn.Linear(d_model, vocab_out, bias=False)
        if init == "authors":
            attn = self.attn
            for layer in (attn.query, attn.key, attn.value, attn.out, self.mlp_in, self.mlp_out):
                nn.init.normal_(layer.weight, std=d_model**-0.5)
            nn.init.zeros_(self.mlp_in.bias)
            nn.init.zeros_(self.mlp_out.bias)
            nn.init.normal_(self.unembed.weight, std=vocab**-0.5)

    def forward(self, tokens: Tensor) -> Tensor:
        x = self.embed(tokens) + self.pos_embed
        if self.pre_norm:
            h = x[:, -1] + self.attn(self.ln1(x))
            h = h + self.mlp_out(F.relu(self.mlp_in(self.ln2(h))))
            return self.unembed(self.ln_final(h))
        h = self.ln1(x[:, -1] + self.attn(x))
        h = self.ln2(h + self.mlp_out(F.relu(self.mlp_in(h))))
        return self.unembed(h)


class MLP(nn.Module):
    """Input → ReLU hidden layers → class logits."""

    def __init__(self, d_in: int, hidden: list[int], n_classes: int) -> None:
        super().__init__()
        widths = [d_in, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(1))
