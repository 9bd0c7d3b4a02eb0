"""A job killed midway and rerun resumes from its saved state and writes the same table."""

import copy

import pandas as pd
import pytest
import torch
import yaml

from trainmap.tables import write_table
from trainmap.training import trainer

TINY = yaml.safe_load(open("tests/configs/tiny.yaml"))["settings"]


class Killed(Exception):
    """Stands in for the job being killed."""


def interrupt_after(monkeypatch, n_evaluations: int) -> None:
    """Make the trainer die at its ``n_evaluations``-th evaluation pass."""
    evaluate, calls = trainer._evaluate, [0]

    def dying(*args, **kwargs):
        calls[0] += 1
        if calls[0] == n_evaluations:
            raise Killed
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(trainer, "_evaluate", dying)


GRID = {"lr": [0.01, 0.02], "weight_decay": [0.0, 1.0]}


@pytest.mark.parametrize(
    ("name", "unit", "grid"),
    [
        ("modular", "epoch", None),
        ("modular_stabilized", "step", None),
        ("parities", "epoch", None),
        ("modular", "epoch", GRID),
    ],
    ids=["modular", "modular_stabilized", "parities", "modular_grid"],
)
def test_interrupted_run_resumes_to_the_same_table(tmp_path, monkeypatch, name, unit, grid):
    setting = copy.deepcopy(TINY[name])
    setting["training"].update(epochs=6, checkpoint_every=1, checkpoint_unit=unit, resume_every=2)
    if grid:
        setting["grid"] = grid
    uninterrupted = trainer.train_seeds(setting, [0, 1], device="cpu")

    resume = tmp_path / "resume" / "seeds_0-1.pt"
    with monkeypatch.context() as patch:
        # 2 passes (train, eval) per checkpoint: dies at checkpoint 5, after saves at 2 and 4.
        interrupt_after(patch, 11)
        with pytest.raises(Killed):
            trainer.train_seeds(setting, [0, 1], device="cpu", resume_path=resume)
    saved = torch.load(resume, weights_only=True)
    assert saved["n_checkpoints"] == 4  # checkpoints after step 0

    resumed = trainer.train_seeds(setting, [0, 1], device="cpu", resume_path=resume)
    pd.testing.assert_frame_equal(resumed, uninterrupted)  # bit-identical
    assert resume.exists()  # kept until the table is written
    output = tmp_path / "chunks" / "seeds_0-1.parquet"
    write_table(resumed, output, resume=resume)
    pd.testing.assert_frame_equal(pd.read_parquet(output), uninterrupted)
    assert not resume.exists()  # removed once the table is in place


def test_resume_state_of_another_config_is_ignored(tmp_path, monkeypatch):
    setting = copy.deepcopy(TINY["parities"])
    setting["training"].update(epochs=4, resume_every=1)
    resume = tmp_path / "seeds_0-1.pt"
    with monkeypatch.context() as patch:
        interrupt_after(patch, 7)
        with pytest.raises(Killed):
            trainer.train_seeds(setting, [0, 1], device="cpu", resume_path=resume)
    assert resume.exists()
    setting["optimizer"]["lr"] = 0.05
    resumed = trainer.train_seeds(setting, [0, 1], device="cpu", resume_path=resume)
    pd.testing.assert_frame_equal(resumed, trainer.train_seeds(setting, [0, 1], device="cpu"))


def test_a_kill_while_writing_loses_neither_output_nor_resume_state(tmp_path, monkeypatch):
    resume = tmp_path / "resume.pt"
    resume.write_bytes(b"state")
    output = tmp_path / "seeds_0-1.parquet"
    table = pd.DataFrame({"run": [0, 0], "step": [0, 1]})

    def killed_midway(self, path, **kwargs):
        open(path, "wb").write(b"PAR1")  # a partial file, then the kill
        raise Killed

    monkeypatch.setattr(pd.DataFrame, "to_parquet", killed_midway)
    with pytest.raises(Killed):
        write_table(table, output, resume=resume)
    assert not output.exists() and resume.read_bytes() == b"state"
    assert list(tmp_path.iterdir()) == [resume]  # no partial file left behind
