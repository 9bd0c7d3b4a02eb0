"""The workflow for tests: a throwaway copy to run, and its rules' directives."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import NamedTuple

import yaml

ROOT = Path(__file__).resolve().parents[1]
# What a checkout needs to run the workflow (the package itself is installed).
WORKFLOW_FILES = ("Snakefile", "workflow", "config", "profiles", "envs")


def checkout(where: Path, config: dict) -> Path:
    """Copy the workflow to `where` and write `config` to `where`/test.yaml."""
    where.mkdir(parents=True)
    for name in WORKFLOW_FILES:
        source = ROOT / name
        if source.is_dir():
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(source, where / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(source, where / name)
    (where / "test.yaml").write_text(yaml.safe_dump(config))
    return where


def tiny_config() -> dict:
    """The shared tiny test config (tests/configs/tiny.yaml)."""
    return yaml.safe_load((ROOT / "tests" / "configs" / "tiny.yaml").read_text())


class Rule(NamedTuple):
    """A rule or checkpoint as written in a rule file."""

    name: str
    file: Path
    body: str


def workflow_rules() -> list[Rule]:
    """Every rule and checkpoint of workflow/rules/*.smk, with the text of its body."""
    found = []
    for smk in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        text = smk.read_text()
        starts = list(re.finditer(r"^(\s*)(?:rule|checkpoint)\s+(\w+)\s*:", text, re.MULTILINE))
        ends = [s.start() for s in starts[1:]] + [len(text)]
        for start, end in zip(starts, ends[: len(starts)], strict=True):
            indent = len(start.group(1))
            body = text[start.end() : end]
            # The body ends at the first line indented no deeper than `rule` itself.
            stop = re.search(rf"^ {{0,{indent}}}\S", body, re.MULTILINE)
            found.append(Rule(start.group(2), smk, body[: stop.start()] if stop else body))
    return found


def directive(body: str, name: str) -> str | None:
    """The first string of a directive (`script:`, `conda:`, ...), or None without it."""
    match = re.search(rf"^\s+{name}:\s*\n?\s*[\"']([^\"']+)[\"']", body, re.MULTILINE)
    return match.group(1) if match else None


def has_directive(body: str, name: str) -> bool:
    return re.search(rf"^\s+{name}:", body, re.MULTILINE) is not None
