"""The engine: its optimiser equals one torch optimiser per member, divergence, resume."""

import io

import pytest
import torch

from trainmap import fingerprints
from trainmap.engine import Divergence, MemberOptimizer, Resume, fingerprint, member_values

SHAPES = {"matrix": (3, 4), "vector": (5,), "scalar": ()}
TORCH = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}


@pytest.mark.parametrize("shared", [False, True], ids=["per-member", "shared"])
@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("adam", {"betas": (0.9, 0.98)}),
        ("adamw", {"betas": (0.9, 0.98)}),
        ("sgd", {"momentum": 0.9}),
        ("sgd", {}),
    ],
)
def test_member_optimizer_equals_one_torch_optimizer_per_member(name, options, shared):
    members = 4
    lr = torch.tensor([1e-3, 3e-3, 1e-2, 3e-2], dtype=torch.float64)
    weight_decay = torch.tensor([0.0, 0.1, 1.0, 0.5], dtype=torch.float64)
    factor = {"matrix": 1.0, "vector": 0.1, "scalar": 1.0}  # a per-parameter lr factor
    if shared:  # one value for all: the stock optimiser's path
        lr, weight_decay = lr[2].expand(members), weight_decay[2].expand(members)
        factor = dict.fromkeys(factor, 1.0)
    g = torch.Generator().manual_seed(0)
    start = {k: torch.randn(members, *s, generator=g) for k, s in SHAPES.items()}
    stacked = {k: v.clone().requires_grad_() for k, v in start.items()}
    ours = MemberOptimizer(
        list(stacked.values()),
        [member_values(lr * factor[k], v) for k, v in stacked.items()],
        [member_values(weight_decay, v) for v in stacked.values()],
        name,
        **options,
    )
    alone = [{k: v[m].clone().requires_grad_() for k, v in start.items()} for m in range(members)]
    theirs = [
        TORCH[name](
            [{"params": [p], "lr": float(lr[m] * factor[k])} for k, p in params.items()],
            weight_decay=float(weight_decay[m]),
            **options,
        )
        for m, params in enumerate(alone)
    ]
    for _ in range(25):
        grads = {k: torch.randn(members, *s, generator=g) for k, s in SHAPES.items()}
        ours.zero_grad()
        sum((v * grads[k]).sum() for k, v in stacked.items()).backward()
        ours.step()
        for m, (params, optimizer) in enumerate(zip(alone, theirs, strict=True)):
            optimizer.zero_grad()
            sum((p * grads[k][m]).sum() for k, p in params.items()).backward()
            optimizer.step()
        for k, v in stacked.items():
            expected = torch.stack([params[k].detach() for params in alone])
            torch.testing.assert_close(v.detach(), expected, rtol=1e-5, atol=1e-6)
    assert not torch.equal(stacked["matrix"][0], start["matrix"][0])


@pytest.mark.parametrize("rates", [[0.1, 0.2], [0.1, 0.1]], ids=["per-member", "shared"])
def test_optimizer_state_round_trip_continues_identically(rates):
    def make():
        p = torch.ones(2, 3, requires_grad=True)
        return p, MemberOptimizer([p], [member_values(torch.tensor(rates), p)], [0.0])

    p, optimizer = make()
    q, resumed = make()
    for i in range(6):
        if i == 3:
            with torch.no_grad():
                q.copy_(p)
            saved = io.BytesIO()  # as the resume file: saved, and loaded as weights only
            torch.save(optimizer.state_dict(), saved)
            saved.seek(0)
            resumed.load_state_dict(torch.load(saved, weights_only=True))
        for param, opt in ((p, optimizer), (q, resumed)):
            opt.zero_grad()
            (param * torch.arange(6.0).view(2, 3) ** 2).sum().backward()
            opt.step()
    assert torch.equal(p, q)


def test_divergence_marks_members_once():
    divergence = Divergence(3, torch.device("cpu"))
    divergence.observe(torch.tensor([1.0, float("inf"), 2.0]))
    weights = torch.tensor([[1.0, 2.0], [1.0, 2.0], [float("nan"), 0.0]])
    finite = divergence.finite([weights], torch.zeros(3, 5))
    assert finite.tolist() == [True, False, False]
    assert divergence.settle(finite).tolist() == [False, True, True]
    assert divergence.settle(torch.tensor([True, False, False])).tolist() == [False] * 3
    assert divergence.alive.tolist() == [True, False, False]


def test_resume_ignores_a_state_of_another_fingerprint(tmp_path):
    path = tmp_path / "state.pt"
    Resume(path, fingerprint({"lr": 1})).save({"step": 3, "x": torch.ones(2)})
    assert Resume(path, fingerprint({"lr": 1})).load(torch.device("cpu"), "job")["step"] == 3
    assert Resume(path, fingerprint({"lr": 2})).load(torch.device("cpu"), "job") is None
    assert Resume(tmp_path / "none.pt", "f").load(torch.device("cpu"), "job") is None


def test_saved_options_are_equal_when_their_json_is():
    """Options read back from a JSON file (lists, any key order) equal the ones written."""
    assert fingerprint({"b": 1, "a": (1, 2)}) == fingerprint({"a": [1, 2], "b": 1})
    assert fingerprints.changed({"a": [1, 2]}, {"a": (1, 2), "b": None}) == []
    assert fingerprints.changed({"a": [1, 2], "b": 0}, {"a": [2, 1], "b": 0}) == ["a"]
