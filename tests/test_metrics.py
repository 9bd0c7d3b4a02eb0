"""The 14 weight metrics against hand-computed values and an independent numpy computation."""

import math

import numpy as np
import pytest
import torch

from trainmap.metrics.weights import as_matrix, weight_metrics
from trainmap.tables import METRICS
from trainmap.training.tasks import get_task


def test_hand_computed_case():
    # W1 = diag(3, -4): L1 7, Frobenius 5, trace -1, singular values 4, 3.
    # W2 = [[1, 0, 0], [0, 2, 0]] (2x3): L1 3, Frobenius sqrt 5, trace 1 + 2 = 3, svs 2, 1.
    w1 = torch.tensor([[[3.0, 0.0], [0.0, -4.0]]])
    w2 = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]]])
    b1, b2 = torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 10.0]])
    got = {k: v.item() for k, v in weight_metrics([w1, w2], [b1, b2]).items()}
    expected = {
        "l1": (7 + 3) / 2,
        "l2": (5 + math.sqrt(5)) / 2,
        "l1_over_l2": (7 / 5 + 3 / math.sqrt(5)) / 2,
        "trace": (-1 + 3) / 2,
        "spectral": (4 + 2) / 2,
        "trace_over_spectral": (-1 / 4 + 3 / 2) / 2,
        "sv_mean": (3.5 + 1.5) / 2,  # per matrix: {4, 3} and {2, 1}
        "sv_var": (0.25 + 0.25) / 2,  # population variances of {4, 3} and {2, 1}
        "weight_mean": 0.2,  # entries 3, 0, 0, -4, 1, 0, 0, 0, 2, 0
        "weight_median": 0.0,
        "weight_var": 3.0 - 0.04,  # mean of squares minus squared mean
        "bias_mean": 4.0,  # {1, 2, 3, 10}
        "bias_median": 2.5,  # mean of the two middle values
        "bias_var": 12.5,
    }
    assert list(got) == list(METRICS)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-12), name
    pooled = {k: v.item() for k, v in weight_metrics([w1, w2], [b1, b2], "pooled").items()}
    assert pooled["sv_mean"] == pytest.approx(2.5)  # {4, 3, 2, 1} as one set
    assert pooled["sv_var"] == pytest.approx(1.25)
    assert {k: v for k, v in pooled.items() if not k.startswith("sv_")} == {
        k: v for k, v in got.items() if not k.startswith("sv_")
    }


def test_unknown_singular_value_mode_is_an_error():
    with pytest.raises(ValueError, match="singular_values"):
        weight_metrics([torch.ones(1, 2, 2)], [], "mean")


def _numpy_metrics(weights, biases, singular_values="per_matrix"):
    """An independent per-seed computation with numpy."""
    mats = [np.asarray(w, dtype=np.float64) for w in weights]
    svs = [np.linalg.svd(w, compute_uv=False) for w in mats]
    l1 = np.array([np.abs(w).sum() for w in mats])
    l2 = np.array([np.sqrt((w**2).sum()) for w in mats])
    tr = np.array([sum(w[i, i] for i in range(min(w.shape))) for w in mats])
    spec = np.array([s.max() for s in svs])
    flat = np.concatenate([w.ravel() for w in mats])
    flat_b = np.concatenate([np.asarray(b, dtype=np.float64) for b in biases])
    pooled = np.concatenate(svs)
    per_matrix = [np.where(s < 1e-5, 0.0, s) for s in svs]
    if singular_values == "pooled":
        sv_mean, sv_var = pooled.mean(), pooled.var()
    else:
        sv_mean = np.mean([s.mean() for s in per_matrix])
        sv_var = np.mean([s.var() for s in per_matrix])
    return {
        "l1": l1.mean(),
        "l2": l2.mean(),
        "l1_over_l2": (l1 / l2).mean(),
        "trace": tr.mean(),
        "spectral": spec.mean(),
        "trace_over_spectral": (tr / spec).mean(),
        "sv_mean": sv_mean,
        "sv_var": sv_var,
        "weight_mean": flat.mean(),
        "weight_median": np.median(flat),
        "weight_var": flat.var(),
        "bias_mean": flat_b.mean(),
        "bias_median": np.median(flat_b),
        "bias_var": flat_b.var(),
    }


