"""The batched trainer: batch equals solo, determinism, table contract, divergence, data."""

import copy

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from trainmap import tables
from trainmap.errors import TrainmapError
from trainmap.jobs import seed_chunks
from trainmap.training import data as datasets
from trainmap.training.models import Attention, OneLayerTransformer
from trainmap.training.tasks import SparseParities, get_task
from trainmap.training.trainer import train_seeds

TINY = yaml.safe_load(open("tests/configs/tiny.yaml"))["settings"]


def small(name: str, **training) -> dict:
    setting = copy.deepcopy(TINY[name])
    setting["training"].update(training)
    return setting


def rows_of(table: pd.DataFrame, run: int) -> pd.DataFrame:
    return table[table[tables.RUN] == run].reset_index(drop=True)


@pytest.mark.parametrize("name", ["modular", "modular_stabilized", "parities"])
def test_seed_in_batch_equals_seed_alone(name):
    setting = small(name, epochs=6)
    batch = train_seeds(setting, [0, 1, 2], device="cpu")
    alone = train_seeds(setting, [1], device="cpu")
    pd.testing.assert_frame_equal(rows_of(batch, 1), alone, check_exact=False, rtol=1e-4, atol=1e-5)
    # ...and the seeds really differ from each other.
    assert not np.allclose(rows_of(batch, 0)[tables.TRAIN_LOSS], alone[tables.TRAIN_LOSS])


def test_separate_models_fallback_equals_batched(monkeypatch):
    setting = small("parities", epochs=3)
    batched = train_seeds(setting, [0, 1], device="cpu")
    monkeypatch.setattr(SparseParities, "batched", False)
    separate = train_seeds(setting, [0, 1], device="cpu")
    pd.testing.assert_frame_equal(batched, separate, check_exact=False, rtol=1e-4, atol=1e-5)


def test_same_config_gives_identical_table():
    setting = small("modular", epochs=4)
    pd.testing.assert_frame_equal(
        train_seeds(setting, [0, 1], device="cpu"), train_seeds(setting, [0, 1], device="cpu")
    )


def test_table_contract():
    setting = small("modular", epochs=6, checkpoint_every=3, example_losses=5)
    table = train_seeds(setting, [3, 4], device="cpu")
    head = [tables.RUN, tables.STEP, tables.EPOCH, *tables.METRICS]
    assert list(table.columns[: len(head)]) == head
    for column in (tables.TRAIN_LOSS, tables.TRAIN_ACC, tables.EVAL_LOSS, tables.EVAL_ACC):
        assert table[column].dtype == np.float64
    assert table[tables.DIVERGED].dtype == bool and not table[tables.DIVERGED].any()
    examples = tables.example_loss_columns(table)
    assert examples == [f"example_loss_{i}" for i in range(5)]
    assert (table[examples].dtypes == np.float32).all()
    assert table[tables.RUN].tolist() == [3, 3, 3, 4, 4, 4]
    assert table[tables.STEP].tolist() == [0, 3, 6] * 2  # full batch: a step per epoch
    assert table[tables.EPOCH].tolist() == [0.0, 3.0, 6.0] * 2
    assert table[list(tables.METRICS)].notna().all().all()


def test_example_losses_are_losses_of_evaluation_examples():
    setting = small("modular", epochs=2, example_losses=1000)  # more than there are: all of them
    table = train_seeds(setting, [0], device="cpu")
    losses = table[tables.example_loss_columns(table)].to_numpy(np.float64)
    assert losses.shape[1] == 11 * 11 - round(0.5 * 11 * 11)
    np.testing.assert_allclose(losses.mean(1), table[tables.EVAL_LOSS], rtol=1e-5)


