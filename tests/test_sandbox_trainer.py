"""The batched sandbox trainer: its optimiser on the sandbox equals torch's Adam, a member
trains as it would alone, a killed job resumes to the same result."""

import numpy as np
import pandas as pd
import pytest
import torch

from trainmap.engine import MemberOptimizer
from trainmap.sandbox.data import make_data
from trainmap.sandbox.model import Sandbox, Shape
from trainmap.sandbox.plan import JobSpec, plan_jobs
from trainmap.sandbox.results import MLP_PARAMS
from trainmap.sandbox.trainer import Trainer, train_job

SMALL = {"n": 128, "n_test": 64, "hidden": 6, "batch_size": 32, "epochs": 3}


def spec(seeds, lr, discount, decay=None, **kw):
    options = {**SMALL, **kw}
    decay = tuple(decay or [0.0] * len(seeds))
    return JobSpec(
        seeds=tuple(seeds),
        lr=tuple(lr),
        mlp_discount=tuple(discount),
        weight_decay=decay,
        **options,
    )


@pytest.mark.parametrize(
    ("lr", "discount", "decay"), [(3e-3, 1.0, 0.0), (1e-2, 10.0, 0.0), (1e-2, 10.0, 0.1)]
)
def test_member_optimizer_equals_torch_adam_for_one_member(lr, discount, decay):
    torch.manual_seed(0)
    model = Sandbox(Shape(hidden=4), [0])
    reference = Sandbox(Shape(hidden=4), [0])
    params = dict(model.named_parameters())
    rates = torch.tensor([lr]), torch.tensor([lr / discount])
    rate = [rates[n in MLP_PARAMS] for n in params]
    ours = MemberOptimizer(list(params.values()), rate, [torch.tensor([decay])] * len(params))
    groups = [
        {"params": [p for n, p in reference.named_parameters() if n not in MLP_PARAMS], "lr": lr},
        {"params": [p for n, p in reference.named_parameters() if n in MLP_PARAMS]},
    ]
    groups[1]["lr"] = lr / discount
    theirs = torch.optim.Adam(groups, betas=(0.9, 0.999), eps=1e-8, weight_decay=decay)
    x = torch.randint(0, 2, (1, 16, 12))
    y = x[..., :5].sum(-1) % 2
    for _ in range(20):
        for m, opt in ((model, ours), (reference, theirs)):
            for p in m.parameters():
                p.grad = None
            torch.nn.functional.cross_entropy(m(x, 2)[0], y[0]).backward()
            opt.step()
    expected = dict(reference.named_parameters())
    for name, p in model.named_parameters():
        torch.testing.assert_close(p, expected[name], rtol=1e-5, atol=1e-6)


def test_member_in_a_batch_equals_the_run_alone():
    batch = Trainer(spec([0, 1, 2], [3e-3, 1e-2, 3e-3], [1.0, 10.0, 1.0]), "cpu")
    batch.fit()
    alone = Trainer(spec([1], [1e-2], [10.0]), "cpu")
    alone.fit()
    columns = ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "grad_mlp"]
    got = batch.history().query("member == 1")[columns].reset_index(drop=True)
    want = alone.history()[columns]
    pd.testing.assert_frame_equal(got, want, rtol=1e-5, atol=1e-6)
    for name, value in alone.model.member_state(0).items():
        torch.testing.assert_close(batch.model.member_state(1)[name], value, rtol=1e-5, atol=1e-6)
    # The members really differ: another lr gives another trajectory.
    other = batch.history().query("member == 0")["train_loss"].to_numpy()
    assert not np.allclose(other, want["train_loss"].to_numpy())


def test_weight_decay_member_in_a_batch_equals_the_run_alone():
    seeds, lrs, discounts = [0, 1, 1], [3e-3, 1e-2, 1e-2], [1.0, 10.0, 10.0]
    batch = Trainer(spec(seeds, lrs, discounts, [0.0, 0.1, 0.0]), "cpu")
    batch.fit()
    alone = Trainer(spec([1], [1e-2], [10.0], [0.1]), "cpu")
    alone.fit()
    columns = ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "grad_mlp"]
    history = batch.history()
    got = history.query("member == 1")[columns].reset_index(drop=True)
    want = alone.history()[columns]
    pd.testing.assert_frame_equal(got, want, rtol=1e-5, atol=1e-6)
    assert history.query("member == 1")["weight_decay"].eq(0.1).all()
    for name, value in alone.model.member_state(0).items():
        torch.testing.assert_close(batch.model.member_state(1)[name], value, rtol=1e-5, atol=1e-6)
    # The same seed without weight decay ends with other (larger) weights.
    decayed, free = batch.model.member_state(1), batch.model.member_state(2)
    norm = sum(float(v.square().sum()) for v in decayed.values())
    assert norm < sum(float(v.square().sum()) for v in free.values())


def test_logged_loss_and_accuracy_are_means_over_every_sequence_of_the_set():
    # The trainer evaluates each distinct sequence once; p = 2 sets repeat sequences.
    job = spec([0, 3], [3e-3, 1e-2], [1.0, 1.0], epochs=2)
    trainer = Trainer(job, "cpu")
    trainer.fit()
    last = trainer.history().query("epoch == 2")
    for m, seed in enumerate(job.seeds):
        x_train, y_train, x_test, y_test = make_data(trainer.task, job.n, job.n_test, seed)
        both = np.concatenate([x_train, x_test])
        assert len(np.unique(both, axis=0)) < len(both)  # some sequences are evaluated once
        for x, y, name in ((x_train, y_train, "train"), (x_test, y_test, "test")):
            with torch.no_grad():
                logits = trainer.model(torch.as_tensor(x)[None].expand(2, -1, -1), job.p)[m]
            loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(y))
            accuracy = (logits.argmax(-1).numpy() == y).mean()
            row = last.query("member == @m")
            np.testing.assert_allclose(row[f"{name}_loss"], float(loss), rtol=1e-5)
            np.testing.assert_allclose(row[f"{name}_acc"], accuracy)


