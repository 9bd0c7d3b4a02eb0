"""The checkpoint reader: Hugging Face folders and state dicts → the metrics table."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

from trainmap import tables
from trainmap.errors import TrainmapError
from trainmap.metrics import checkpoints as ck
from trainmap.training.resnet import ResNet

transformers = pytest.importorskip("transformers")

MULTIBERTS = {
    "pattern": r"seed_(?P<run>\d+)-step_(?P<step>\d+)k",
    "step_scale": 1000,
    "exclude": ["embeddings", "LayerNorm", r"^cls\.predictions\.(decoder|bias)"],
}


def reference_metrics(matrices: list[np.ndarray], biases: list[np.ndarray]) -> dict[str, float]:
    """The 14 metrics of appendix B in plain numpy, written out from the paper's formulae."""
    svs = [np.linalg.svd(w, compute_uv=False) for w in matrices]
    l1 = np.array([np.abs(w).sum() for w in matrices])
    l2 = np.array([np.sqrt((w**2).sum()) for w in matrices])
    trace = np.array([sum(w[i, i] for i in range(min(w.shape))) for w in matrices])
    spectral = np.array([s.max() for s in svs])
    flat = np.concatenate([w.ravel() for w in matrices])
    svs = [np.where(s < 1e-5, 0.0, s) for s in svs]  # per matrix, as the authors' code
    out = {
        "l1": l1.mean(),
        "l2": l2.mean(),
        "l1_over_l2": (l1 / l2).mean(),
        "trace": trace.mean(),
        "spectral": spectral.mean(),
        "trace_over_spectral": (trace / spectral).mean(),
        "sv_mean": np.mean([s.mean() for s in svs]),
        "sv_var": np.mean([s.var() for s in svs]),
        "weight_mean": flat.mean(),
        "weight_median": np.median(flat),
        "weight_var": flat.var(),
    }
    b = np.concatenate(biases) if biases else np.array([np.nan])
    out.update(bias_mean=b.mean(), bias_median=np.median(b), bias_var=b.var())
    return out


def tiny_bert(seed: int) -> torch.nn.Module:
    config = transformers.BertConfig(
        vocab_size=40,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=24,
        max_position_embeddings=16,
    )
    torch.manual_seed(seed)
    return transformers.BertForPreTraining(config)


def perturb(model: torch.nn.Module, step: int) -> None:
    """Stand-in for training: move every parameter a little, differently at each step."""
    g = torch.Generator().manual_seed(step)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * step * torch.randn(p.shape, generator=g))


@pytest.fixture(scope="module")
def multiberts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """Tiny BERTs named like the MultiBERTs releases: 3 seeds × 6 steps (0k, 20k, ..., 100k)."""
    root = tmp_path_factory.mktemp("multiberts")
    expected = {}
    for seed in range(3):
        model = tiny_bert(seed)
        for k in range(0, 120, 20):
            if k:
                perturb(model, seed * 100 + k)
            folder = root / f"multiberts-seed_{seed}-step_{k}k"
            model.save_pretrained(folder)  # config.json + model.safetensors
            named = dict(model.named_parameters())
            kept = {
                n: p.detach().numpy().copy()
                for n, p in named.items()
                if not any(re.search(x, n) for x in MULTIBERTS["exclude"])
            }
            expected[seed, k * 1000] = reference_metrics(
                [v for v in kept.values() if v.ndim == 2],
                [v for n, v in kept.items() if v.ndim == 1 and n.endswith("bias")],
            )
    return root, expected


def test_multiberts_folder_matches_a_direct_computation(multiberts):
    root, expected = multiberts
    table = ck.checkpoint_metrics(root, **MULTIBERTS)
    assert list(table[tables.RUN].unique()) == [0, 1, 2]
    assert table[tables.STEP].tolist() == list(range(0, 120_000, 20_000)) * 3
    assert not table[tables.DIVERGED].any()
    for row in table.itertuples():
        want = expected[int(row.run_name), row.step]
        for m in tables.METRICS:
            assert getattr(row, m) == pytest.approx(want[m], rel=1e-5, abs=1e-9), m