def test_step_checkpoints_and_partial_batches():
    setting = small("modular_stabilized", epochs=2, batch_size=16, checkpoint_every=3)
    table = train_seeds(setting, [0], device="cpu")
    steps_per_epoch = -(-60 // 16)  # 60 training pairs, the last batch is partial
    assert table[tables.STEP].tolist() == [0, 3, 6, 8]  # and the final step
    assert table[tables.EPOCH].tolist() == [s / steps_per_epoch for s in (0, 3, 6, 8)]


def test_absurd_learning_rate_is_recorded_as_diverged():
    setting = small("modular", epochs=20)
    setting["optimizer"]["lr"] = 1e12
    setting["optimizer"]["weight_decay"] = 0.0
    table = train_seeds(setting, [0, 1], device="cpu")
    for run in (0, 1):
        rows = rows_of(table, run)
        assert rows[tables.DIVERGED].iloc[-1]
        assert not rows[tables.DIVERGED].iloc[:-1].any()  # rows stop where it diverged
        assert rows[tables.STEP].iloc[-1] < 20


def test_unknown_task_and_bad_model_key_name_the_key():
    with pytest.raises(TrainmapError, match="'task'"):
        get_task("no_such_task", {}, {})
    setting = small("parities", epochs=1)
    setting["model"] = {"hiden": [4]}
    with pytest.raises(TrainmapError, match="hiden"):
        train_seeds(setting, [0], device="cpu")


def test_seed_chunks():
    assert seed_chunks(10, 4) == [(0, 3), (4, 7), (8, 9)]
    assert seed_chunks(3, 8) == seed_chunks(3, None) == [(0, 2)]
    assert seed_chunks(10, 4, first_seed=1000) == [(1000, 1003), (1004, 1007), (1008, 1009)]


def test_modular_addition_data():
    d = datasets.modular_addition(p=7, train_fraction=0.3, seed=0)
    assert len(d.x_train) == round(0.3 * 49) and len(d.x_train) + len(d.x_eval) == 49
    x = torch.cat([d.x_train, d.x_eval])
    assert len({tuple(r) for r in x[:, :2].tolist()}) == 49  # every pair once
    assert (x[:, 2] == 7).all()
    assert torch.equal(torch.cat([d.y_train, d.y_eval]), (x[:, 0] + x[:, 1]) % 7)


def test_sparse_parities_data():
    d = datasets.sparse_parities(n_bits=12, k=3, n_train=50, n_eval=20, seed=1)
    assert d.x_train.shape == (50, 12) and d.x_eval.shape == (20, 12)
    odd_minus_ones = ((d.x_train[:, :3] < 0).sum(1) % 2).long()
    assert torch.equal(d.y_train, odd_minus_ones)


def test_last_position_attention_equals_full_causal_attention():
    torch.manual_seed(0)
    attn = Attention(d_model=8, n_heads=2, d_head=4)
    x = torch.randn(5, 3, 8)
    q = attn.query(x).view(5, 3, 2, 4).transpose(1, 2)
    k = attn.key(x).view(5, 3, 2, 4).transpose(1, 2)
    v = attn.value(x).view(5, 3, 2, 4).transpose(1, 2)
    full = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    expected = attn.out(full.transpose(1, 2).reshape(5, 3, 8))[:, -1]
    torch.testing.assert_close(attn(x), expected)


def with_split(split: str, name: str, **training) -> dict:
    setting = small(name, **training)
    setting["data"]["split"] = split
    return setting


@pytest.mark.parametrize("name", ["modular", "parities"])
def test_per_seed_data_member_in_batch_equals_it_alone(name):
    setting = with_split("per_seed", name, epochs=4, example_losses=5)
    batch = train_seeds(setting, [0, 1, 2], device="cpu")
    alone = train_seeds(setting, [1], device="cpu")
    pd.testing.assert_frame_equal(rows_of(batch, 1), alone, check_exact=False, rtol=1e-4, atol=1e-5)
    # Its data are its own: the same seed on the setting's fixed split trains differently.
    fixed = train_seeds(with_split("fixed", name, epochs=4, example_losses=5), [1], device="cpu")
    assert not np.allclose(fixed[tables.EVAL_LOSS], alone[tables.EVAL_LOSS])


def test_per_seed_split_draws_each_runs_data_from_its_seed():
    task = get_task(
        "modular_addition", {}, {"p": 7, "train_fraction": 0.3, "seed": 0, "split": "per_seed"}
    )
    a, b, again = task.run_data(1), task.run_data(2), task.run_data(1)
    assert torch.equal(a.x_train, again.x_train) and not torch.equal(a.x_train, b.x_train)
    for run in (a, b):  # each run's split is still a partition of all p² pairs
        pairs = torch.cat([run.x_train, run.x_eval])[:, :2]
        assert len({tuple(r) for r in pairs.tolist()}) == 49
    default = get_task("modular_addition", {}, {"p": 7, "train_fraction": 0.3, "seed": 0})
    assert default.split == "per_seed"
    with pytest.raises(TrainmapError, match="data.split"):
        get_task("modular_addition", {}, {"p": 7, "train_fraction": 0.3, "seed": 0, "split": "x"})


def _full_sequence_post_norm(model, tokens):
    """The authors' post-norm block on every position, with full causal attention."""
    x = model.embed(tokens) + model.pos_embed
    b, t, d = x.shape
    attn = model.attn
    heads = [f(x).view(b, t, attn.n_heads, attn.d_head).transpose(1, 2)
             for f in (attn.query, attn.key, attn.value)]  # fmt: skip
    mixed = torch.nn.functional.scaled_dot_product_attention(*heads, is_causal=True)
    x = model.ln1(x + attn.out(mixed.transpose(1, 2).reshape(b, t, d)))
    x = model.ln2(x + model.mlp_out(torch.relu(model.mlp_in(x))))
    return model.unembed(x)[:, -1]


def test_stabilized_transformer_is_post_norm_without_final_layer_norm():
    torch.manual_seed(0)
    kwargs = {"vocab": 8, "context": 3, "vocab_out": 7, "d_model": 8, "n_heads": 2, "d_head": 4,
              "d_mlp": 16, "layer_norm": True}  # fmt: skip
    post = OneLayerTransformer(**kwargs)
    for norm in (post.ln1, post.ln2):  # non-trivial gains and biases
        torch.nn.init.normal_(norm.weight)
        torch.nn.init.normal_(norm.bias)
    tokens = torch.randint(0, 8, (5, 3))
    torch.testing.assert_close(post(tokens), _full_sequence_post_norm(post, tokens))
    assert not any(name.startswith("ln_final") for name, _ in post.named_parameters())
    pre = OneLayerTransformer(**kwargs, norm_position="pre")
    assert any(name.startswith("ln_final") for name, _ in pre.named_parameters())
    with pytest.raises(ValueError, match="norm_position"):
        OneLayerTransformer(**kwargs, norm_position="sandwich")
