"""Recording the 14 metrics from a training loop, and the workflow reading the recording."""

import importlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from trainmap.analysis import hmm, regression, training_map
from trainmap.analysis.experiments import import_table
from trainmap.analysis.normalize import normalize_runs
from trainmap.errors import TrainmapError
from trainmap.metrics.checkpoints import checkpoint_metrics
from trainmap.record import MetricsRecorder
from trainmap.tables import METRICS, read_recorded

ROOT = Path(__file__).resolve().parents[1]


class TiedNet(nn.Module):
    """A convolution, batch norm, an excluded embedding and an output layer tied to it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.hidden = nn.Linear(4 * 6 * 6, 8)
        self.embed = nn.Embedding(5, 8)
        self.out = nn.Linear(8, 5)
        self.out.weight = self.embed.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(self.bn(self.conv(x)).flatten(1))))


def train_steps(model: nn.Module, steps: int, seed: int = 0):
    """Yield (step, loss) before each of ``steps`` SGD steps on fixed random data, then the end."""
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(32, 1, 8, 8, generator=g), torch.randint(5, (32,), generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    for step in range(steps + 1):
        loss = nn.functional.cross_entropy(model(x), y)
        yield step, loss.item()
        if step < steps:
            opt.zero_grad()
            loss.backward()
            opt.step()


@pytest.mark.parametrize("exclude", [[], ["embed"]])
def test_recorded_metrics_equal_checkpoint_metrics(tmp_path, exclude):
    """Same weights, same numbers: the recorder and the checkpoint reader share one code path."""
    torch.manual_seed(0)
    model = TiedNet()
    folder = tmp_path / "checkpoints"
    with MetricsRecorder(model, "seed_0", tmp_path / "rec", exclude=exclude, flush_every=2) as rec:
        for step, loss in train_steps(model, 6):
            assert rec.record(step, train_loss=loss)
            (folder / "seed_0").mkdir(parents=True, exist_ok=True)
            torch.save(model.state_dict(), folder / "seed_0" / f"step_{step}.pt")
    recorded = read_recorded(tmp_path / "rec")
    expected = checkpoint_metrics(folder, exclude=exclude)
    assert recorded["step"].tolist() == expected["step"].tolist() == list(range(7))
    np.testing.assert_array_equal(recorded[list(METRICS)], expected[list(METRICS)])
    assert not recorded["diverged"].any()


def test_tied_weights_count_once():
    from trainmap.metrics.checkpoints import select_parameters

    model = TiedNet()
    weights, _, skipped = select_parameters(model.state_dict())
    assert "embed.weight" in weights and "out.weight" not in weights and "out.weight" in skipped
    weights, _, _ = select_parameters(model.state_dict(), exclude=["embed"])
    assert "out.weight" in weights


def record_run(path: Path, kill_at: int | None = None) -> None:
    """Train and record run 7 for 11 steps; SIGKILL this process at step ``kill_at``."""
    torch.manual_seed(0)
    model = TiedNet()
    examples = torch.zeros(4, 1, 8, 8), torch.arange(4)
    recorder = MetricsRecorder(model, 7, path, flush_every=3, example_losses=examples)
    for step, loss in train_steps(model, 11):
        if step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        recorder.record(step, epoch=step / 4, train_loss=loss)
    recorder.close()


def record_in_subprocess(path: Path, kill_at: int | None = None) -> int:
    code = f"from test_record import record_run; record_run({str(path)!r}, {kill_at})"
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), *sys.path])}  # fmt: skip
    return subprocess.run([sys.executable, "-c", code], env=env).returncode


def test_killed_and_restarted_recording(tmp_path):
    """A SIGKILL loses only the unflushed rows; the rerun adds them without duplicating steps."""
    # Both runs in a subprocess on one thread: the same kernels, so the same floats.
    assert record_in_subprocess(tmp_path / "whole") == 0
    assert record_in_subprocess(tmp_path / "cut", kill_at=8) == -signal.SIGKILL
    flushed = read_recorded(tmp_path / "cut")
    assert flushed["step"].tolist() == list(range(6))  # rows 0-5 flushed in threes; 6, 7 lost
    assert not list((tmp_path / "cut" / "7").glob(".*"))  # no temporary file left
    assert record_in_subprocess(tmp_path / "cut") == 0  # the rerun starts again from step 0
    whole, resumed = read_recorded(tmp_path / "whole"), read_recorded(tmp_path / "cut")
    assert resumed["step"].tolist() == list(range(12))
    pd.testing.assert_frame_equal(resumed, whole)
    pd.testing.assert_frame_equal(resumed.iloc[:6], flushed)
    assert len(list((tmp_path / "cut" / "7").glob("*.parquet"))) == 1  # merged by close()
    assert [c for c in whole if c.startswith("example_loss_")] == [
        f"example_loss_{i}" for i in range(4)
    ]


def test_restart_with_other_options_is_refused(tmp_path):
    model = nn.Linear(3, 2)
    MetricsRecorder(model, "a", tmp_path).close()
    with pytest.raises(TrainmapError, match="run 'a'.*other exclude"):
        MetricsRecorder(model, "a", tmp_path, exclude=["bias"])


def test_divergence_stops_the_run(tmp_path):
    model = nn.Linear(3, 2)
    with MetricsRecorder(model, 0, tmp_path) as rec:
        assert rec.record(0, train_loss=1.0)
        assert rec.record(1, train_loss=float("nan"))
        assert not rec.record(2, train_loss=1.0)
    table = read_recorded(tmp_path)
    assert table["step"].tolist() == [0, 1] and table["diverged"].tolist() == [False, True]


def test_bad_calls_name_the_problem(tmp_path):
    model = nn.Linear(3, 2)
    with pytest.raises(TrainmapError, match="run: 'a/b' cannot name a folder"):
        MetricsRecorder(model, "a/b", tmp_path)
    with pytest.raises(TrainmapError, match="no weight matrix"):
        MetricsRecorder(model, 0, tmp_path, exclude=["weight"])
    rec = MetricsRecorder(model, 0, tmp_path)
    with pytest.raises(TrainmapError, match="columns the recorder writes itself"):
        rec.record(0, l2=3.0)
    with pytest.raises(TrainmapError, match="train_loss='x' is not a number"):
        rec.record(0, train_loss="x")
    rec.close()


@pytest.mark.parametrize("module", ["transformers", "lightning"])
def test_callbacks_need_their_library(monkeypatch, module):
    name = {"transformers": "huggingface", "lightning": "lightning"}[module]
    monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.delitem(sys.modules, f"trainmap.record.{name}", raising=False)
    with pytest.raises(ImportError, match=f"pip install {module}"):
        importlib.import_module(f"trainmap.record.{name}")


def analyse_recording(tmp_path: Path, folder: Path, threshold: float) -> dict:
    """The workflow's analysis functions on a recorder's folder, chained as the rules do."""
    experiment = {"title": "recorded", "table": str(folder), "convergence_threshold": threshold}
    table = import_table(experiment, "recorded")
    zscores, _ = normalize_runs(table, min_length=2, held_out_fraction=0.34)
    metrics = [c for c in zscores.columns if c in METRICS]
    model = hmm.fit(
        zscores, metrics, 2, hmm.FitOptions(restarts=1, n_iter=20, covariance_type="diag")
    )
    hmm.save(model, metrics, tmp_path / "model.pkl", tmp_path / "model.npz")
    params = hmm.HMMParams.load(tmp_path / "model.npz")
    states = hmm.decode(model, zscores, metrics)
    convergence = regression.convergence_times(table, threshold)
    edges = training_map.edge_table(states, zscores, params, convergence)
    summary, _ = regression.analyse(states, params, convergence)
    return {"table": table, "states": states, "edges": edges, "summary": summary}


def test_hugging_face_trainer_to_training_map(tmp_path):
    """A real (tiny) Trainer run per seed through HFCallback, then the analysis."""
    transformers = pytest.importorskip("transformers")
    from trainmap.record import HFCallback

    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1, 20, (96, 6), generator=g)
    labels = (ids[:, 1] > 10).long()
    data = [{"input_ids": i, "labels": y} for i, y in zip(ids, labels, strict=True)]
    config = transformers.BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=16,
                                     max_position_embeddings=8, num_labels=2)  # fmt: skip

    def accuracy(prediction):
        return {
            "accuracy": float((prediction.predictions.argmax(-1) == prediction.label_ids).mean())
        }

    record = tmp_path / "recorded"
    for seed in range(3):
        args = transformers.TrainingArguments(
            output_dir=str(tmp_path / "out"), max_steps=12, eval_strategy="steps", eval_steps=2,
            save_strategy="no", per_device_train_batch_size=16, learning_rate=0.02, seed=seed,
            report_to="none", use_cpu=True, logging_strategy="no", disable_tqdm=True,
        )  # fmt: skip
        torch.manual_seed(seed)
        trainer = transformers.Trainer(
            model=transformers.BertForSequenceClassification(config), args=args,
            train_dataset=data[:64], eval_dataset=data[64:], compute_metrics=accuracy,
            callbacks=[HFCallback(run=f"seed_{seed}", path=record, exclude=["embeddings"])],
        )  # fmt: skip
        trainer.train()
        reported = [h["eval_accuracy"] for h in trainer.state.log_history if "eval_accuracy" in h]
        recorded = read_recorded(record).query(f"run == 'seed_{seed}'")
        assert recorded["step"].tolist() == [2, 4, 6, 8, 10, 12]
        assert recorded["eval_acc"].tolist() == reported
        trainer.save_model(str(tmp_path / "saved" / f"seed_{seed}" / "checkpoint-12"))
    saved = checkpoint_metrics(tmp_path / "saved", exclude=["embeddings"])
    last = read_recorded(record).query("step == 12").reset_index(drop=True)
    # Safetensors files keep parameters in name order: the same sums, in another order.
    np.testing.assert_allclose(last[list(METRICS)], saved[list(METRICS)], rtol=1e-12, atol=0)
    result = analyse_recording(tmp_path, record, threshold=0.6)
    assert len(result["table"]) == 18 and result["states"]["run"].nunique() == 3
    assert result["summary"].loc[0, "runs"] == 3
    assert result["table"]["epoch"].between(0, 12 * 16 / 64).all()


def test_lightning_fit_to_training_map(tmp_path):
    """A real (tiny) Lightning fit per seed through LightningCallback, then the analysis."""
    lightning = pytest.importorskip("lightning")
    from trainmap.record import LightningCallback

    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, 6, generator=g)
    y = (x[:, 0] > 0).long()
    train = torch.utils.data.DataLoader(list(zip(x[:64], y[:64], strict=True)), batch_size=16)
    val = torch.utils.data.DataLoader(list(zip(x[64:], y[64:], strict=True)), batch_size=32)

    class Classifier(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2))

        def training_step(self, batch, _):
            return nn.functional.cross_entropy(self.net(batch[0]), batch[1])

        def validation_step(self, batch, _):
            logits = self.net(batch[0])
            self.log("val_loss", nn.functional.cross_entropy(logits, batch[1]))
            self.log("val_acc", (logits.argmax(1) == batch[1]).float().mean())

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.5)

    record = tmp_path / "recorded"
    for seed in range(3):
        lightning.seed_everything(seed, verbose=False)
        callback = LightningCallback(run=seed, path=record)
        trainer = lightning.Trainer(
            max_epochs=5, accelerator="cpu", logger=False, enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False, callbacks=[callback],
            default_root_dir=tmp_path,
        )  # fmt: skip
        module = Classifier()
        trainer.fit(module, train, val)
        assert (
            trainer.callback_metrics["val_acc"].item() == read_recorded(record)["eval_acc"].iloc[-1]
        )
    table = read_recorded(record)
    assert table.groupby("run")["step"].apply(list).tolist() == [[4, 8, 12, 16, 20]] * 3
    assert table["epoch"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0] * 3
    result = analyse_recording(tmp_path, record, threshold=0.7)
    assert result["summary"].loc[0, "runs"] == 3 and len(result["states"]) == 15


EXAMPLE = ROOT / "config" / "examples" / "record_digits.yaml"


def test_example_config_is_complete():
    """The README's example config validates on its own (no config.yaml beneath it)."""
    import jsonschema
    import yaml
    from referencing import Registry, Resource

    schemas = ROOT / "workflow" / "schemas"
    resources = {p.name: Resource.from_contents(yaml.safe_load(p.read_text()))
                 for p in schemas.glob("*.schema.yaml")}  # fmt: skip
    validator = jsonschema.Draft202012Validator(
        resources["config.schema.yaml"].contents,
        registry=Registry().with_resources(resources.items()),
    )
    validator.validate(yaml.safe_load(EXAMPLE.read_text()))


