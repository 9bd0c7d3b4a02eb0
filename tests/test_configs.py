"""The shipped configs: complete, and the replicate one what its header says it is."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "workflow" / "schemas"


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / "config" / name).read_text())


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml", "replicate.yaml"])
def test_complete_configs_validate(name):
    config = load(name)
    validate(config, str(SCHEMAS / "config.schema.yaml"))
    validate(config["analysis"], str(SCHEMAS / "analysis.schema.yaml"))
    for setting in config["settings"].values():
        validate(setting, str(SCHEMAS / "settings.schema.yaml"))


# What config/replicate.yaml's header says it changes; everything else is the default's.
REPLICATE_SETTING_KEYS = {"seeds", "first_seed", "seeds_per_job", "resources"}
REPLICATE_ANALYSIS_KEYS = {"k_extend", "covariance_type"}


def without(mapping: dict, keys: set[str]) -> dict:
    return {key: value for key, value in mapping.items() if key not in keys}


def test_replicate_is_the_default_at_40_fresh_runs():
    default, replicate = load("config.yaml"), load("replicate.yaml")
    assert replicate["scale"] == "replicate"
    assert replicate["settings"].keys() == default["settings"].keys()
    for name, setting in replicate["settings"].items():
        assert setting["seeds"] == 40, name
        ours, theirs = copy.deepcopy(setting), copy.deepcopy(default["settings"][name])
        ours["training"].pop("epochs"), theirs["training"].pop("epochs")
        assert without(ours, REPLICATE_SETTING_KEYS) == without(theirs, REPLICATE_SETTING_KEYS)
    assert without(replicate["analysis"], REPLICATE_ANALYSIS_KEYS) == without(
        default["analysis"], REPLICATE_ANALYSIS_KEYS
    )
    assert replicate["analysis"]["covariance_type"] == "full"
    assert "blog" not in replicate and "sandbox" not in replicate


def test_replicate_seeds_were_never_used_to_choose_anything():
    used = load("claims.yaml")["seeds_used"]
    confirm = load("confirm.yaml")["settings"]
    default = load("config.yaml")["settings"]
    for name, setting in load("replicate.yaml")["settings"].items():
        ours = set(range(setting["first_seed"], setting["first_seed"] + setting["seeds"]))
        first, last = used[name]
        assert not ours & set(range(first, last + 1)), name
        start = confirm[name]["first_seed"]
        assert not ours & set(range(start, start + default[name]["seeds"])), name