def test_multiberts_selection_excludes_embeddings_and_layer_norms(multiberts):
    root, _ = multiberts
    state = ck.load_state_dict(root / "multiberts-seed_0-step_0k")
    weights, biases, skipped = ck.select_parameters(state, exclude=MULTIBERTS["exclude"])
    # per layer: Q, K, V, attention output, intermediate, output = 6; plus pooler, NSP head,
    # and the prediction head's transform
    assert len(weights) == 2 * 6 + 3
    assert not any("embeddings" in n or "LayerNorm" in n for n in [*weights, *biases, *skipped])
    assert all(n.endswith("bias") for n in biases) and len(biases) == len(weights)


def test_bin_weights_and_analysis(multiberts, tmp_path):
    """pytorch_model.bin folders load too, and the table goes through the HMM analysis."""
    from trainmap.analysis import hmm, normalize

    root, _ = multiberts
    for folder in sorted(root.iterdir()):  # the older format, as the MultiBERTs releases have
        (tmp_path / folder.name).mkdir()
        (tmp_path / folder.name / "config.json").write_text((folder / "config.json").read_text())
        state = ck.load_state_dict(folder)
        torch.save(state, tmp_path / folder.name / "pytorch_model.bin")
    from_bin = ck.checkpoint_metrics(tmp_path, **MULTIBERTS)
    pd.testing.assert_frame_equal(from_bin, ck.checkpoint_metrics(root, **MULTIBERTS))
    metrics = ["l2", "weight_mean"]  # few observations: a small HMM
    zscores, split = normalize.normalize_runs(from_bin, metrics, held_out_fraction=0.34)
    model = hmm.fit(zscores, metrics, k=2, options=hmm.FitOptions(restarts=2, n_iter=20))
    states = hmm.decode(model, zscores, metrics)
    assert len(states) == len(from_bin) and set(states[hmm.STATE]) <= {0, 1}


