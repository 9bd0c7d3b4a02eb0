"""The 14 weight metrics of Hu et al. (2023), appendix B, batched over seeds.

Every function takes tensors with a leading seed dimension ``S`` and returns
one value per seed, so a batch of seeds is measured in a few batched kernel
calls. Nothing here knows about model classes: the caller picks the matrices
(see :func:`trainmap.training.tasks.Task.metric_tensors`), and the
checkpoint reader calls :func:`weight_metrics` with ``S = 1`` on loaded state
dicts.

Conventions (also in ``config/README.md``):

* **Which matrices.** The caller passes the weight matrices that count:
  embeddings, unembeddings and normalisation layers excluded; attention split
  per head (``W_Q``, ``W_K``, ``W_V`` of each head are separate matrices,
  ``W_O`` is one). :func:`as_matrix` turns any parameter into a matrix: 2-D as
  is, a convolution kernel ``(out, in, kh, kw)`` into ``out × in·kh·kw``.
* **K matrices.** ``l1``, ``l2``, ``l1_over_l2``, ``trace``, ``spectral`` and
  ``trace_over_spectral`` are computed per matrix and averaged over the K
  matrices (L2 = Frobenius norm, spectral = largest singular value).
* **Trace of a non-square matrix.** The sum of its main diagonal,
  ``Σ_{i < min(m, n)} W[i, i]`` (for a square matrix the usual trace).
* **Singular values.** ``singular_values="per_matrix"`` (default, the authors'
  code): ``sv_mean`` and ``sv_var`` are the mean and variance of each matrix's
  singular values (values below :data:`SV_ZERO` set to 0, as the authors'
  code), averaged over the K matrices. ``"pooled"``: the singular values of all
  K matrices as one set (``Σ_k min(m_k, n_k)`` values), which mostly measures
  the scale differences between layers. A 1×n matrix has one singular value and
  variance 0, never a NaN.
* **Variance.** Population variance (no Bessel correction, ``ddof = 0``), as
  in the paper, for ``sv_var``, ``weight_var`` and ``bias_var``.
* **Weights and biases.** ``weight_*`` are over all entries of the K matrices
  concatenated; ``bias_*`` over all bias vectors concatenated. The median of
  an even count is the mean of the two middle values (as ``numpy.median``).
  Without any bias vector the ``bias_*`` metrics are NaN.

Metrics are computed in float64 whatever the parameters' dtype.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from trainmap.tables import METRICS

#: Singular values below this are set to 0 in the per-matrix statistics (the authors' code).
SV_ZERO = 1e-5
#: How ``sv_mean`` and ``sv_var`` combine the matrices (see the module docstring).
SINGULAR_VALUE_MODES = ("per_matrix", "pooled")


def as_matrix(parameter: Tensor, batched: bool = True) -> Tensor:
    """A parameter as a matrix for the spectral metrics.

    With ``batched`` the first dimension is the seed dimension and is kept.
    A 2-D parameter is returned as is; a higher-dimensional one (a convolution
    kernel ``(out, in, kh, kw)``) becomes ``out × in·kh·kw``. A 1-D parameter
    is a bias vector, not a matrix: it is returned unchanged (pass it in the
    ``biases`` list of :func:`weight_metrics`).
    """
    lead = 1 if batched else 0
    if parameter.dim() - lead <= 2:
        return parameter
    return parameter.flatten(start_dim=lead + 1)


def _median(values: Tensor) -> Tensor:
    """Median along the last dimension; the mean of the two middle values for even counts."""
    n = values.shape[-1]
    # Two selections cost less than a full sort.
    low = values.kthvalue((n - 1) // 2 + 1, dim=-1).values
    high = low if n % 2 else values.kthvalue(n // 2 + 1, dim=-1).values
    return (low + high) / 2


def _mean_median_var(values: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    return values.mean(-1), _median(values), values.var(-1, correction=0)


def weight_metrics(
    weights: Sequence[Tensor], biases: Sequence[Tensor], singular_values: str = "per_matrix"
) -> dict[str, Tensor]:
    """The 14 metrics for a batch of ``S`` seeds.

    Parameters
    ----------
    weights
        The K weight matrices that count, each ``(S, m_k, n_k)``.
    biases
        The bias vectors that count, each ``(S, n_j)``; may be empty.
    singular_values
        ``"per_matrix"`` (the authors' code) or ``"pooled"``: how ``sv_mean``
        and ``sv_var`` combine the matrices.

    Returns
    -------
    dict
        One float64 tensor of shape ``(S,)`` per name in
        :data:`trainmap.tables.METRICS`.
    """
    if not weights:
        raise ValueError("weight_metrics needs at least one weight matrix")
    if singular_values not in SINGULAR_VALUE_MODES:
        raise ValueError(
            f"singular_values must be one of {SINGULAR_VALUE_MODES}, not {singular_values!r}"
        )
    mats = [w.detach().to(torch.float64) for w in weights]
    l1 = torch.stack([w.abs().sum((-2, -1)) for w in mats], -1)  # (S, K)
    l2 = torch.stack([torch.linalg.matrix_norm(w) for w in mats], -1)
    trace = torch.stack([w.diagonal(dim1=-2, dim2=-1).sum(-1) for w in mats], -1)
    svs = [torch.linalg.svdvals(w) for w in mats]  # descending, (S, min(m, n))
    spectral = torch.stack([s[..., 0] for s in svs], -1)
    if singular_values == "pooled":
        all_svs = torch.cat(svs, -1)
        sv_mean, sv_var = all_svs.mean(-1), all_svs.var(-1, correction=0)
    else:
        svs = [s.masked_fill(s < SV_ZERO, 0.0) for s in svs]
        sv_mean = torch.stack([s.mean(-1) for s in svs], -1).mean(-1)
        sv_var = torch.stack([s.var(-1, correction=0) for s in svs], -1).mean(-1)
    flat = torch.cat([w.flatten(1) for w in mats], -1)
    out = {
        "l1": l1.mean(-1),
        "l2": l2.mean(-1),
        "l1_over_l2": (l1 / l2).mean(-1),
        "trace": trace.mean(-1),
        "spectral": spectral.mean(-1),
        "trace_over_spectral": (trace / spectral).mean(-1),
        "sv_mean": sv_mean,
        "sv_var": sv_var,
    }
    out["weight_mean"], out["weight_median"], out["weight_var"] = _mean_median_var(flat)
    if biases:
        flat_b = torch.cat([b.detach().to(torch.float64).flatten(1) for b in biases], -1)
        out["bias_mean"], out["bias_median"], out["bias_var"] = _mean_median_var(flat_b)
    else:
        nan = torch.full_like(out["l1"], float("nan"))
        out["bias_mean"] = out["bias_median"] = out["bias_var"] = nan
    return {name: out[name] for name in METRICS}