def test_killed_job_resumes_to_the_same_result(tmp_path, monkeypatch):
    job = spec([0, 1], [3e-3, 3e-3], [1.0, 1.0], epochs=4, snapshot_every=1)
    full = Trainer(job, "cpu")
    full.fit()

    state = tmp_path / "resume.pt"
    killed = Trainer(job, "cpu")
    original = Trainer.losses

    def dies_in_epoch_three(self, step):
        if step == 2 * self.steps_per_epoch + 1:
            raise KeyboardInterrupt
        return original(self, step)

    monkeypatch.setattr(Trainer, "losses", dies_in_epoch_three)
    with pytest.raises(KeyboardInterrupt):
        killed.fit(state, save_every_s=0.0)
    monkeypatch.setattr(Trainer, "losses", original)
    assert torch.load(state, weights_only=True)["step"] == 2 * killed.steps_per_epoch

    train_job(job, tmp_path / "log.parquet", tmp_path / "w.npz", "cpu", state_path=state)
    assert not state.exists()
    resumed = pd.read_parquet(tmp_path / "log.parquet")
    pd.testing.assert_frame_equal(resumed, full.history())
    weights = np.load(tmp_path / "w.npz")
    assert weights["epochs"].tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(weights["token"][-1], full.model.token.detach().numpy())


def test_log_has_one_row_per_member_and_epoch_and_marks_divergence():
    trainer = Trainer(spec([0, 1], [3e-3, 1e6], [1.0, 1.0], epochs=3), "cpu")
    trainer.fit()
    log = trainer.history()
    assert len(log) == 2 * 4 and set(log.epoch) == {0, 1, 2, 3}
    assert log["overlap"].between(0, 1).all()
    assert not log.query("member == 0")["diverged"].any()
    grads = log.query("epoch > 0")[["grad_token", "grad_position", "grad_attention", "grad_mlp"]]
    assert np.isfinite(grads.query("index < 4").to_numpy()).all()


def test_plan_batches_member_keys_and_splits_shape_keys():
    sandbox = {
        "defaults": {
            "lr": 3e-3,
            "mlp_discount": 1.0,
            "weight_decay": 0.0,
            "seeds": 3,
            "epochs": 5,
        },
        "experiments": {
            "a": {"grid": {"lr": [1e-3, 1e-2], "weight_decay": [0, 0.1], "batch_size": [16, 64]}},
            "b": {"init_from": "a", "p": 3, "seeds_per_job": 2},
        },
    }
    jobs = plan_jobs(sandbox)
    assert sorted(jobs) == ["a.batch_size-16", "a.batch_size-64", "b.s0-1", "b.s2-2"]
    a16 = jobs["a.batch_size-16"]
    assert a16.batch_size == 16 and len(a16.seeds) == 12
    assert sorted(zip(a16.seeds, a16.lr, a16.weight_decay, strict=True)) == [
        (s, lr, wd) for s in range(3) for lr in (1e-3, 1e-2) for wd in (0, 0.1)
    ]
    assert set(jobs["b.s0-1"].weight_decay) == {0.0}
    assert jobs["b.s2-2"].seeds == (2,) and jobs["b.s0-1"].init_from == "a"


def test_plan_first_seed_keeps_the_true_seed_numbers():
    defaults = {"lr": 3e-3, "mlp_discount": 1.0, "weight_decay": 0.0, "seeds": 3}
    experiments = {"a": {"seeds_per_job": 2}, "b": {"first_seed": 5, "grid": {"lr": [0.1]}}}
    jobs = plan_jobs({"defaults": {**defaults, "first_seed": 1000}, "experiments": experiments})
    assert sorted(jobs) == ["a.s1000-1001", "a.s1002-1002", "b"]
    assert jobs["a.s1000-1001"].seeds == (1000, 1001) and jobs["b"].seeds == (5, 6, 7)
    # The first seed is no part of what a job trains: the default block's specs are unchanged.
    unset = plan_jobs({"defaults": defaults, "experiments": experiments})
    assert (
        plan_jobs({"defaults": {**defaults, "first_seed": 0}, "experiments": experiments}) == unset
    )


def test_base_runs_stand_in_for_an_ablation_at_the_default_value():
    """A base run is the run an ablation would train at the default value: sharing it
    gives the final accuracies of training that value in the ablation itself."""
    from trainmap.sandbox.analysis import final_rows, with_shared_runs

    def trained(seeds, lrs, **kw):
        trainer = Trainer(spec(seeds, lrs, [1.0] * len(seeds), **kw), "cpu")
        trainer.fit()
        return trainer.history()

    base = trained([0, 1], [3e-3, 3e-3])
    ablation = trained([0, 0, 1, 1], [1e-2, 3e-1, 1e-2, 3e-1])
    whole = trained([0, 0, 0, 1, 1, 1], [1e-2, 3e-1, 3e-3] * 2)
    columns = ["seed", "lr", "test_acc", "train_loss"]

    def finals(log):
        return final_rows(log)[columns].sort_values(["seed", "lr"]).reset_index(drop=True)

    shared = with_shared_runs(ablation, base, "lr")
    pd.testing.assert_frame_equal(finals(shared), finals(whole), rtol=1e-5)
    # A base of another length, or one lacking a seed of the ablation, shares nothing.
    for other in (trained([0, 1], [3e-3, 3e-3], epochs=2), base.query("seed == 0")):
        assert len(with_shared_runs(ablation, other, "lr")) == len(ablation)
