"""The sandbox data and model against independent, direct computations."""

import math

import numpy as np
import pytest
import torch

from trainmap.errors import TrainmapError
from trainmap.sandbox.data import Task, draw, make_data, overlap, probe_sequences
from trainmap.sandbox.model import Sandbox, Shape


def test_labels_are_prefix_sums_mod_p():
    task = Task(seq_len=6, k=3, p=3)
    x = np.array([[2, 2, 1, 0, 0, 0], [1, 1, 1, 2, 2, 2], [0, 0, 0, 1, 1, 1]])
    assert task.labels(x).tolist() == [2, 0, 0]


def test_data_depends_on_own_seed_only_and_disjoint_test_is_disjoint():
    task = Task(12, 5, 2)
    a = make_data(task, 512, 512, seed=3)
    b = make_data(task, 512, 512, seed=3)
    assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))
    # 512 draws out of 4096 sequences: the independent test draw overlaps a little.
    assert 0 < overlap(a[0], a[2], 2) < 0.3
    disjoint = make_data(task, 512, 512, seed=3, disjoint_test=True)
    assert np.array_equal(disjoint[0], a[0])
    assert overlap(disjoint[0], disjoint[2], 2) == 0.0
    assert np.array_equal(disjoint[3], task.labels(disjoint[2]))


def test_disjoint_test_impossible_when_train_covers_everything():
    task = Task(seq_len=2, k=1, p=2)
    with pytest.raises(TrainmapError, match="disjoint_test"):
        draw(task, 4, 0, 1, exclude=np.array([[0, 0], [0, 1], [1, 0], [1, 1]]))


def test_probe_sequences_cover_every_prefix():
    task = Task(12, 5, 3)
    x = probe_sequences(task, suffixes=2)
    assert x.shape == (3**5 * 2, 12)
    assert len({tuple(r) for r in x[:, :5]}) == 3**5


def reference_logits(params, x, p):
    """The paper's equations for one member, one sequence at a time, in float64."""
    params = {k: v.double().numpy() for k, v in params.items()}
    out = []
    for seq in x:
        e = params["token"][seq] + params["position"]
        z = e / np.linalg.norm(e, axis=1, keepdims=True)
        scores = z @ params["query"] / math.sqrt(z.shape[1])
        a = np.exp(scores - scores.max())
        a /= a.sum()
        xi = params["value"] @ (z.T @ a)
        pre = params["receptors"] @ (xi / np.linalg.norm(xi)) + params["biases"]
        gelu = pre * 0.5 * (1 + np.vectorize(math.erf)(pre / math.sqrt(2)))
        zeta = xi + params["assemblers"].T @ gelu
        out.append(params["token"][:p] @ zeta)
    return np.array(out)


@pytest.mark.parametrize("p", [2, 3])
def test_batched_forward_matches_the_equations(p):
    shape = Shape(seq_len=12, vocab=3, d=2, hidden=7)
    model = Sandbox(shape, seeds=[0, 5])
    x = torch.as_tensor(np.random.default_rng(0).integers(0, p, size=(2, 6, 12)))
    with torch.no_grad():
        logits = model(x, p).numpy()
    for m in range(2):
        expected = reference_logits(model.member_state(m), x[m].numpy(), p)
        np.testing.assert_allclose(logits[m], expected, rtol=1e-4, atol=1e-5)


def test_member_initialisation_depends_on_its_seed_only():
    shape = Shape(hidden=5)
    alone = Sandbox(shape, [7]).member_state(0)
    batched = Sandbox(shape, [1, 7, 2]).member_state(1)
    for name in alone:
        assert torch.equal(alone[name], batched[name]), name


def test_trace_intermediates_match_the_equations():
    shape = Shape(seq_len=6, vocab=3, d=2, hidden=5)
    model = Sandbox(shape, seeds=[3, 4])
    x = torch.as_tensor(np.random.default_rng(1).integers(0, 3, size=(2, 4, 6)))
    with torch.no_grad():
        out = model.trace(x, 3)
    params = {k: v.double().numpy() for k, v in model.member_state(1).items()}
    e = params["token"][x[1].numpy()] + params["position"]  # (B, L, d)
    z = e / np.linalg.norm(e, axis=-1, keepdims=True)
    scores = z @ params["query"] / math.sqrt(2)
    attention = np.exp(scores) / np.exp(scores).sum(-1, keepdims=True)
    xi = np.einsum("bl,bld->bd", attention, z) @ params["value"].T
    np.testing.assert_allclose(out["z"][1].numpy(), z, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["attention"][1].numpy(), attention, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["xi"][1].numpy(), xi, rtol=1e-5, atol=1e-6)
    assert out["activations"].shape == (2, 4, 5) and out["logits"].shape == (2, 4, 3)
    np.testing.assert_allclose(out["logits"].numpy(), model(x, 3).detach().numpy(), rtol=1e-6)