def resnet_state(seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return ResNet(1, 10, widths=(4, 8), blocks=(1, 1)).state_dict()


def test_state_dicts_convolutions_and_batch_norm(tmp_path):
    """.pt state dicts of a ResNet: kernels as out × in·kh·kw, batch norm excluded by pattern."""
    for run in ("a", "b"):
        for step in (0, 10, 20):
            state = resnet_state(step + ord(run))
            torch.save({"model": state, "step": step}, tmp_path / f"{run}_step{step}.pt")
    pattern = r"^(?P<run>[a-z])_step(?P<step>\d+)"
    table = ck.checkpoint_metrics(
        tmp_path, pattern=pattern, exclude=[r"bn\d?\.", r"shortcut\.1\."], state_dict_key="model"
    )
    assert table[tables.RUN_NAME].tolist() == ["a"] * 3 + ["b"] * 3
    state = resnet_state(10 + ord("b"))
    convs = [v.numpy().reshape(v.shape[0], -1) for n, v in state.items() if v.dim() >= 2]
    want = reference_metrics(convs, [state["fc.bias"].numpy()])
    row = table[(table[tables.RUN_NAME] == "b") & (table[tables.STEP] == 10)].iloc[0]
    for m in tables.METRICS:
        assert row[m] == pytest.approx(want[m], rel=1e-5), m
    # without the batch-norm exclusion, its biases would count as biases
    with_bn = ck.checkpoint_metrics(tmp_path, pattern=pattern, state_dict_key="model")
    assert not np.isclose(with_bn["bias_var"], table["bias_var"]).all()


def test_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (tmp_path / "run0").mkdir()
    torch.save({"weight": torch.ones(2, 2), "payload": Evil()}, tmp_path / "run0" / "step_1.pt")
    with pytest.raises(TrainmapError, match="refusing to load .*step_1.pt"):
        ck.checkpoint_metrics(tmp_path)
    assert not marker.exists()


def test_non_finite_weights_end_a_run(tmp_path):
    for run in (0, 1):
        for step in (0, 1, 2):
            w = torch.full((3, 3), float(step + 1)) + run
            if run == 1 and step == 1:
                w[0, 0] = float("nan")
            save_file({"w": w, "b": torch.zeros(3)}, tmp_path / f"{run}_{step}.safetensors")
    table = ck.checkpoint_metrics(tmp_path, pattern=r"^(?P<run>\d)_(?P<step>\d)")
    assert table[[tables.RUN, tables.STEP, tables.DIVERGED]].values.tolist() == [
        [0, 0, False], [0, 1, False], [0, 2, False], [1, 0, False], [1, 1, True]
    ]  # fmt: skip
    assert table.loc[0, "l1"] == 9.0 and table.loc[0, "trace"] == 3.0


def test_resume_after_a_crash(tmp_path, monkeypatch):
    for step in range(4):
        save_file({"w": torch.randn(3, 2) + step}, tmp_path / f"run0-{step}.safetensors")
        save_file({"w": torch.randn(3, 2) - step}, tmp_path / f"run1-{step}.safetensors")
    pattern, resume = r"run(?P<run>\d)-(?P<step>\d)", tmp_path / "resume.parquet"
    fresh = ck.checkpoint_metrics(tmp_path, pattern=pattern)
    calls, real = [], ck.weight_metrics

    def crash_after_five(*args):
        calls.append(1)
        if len(calls) > 5:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(ck, "weight_metrics", crash_after_five)
    with pytest.raises(KeyboardInterrupt):
        ck.checkpoint_metrics(tmp_path, pattern=pattern, resume_path=resume, save_every_seconds=0)
    assert len(pd.read_parquet(resume)) == 5
    calls.clear()
    monkeypatch.setattr(ck, "weight_metrics", lambda *a: (calls.append(1), real(*a))[1])
    resumed = ck.checkpoint_metrics(tmp_path, pattern=pattern, resume_path=resume)
    assert len(calls) == 3 and resume.exists()  # kept until the table is written
    pd.testing.assert_frame_equal(resumed, fresh)


def test_rows_saved_with_other_options_are_measured_again(tmp_path, monkeypatch):
    for step in range(2):
        save_file({"w": torch.randn(3, 2) + step}, tmp_path / f"run0-{step}.safetensors")
    pattern, resume = r"run(?P<run>\d)-(?P<step>\d)", tmp_path / "resume.parquet"
    ck.checkpoint_metrics(tmp_path, pattern=pattern, resume_path=resume, save_every_seconds=0)
    calls, real = [], ck.weight_metrics
    monkeypatch.setattr(ck, "weight_metrics", lambda *a: (calls.append(1), real(*a))[1])
    ck.checkpoint_metrics(tmp_path, pattern=pattern, resume_path=resume, singular_values="pooled")
    assert len(calls) == 2  # none reused
    ck.checkpoint_metrics(tmp_path, pattern=pattern, resume_path=resume)
    assert len(calls) == 2  # the saved rows' options again: all reused


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pattern": r"(?P<run>\d)"}, "named groups"),
        ({"pattern": r"nomatch(?P<run>x)(?P<step>\d)"}, "no checkpoint"),
        ({"pattern": r"(?P<run>r)/(?P<step>s)"}, "matched 's' in r/s1.safetensors, not a whole"),
        ({"exclude": ["["]}, "exclude: '\\[' is not a regular expression"),
        ({"exclude": ["w"]}, "no weight matrix"),
        ({"state_dict_key": "model"}, "no entry 'model'"),
    ],
)
def test_bad_options_are_named(tmp_path, options, message):
    (tmp_path / "r").mkdir()
    for step in (1, 2):
        save_file({"w": torch.ones(2, 2)}, tmp_path / "r" / f"s{step}.safetensors")
    with pytest.raises(TrainmapError, match=message):
        ck.checkpoint_metrics(tmp_path, **options)


def test_two_checkpoints_of_one_run_and_step_are_refused(tmp_path):
    (tmp_path / "r").mkdir()
    save_file({"w": torch.ones(2, 2)}, tmp_path / "r" / "s1.safetensors")
    torch.save({"w": torch.ones(2, 2)}, tmp_path / "r" / "s01.pt")
    with pytest.raises(
        TrainmapError, match="r/s01.pt and r/s1.safetensors are both run 'r', step 1"
    ):
        ck.checkpoint_metrics(tmp_path)