@pytest.mark.parametrize("singular_values", ["per_matrix", "pooled"])
def test_batched_metrics_match_numpy_per_seed(singular_values):
    g = torch.Generator().manual_seed(0)
    shapes = [(5, 7), (7, 5), (1, 6), (4, 4), (3, 3)]
    weights = [torch.randn(3, *s, generator=g) for s in shapes]
    weights[-1][:, 2] = weights[-1][:, 1]  # rank 2: a zero singular value (below 1e-5)
    biases = [torch.randn(3, n, generator=g) for n in (5, 8)]
    got = weight_metrics(weights, biases, singular_values)
    for s in range(3):
        expected = _numpy_metrics([w[s] for w in weights], [b[s] for b in biases], singular_values)
        for name in METRICS:
            assert got[name][s].item() == pytest.approx(expected[name], rel=1e-10), (name, s)


def test_one_row_matrix_has_zero_sv_variance_and_no_bias_gives_nan():
    got = weight_metrics([torch.ones(2, 1, 6)], [])
    assert torch.equal(got["sv_var"], torch.zeros(2, dtype=torch.float64))
    assert got["bias_mean"].isnan().all()


def test_as_matrix_reshapes_conv_kernels_and_keeps_matrices():
    kernel = torch.arange(2 * 8 * 3 * 3 * 3, dtype=torch.float32).view(2, 8, 3, 3, 3)
    assert as_matrix(kernel).shape == (2, 8, 27)
    assert torch.equal(as_matrix(kernel)[1, 4], kernel[1, 4].flatten())
    assert as_matrix(kernel[0], batched=False).shape == (8, 27)
    assert as_matrix(torch.ones(2, 3, 4)).shape == (2, 3, 4)


def test_transformer_measures_15_matrices_per_head_split():
    task = get_task(
        "modular_addition",
        {"d_model": 128, "n_heads": 4, "d_head": 32, "d_mlp": 512, "layer_norm": True},
        {"p": 7, "train_fraction": 0.5, "seed": 0},
    )
    model = task.build_model()
    params = {k: v.unsqueeze(0) for k, v in model.named_parameters()}
    weights, biases = task.metric_tensors(model, params)
    shapes = [tuple(w.shape[1:]) for w in weights]
    assert shapes == [(32, 128)] * 12 + [(128, 128), (512, 128), (128, 512)]
    assert [tuple(b.shape[1:]) for b in biases] == [(512,), (128,)]
    # Head 2's query matrix is rows 64..95 of the stacked query weight.
    assert torch.equal(weights[2][0], model.attn.query.weight[64:96])


@pytest.mark.parametrize(
    ("init", "pooled_var", "per_matrix_var"),
    # pytorch: the replication notes' figures for the modular transformer at init
    # (pooled 0.091 against 0.031 per matrix).
    [("pytorch", 0.091, 0.031), ("authors", None, None)],
)
def test_modular_transformer_at_init(init, pooled_var, per_matrix_var):
    task = get_task(
        "modular_addition",
        {
            "d_model": 128,
            "n_heads": 4,
            "d_head": 32,
            "d_mlp": 512,
            "layer_norm": False,
            "init": init,
        },  # fmt: skip
        {"p": 113, "train_fraction": 0.3, "seed": 0},
    )
    torch.manual_seed(0)
    model = task.build_model()
    params = {k: v.detach().unsqueeze(0) for k, v in model.named_parameters()}
    weights, biases = task.metric_tensors(model, params)
    pooled = weight_metrics(weights, biases, "pooled")["sv_var"].item()
    per_matrix = weight_metrics(weights, biases, "per_matrix")["sv_var"].item()
    if init == "pytorch":
        assert pooled == pytest.approx(pooled_var, abs=0.002)
        assert per_matrix == pytest.approx(per_matrix_var, abs=0.002)
        assert model.mlp_in.bias.abs().max() > 0
        return
    # The authors': N(0, 1/d_model) weights (std 0.088), zero biases, unembedding std 1/sqrt(114).
    for w in weights:
        assert w.std().item() == pytest.approx(128**-0.5, rel=0.05)
    assert all(b.abs().max() == 0 for b in biases)
    assert model.unembed.weight.std().item() == pytest.approx(114**-0.5, rel=0.05)
