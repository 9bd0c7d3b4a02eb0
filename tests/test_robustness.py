"""Fragile, stable and not-compared verdicts on hand-made fidelity tables."""

import pandas as pd
import pytest
from conftest import snakemake
from workflow_checkout import checkout, tiny_config

from trainmap.errors import TrainmapError
from trainmap.fidelity import FAILS, HOLDS, NOT_JUDGED
from trainmap.robustness import (
    FRAGILE,
    NOT_COMPARED,
    STABLE,
    compare_verdicts,
    markdown,
    read_verdicts,
)


def fidelity(statuses: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": list(statuses),
            "claim": [f"claim {i}" for i in statuses],
            "status": list(statuses.values()),
        }
    )


def test_a_verdict_that_changes_in_any_run_is_fragile(tmp_path):
    this = fidelity({"a": HOLDS, "b": HOLDS, "c": FAILS, "d": NOT_JUDGED, "e": HOLDS, "f": FAILS})
    seeds = fidelity({"a": HOLDS, "b": FAILS, "c": FAILS, "d": HOLDS, "f": FAILS})
    native = fidelity({"a": HOLDS, "b": HOLDS, "c": HOLDS, "d": HOLDS, "e": HOLDS, "f": FAILS})
    paths = {"seeds": tmp_path / "seeds.csv", "native": tmp_path / "native.csv"}
    seeds.to_csv(paths["seeds"], index=False)
    native.to_csv(paths["native"], index=False)
    table = compare_verdicts(this, {k: read_verdicts(p) for k, p in paths.items()})
    verdicts = dict(zip(table["id"], table["robustness"], strict=True))
    assert verdicts == {
        "a": STABLE,
        "b": FRAGILE,  # fails on other seeds
        "c": FRAGILE,  # holds under the other rounding
        "d": NOT_COMPARED,  # this run did not judge it
        "e": NOT_COMPARED,  # the other seeds' run lacks it
        "f": STABLE,
    }
    assert list(table["id"][:2]) == ["b", "c"]  # fragile first
    assert table.set_index("id").loc["e", "seeds"] == ""
    assert "Fragile claims: b, c." in markdown(table, {k: str(p) for k, p in paths.items()})


def test_a_table_without_status_is_named(tmp_path):
    path = tmp_path / "other.csv"
    pd.DataFrame({"id": ["a"], "claim": ["x"]}).to_csv(path, index=False)
    with pytest.raises(TrainmapError, match=f"{path}.*status"):
        read_verdicts(path)
    with pytest.raises(TrainmapError, match="does not exist"):
        read_verdicts(tmp_path / "none.csv")


@pytest.mark.slow
def test_rule_robustness_writes_the_report(tmp_path):
    other = tmp_path / "other.csv"
    fidelity({"a": HOLDS, "b": FAILS}).to_csv(other, index=False)
    config = {**tiny_config(), "robustness": {"runs": {"seeds 2000..": str(other)}}}
    cwd = checkout(tmp_path / "run", config)
    (cwd / "results").mkdir()
    fidelity({"a": HOLDS, "b": HOLDS}).to_csv(cwd / "results/fidelity.csv", index=False)
    result = snakemake(
        cwd, "results/robustness.md", "--allowed-rules", "robustness", cores=1, config="test.yaml"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = (cwd / "results/robustness.md").read_text()
    assert "1 fragile, 1 stable, 0 not compared" in report and "Fragile claims: b." in report