def test_scores_are_joined_by_run_name_and_step(tmp_path):
    folder = tmp_path / "ckpts"
    for run in ("seed_0", "seed_1"):
        (folder / run).mkdir(parents=True)
        for step in (0, 10):
            save_file({"w": torch.randn(3, 3)}, folder / run / f"step_{step}.safetensors")
    scores = tmp_path / "scores.csv"
    rows = [("seed_1", 10, 0.9), ("seed_0", 0, 0.1), ("seed_0", 10, 0.5), ("seed_1", 0, 0.2)]
    pd.DataFrame(rows, columns=["run", "step", "eval_acc"]).to_csv(scores, index=False)
    table = ck.checkpoint_metrics(folder, scores=scores)
    assert table[tables.EVAL_ACC].tolist() == [0.1, 0.5, 0.2, 0.9]
    pd.DataFrame(rows[:3], columns=["run", "step", "eval_acc"]).to_csv(scores, index=False)
    with pytest.raises(TrainmapError, match=r"no row for 1 checkpoint.*\('seed_1', 0\)"):
        ck.checkpoint_metrics(folder, scores=scores)


def test_changed_parameters_are_refused(tmp_path):
    (tmp_path / "r").mkdir()
    save_file({"w": torch.ones(2, 2)}, tmp_path / "r" / "s1.safetensors")
    save_file({"w": torch.ones(2, 3)}, tmp_path / "r" / "s2.safetensors")
    with pytest.raises(TrainmapError, match="does not have the parameters of the first"):
        ck.checkpoint_metrics(tmp_path)


def test_a_link_to_a_text_file_is_no_checkpoint(tmp_path):
    (tmp_path / "notes.txt").write_text("step 0: loss 2.3\nstep 1: loss 1.9\n")
    (tmp_path / "step_0.pt").symlink_to(tmp_path / "notes.txt")
    with pytest.raises(
        TrainmapError, match=r"cannot read checkpoint .*step_0\.pt: it is not a PyTorch checkpoint"
    ):
        ck.load_state_dict(tmp_path / "step_0.pt")


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("head", [b"", b"\x80\x02", b"PK\x03\x04"], ids=["any", "pickle", "zip"])
def test_random_bytes_are_damaged_not_dangerous(tmp_path, seed, head):
    """Bytes that are no pickle at all, even behind a pickle's or a zip's first bytes."""
    body = np.random.default_rng(seed).bytes(2000)
    (tmp_path / "step_0.pt").write_bytes(head + body)
    with pytest.raises(TrainmapError) as error:
        ck.load_state_dict(tmp_path / "step_0.pt")
    assert re.match(r"cannot read checkpoint .*step_0\.pt: it is not a PyTorch checkpoint, or "
                    r"it is damaged \(torch\.load: \w+", str(error.value))  # fmt: skip


def test_a_truncated_checkpoint_is_damaged(tmp_path):
    torch.save({"weight": torch.ones(4, 4)}, tmp_path / "whole.pt")
    data = (tmp_path / "whole.pt").read_bytes()
    (tmp_path / "step_0.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(TrainmapError, match=r"step_0\.pt: it is not a PyTorch checkpoint, or it"):
        ck.load_state_dict(tmp_path / "step_0.pt")


def test_a_pickle_of_the_old_format_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    path = tmp_path / "step_1.pt"
    torch.save({"payload": Evil()}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(TrainmapError, match=r"refusing to load .*step_1\.pt: it is a pickle"):
        ck.load_state_dict(path)
    assert not marker.exists()


def test_a_link_to_a_missing_file_is_named(tmp_path):
    (tmp_path / "step_0.pt").symlink_to(tmp_path / "gone.pt")
    with pytest.raises(TrainmapError, match=r"step_0\.pt: No such file or directory"):
        ck.load_state_dict(tmp_path / "step_0.pt")


def test_a_damaged_shard_index_is_named(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors.index.json").write_text('{"weight_map": ')
    with pytest.raises(TrainmapError, match=r"cannot read checkpoint index .*index\.json"):
        ck.load_state_dict(tmp_path)


def test_a_damaged_scores_file_is_named(tmp_path):
    (tmp_path / "scores.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(TrainmapError, match=r"scores: cannot read .*scores\.parquet: \w+"):
        ck.add_scores(pd.DataFrame(), tmp_path / "scores.parquet")