@pytest.mark.slow
def test_recorded_example_through_snakemake(tmp_path):
    """README's example, smaller: record 3 seeds with the script, then the one snakemake command."""
    import yaml
    from conftest import snakemake
    from workflow_checkout import checkout

    config = yaml.safe_load(EXAMPLE.read_text())
    config["analysis"].update(k_max=2, baseline_k_max=2, restarts=1)
    cwd = checkout(tmp_path / "w", config)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    script = [sys.executable, str(ROOT / "config/examples/record_digits.py"), "data/record_digits"]
    subprocess.run([*script, "--seeds", "3", "--steps", "60"], cwd=cwd, env=env, check=True)
    targets = ["results/maps/record_digits/map.png", "results/regression/record_digits/summary.csv"]
    result = snakemake(cwd, *targets, config="test.yaml", env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_parquet(cwd / "results/runs/record_digits/metrics.parquet")
    assert table["run"].nunique() == 3 and len(table) == 3 * 13
    assert table.filter(like="example_loss_").shape[1] == 64
    summary = pd.read_csv(cwd / "results/regression/record_digits/summary.csv")
    assert summary.loc[0, "runs"] == 3


def test_recorder_writes_the_predicted_convergence_beside_each_step(tmp_path):
    from trainmap.analysis import predict
    from trainmap.analysis.synthetic import SYNTHETIC_METRICS, detour_hmm, sample_runs

    # A predictor over four of the recorded metrics, fitted on synthetic finished runs
    # whose scale matches a small linear layer's weights.
    finished = sample_runs(detour_hmm(), n_runs=10, length=40, seed=0)
    finished[SYNTHETIC_METRICS] = 1 + 0.1 * finished[SYNTHETIC_METRICS]
    predictor = predict.ConvergencePredictor(
        4, SYNTHETIC_METRICS, 0.9, hmm.FitOptions(restarts=1, covariance_type="diag")
    ).fit(finished, regression.convergence_times(finished, 0.9))
    model = nn.Linear(3, 2)
    with MetricsRecorder(model, 0, tmp_path, predictor=predictor) as rec:
        for step in range(4):
            with torch.no_grad():
                model.weight.mul_(1.1)
            rec.record(step, epoch=float(step), eval_acc=0.1)
        assert rec.prediction["predicted_convergence"] > 0
        with pytest.raises(TrainmapError, match="no eval_acc"):
            rec.record(4, epoch=4.0)
    table = read_recorded(tmp_path)
    # Each step's prediction is the predictor's on the rows up to that step.
    for step in range(4):
        expected = predictor.predict_run(table[table["step"] <= step], ("map",)).iloc[0]
        row = table.set_index("step").loc[step]
        assert row["predicted_convergence"] == pytest.approx(expected["predicted"])
        assert row["predicted_convergence_low"] <= row["predicted_convergence"]
        assert row["predicted_convergence"] <= row["predicted_convergence_high"]
