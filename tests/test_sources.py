"""Which package code a workflow script runs, read from the source without importing it."""

from __future__ import annotations

import sys

import pytest
from workflow_checkout import ROOT

from trainmap import sources

SCRIPTS = ROOT / "workflow" / "scripts"


def test_a_script_runs_the_modules_it_imports_and_theirs():
    modules = sources.imported_modules(SCRIPTS / "regression.py")
    # regression.py imports training_map, which imports hmm; packages run their __init__.
    for name in ("trainmap.analysis.regression", "trainmap.analysis.training_map",
                 "trainmap.analysis.hmm", "trainmap.analysis", "trainmap"):  # fmt: skip
        assert name in modules
    assert modules["trainmap.analysis.hmm"] == sources.PACKAGE_DIR / "analysis" / "hmm.py"
    assert "trainmap.training.trainer" not in modules


def test_training_runs_no_analysis_code():
    modules = sources.imported_modules(SCRIPTS / "train.py")
    assert "trainmap.training.trainer" in modules
    assert not [m for m in modules if m.startswith("trainmap.analysis")]


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A package of its own in place of trainmap's source, with no import remembered."""
    package = tmp_path / "trainmap"
    monkeypatch.setattr(sources, "PACKAGE_DIR", package)
    sources._imports_of_module.cache_clear()
    yield package
    sources._imports_of_module.cache_clear()


def test_relative_and_function_level_imports_count(package, tmp_path):
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "a.py").write_text("from . import b\n")
    (package / "sub" / "b.py").write_text("def f():\n    from ..c import g\n")
    (package / "c.py").write_text("import os\n")
    script = tmp_path / "script.py"
    script.write_text("import numpy\nfrom trainmap.sub import a\n")
    found = sources.imported_modules(script)
    assert list(found) == [
        "trainmap",
        "trainmap.c",
        "trainmap.sub",
        "trainmap.sub.a",
        "trainmap.sub.b",
    ]
    before = sources.code_digest(script)
    (package / "c.py").write_text("import os  # edited\n")
    sources._imports_of_module.cache_clear()
    assert sources.code_digest(script) != before


def test_reading_a_script_does_not_import_torch():
    had_torch = "torch" in sys.modules
    sources.code_digest(SCRIPTS / "train.py")
    assert ("torch" in sys.modules) == had_torch
