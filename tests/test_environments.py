"""The conda environments agree with pyproject.toml and with what the rules import.

Conda cannot be installed on the machines that test this repository, so these tests
check the environment files as data:

* ``environment.yml`` (the whole project) lists exactly pyproject.toml's
  dependencies, with the same version bounds;
* every per-rule environment in ``envs/`` lists a subset of them, same bounds;
* every rule that runs a script names an environment in ``envs/``, and that
  environment has every third-party package the script imports, directly or
  through the trainmap modules it imports;
* pyproject.toml's dependencies cover every third-party import of the package and
  the workflow scripts.

Conda-forge names differ from PyPI names for a few packages: ``CONDA_TO_PYPI``
maps them; ``CONDA_PROGRAMS`` are conda packages that are not Python
distributions (the interpreter, pip, Graphviz's ``dot``).
"""

from __future__ import annotations

import ast
import functools
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from workflow_checkout import directive, workflow_rules

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "trainmap"

CONDA_TO_PYPI = {"pytorch": "torch", "python-graphviz": "graphviz"}
CONDA_PROGRAMS = {"python", "pip", "graphviz"}
# Snakemake puts its own package on a script's path; a rule environment needs no copy.
PROVIDED_TO_SCRIPTS = {"snakemake"}


def pyproject_requirements() -> dict[str, SpecifierSet]:
    """pyproject.toml's dependencies: canonical name -> version bounds."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    return {canonicalize_name(r.name): r.specifier for r in requirements}


def conda_requirements(path: Path) -> dict[str, SpecifierSet]:
    """An environment file's conda packages as PyPI names -> version bounds."""
    spec = yaml.safe_load(path.read_text())
    found = {}
    for entry in spec["dependencies"]:
        if isinstance(entry, dict):  # the pip: section
            continue
        name, bounds = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*(.*)", entry.strip()).groups()
        if name in CONDA_PROGRAMS:
            continue
        found[canonicalize_name(CONDA_TO_PYPI.get(name, name))] = SpecifierSet(
            bounds.replace(" ", "")
        )
    return found


def rule_envs() -> list[Path]:
    return sorted((ROOT / "envs").glob("*.yaml"))


def test_environment_yml_is_pyproject():
    wanted = pyproject_requirements()
    listed = conda_requirements(ROOT / "environment.yml")
    assert sorted(listed) == sorted(wanted), (
        f"missing from environment.yml: {sorted(set(wanted) - set(listed))}, "
        f"not in pyproject.toml: {sorted(set(listed) - set(wanted))}"
    )
    different = {n: (str(listed[n]), str(wanted[n])) for n in wanted if listed[n] != wanted[n]}
    assert not different, f"version bounds (environment.yml, pyproject.toml): {different}"


def test_environment_yml_installs_trainmap():
    spec = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = [e for e in spec["dependencies"] if isinstance(e, dict)]
    assert pip and "--editable ." in pip[0]["pip"]


@pytest.mark.parametrize("env", rule_envs(), ids=lambda p: p.name)
def test_rule_env_is_part_of_pyproject(env):
    wanted = pyproject_requirements()
    listed = conda_requirements(env)
    assert set(listed) <= set(wanted), f"not in pyproject.toml: {set(listed) - set(wanted)}"
    different = {n: (str(listed[n]), str(wanted[n])) for n in listed if listed[n] != wanted[n]}
    assert not different, f"version bounds ({env.name}, pyproject.toml): {different}"


@pytest.mark.parametrize("env", rule_envs(), ids=lambda p: p.name)
def test_rule_env_installs_trainmap(env):
    deploy = env.with_suffix(".post-deploy.sh")
    assert deploy.exists(), f"{deploy.name} missing: the environment would lack trainmap"
    assert "pip install --no-deps --editable ." in deploy.read_text()


def test_analysis_env_has_no_torch():
    assert "torch" not in conda_requirements(ROOT / "envs" / "analysis.yaml")


# -- imports ---------------------------------------------------------------------------


def _module_file(module: str) -> Path | None:
    """The source file of a trainmap module, or None if there is no such module."""
    base = PACKAGE.parent.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _module_name(path: Path) -> str | None:
    if not path.is_relative_to(PACKAGE):
        return None
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _optional_import_nodes(tree: ast.AST) -> set[ast.AST]:
    """Imports in the body of a ``try`` that catches ImportError: optional dependencies."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
            isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
            for h in node.handlers
        ):
            found |= {n for stmt in node.body for n in ast.walk(stmt)}
    return found


def optional_imports(path: Path) -> set[str]:
    """Top-level modules a file imports only inside ``try: ... except ImportError``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return {
        n.names[0].name.split(".")[0] if isinstance(n, ast.Import) else n.module.split(".")[0]
        for n in _optional_import_nodes(tree)
        if isinstance(n, ast.Import | ast.ImportFrom) and not getattr(n, "level", 0)
    }


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """(top-level third-party modules, trainmap modules) imported by one file.

    Optional imports (guarded by ``except ImportError``) are left out.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    optional = _optional_import_nodes(tree)
    here = _module_name(path)
    package = here if path.name == "__init__.py" else (here or "").rpartition(".")[0]
    outside, inside = set(), set()

    def add(module: str) -> None:
        if module.split(".")[0] == "trainmap":
            parts = module.split(".")
            inside.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
        else:
            outside.add(module.split(".")[0])

    for node in ast.walk(tree):
        if node in optional:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            add(module)
            if module.split(".")[0] == "trainmap":
                for alias in node.names:  # `from trainmap.x import submodule`
                    if _module_file(f"{module}.{alias.name}"):
                        add(f"{module}.{alias.name}")
    return outside - set(sys.stdlib_module_names) - {"__future__"}, inside


def third_party_imports(path: Path) -> set[str]:
    """Top-level third-party modules a file imports, following trainmap imports."""
    outside, todo = _imports(path)
    done: set[str] = set()
    while todo:
        module = todo.pop()
        done.add(module)
        source = _module_file(module)
        if source is None:
            continue
        more_outside, more_inside = _imports(source)
        outside |= more_outside
        todo |= more_inside - done
    return outside


@functools.cache
def installed_modules() -> dict[str, list[str]]:
    """Top-level module -> the installed distributions that provide it."""
    return packages_distributions()


def distributions(modules: set[str]) -> set[str]:
    """The installed distributions (canonical names) that provide these modules."""
    known = installed_modules()
    unknown = sorted(m for m in modules if m not in known)
    assert not unknown, f"imported, but no installed distribution provides: {unknown}"
    return {canonicalize_name(d) for m in modules for d in known[m]}


def test_rules_with_scripts_name_an_env():
    rules = [r for r in workflow_rules() if directive(r.body, "script")]
    if not rules:
        pytest.skip("no rule runs a script yet")
    envs = {p.resolve() for p in rule_envs()}
    wrong = []
    for rule in rules:
        conda = directive(rule.body, "conda")
        if conda is None or (rule.file.parent / conda).resolve() not in envs:
            wrong.append(f"{rule.name} ({rule.file.name}): conda: {conda}")
    assert not wrong, "rules without an environment from envs/:\n" + "\n".join(wrong)


def test_rule_envs_have_what_their_scripts_import():
    checked = 0
    missing = []
    for rule in workflow_rules():
        conda, script = directive(rule.body, "conda"), directive(rule.body, "script")
        if conda is None or script is None:
            continue
        env = (rule.file.parent / conda).resolve()
        script_path = (rule.file.parent / script).resolve()
        if not env.exists() or not script_path.exists():
            continue  # reported by test_rules_with_scripts_name_an_env / Snakemake
        needed = distributions(third_party_imports(script_path)) - PROVIDED_TO_SCRIPTS
        lacking = needed - set(conda_requirements(env))
        if lacking:
            missing.append(f"{rule.name}: {env.name} lacks {sorted(lacking)}")
        checked += 1
    if not checked:
        pytest.skip("no rule runs a script yet")
    assert not missing, "\n".join(missing)


def test_pyproject_has_every_import():
    files = [*PACKAGE.rglob("*.py"), *(ROOT / "workflow" / "scripts").glob("*.py")]
    modules = set().union(*(third_party_imports(f) for f in files))
    lacking = distributions(modules) - set(pyproject_requirements()) - PROVIDED_TO_SCRIPTS
    assert not lacking, f"imported but not in pyproject.toml dependencies: {sorted(lacking)}"


def test_optional_imports_are_in_an_extra():
    """A guarded import (a feature that needs an extra library) is in an optional extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = {
        canonicalize_name(Requirement(r).name)
        for group in project.get("optional-dependencies", {}).values()
        for r in group
    }
    modules = set().union(*(optional_imports(f) for f in PACKAGE.rglob("*.py")))
    lacking = distributions(modules) - extras
    assert not lacking, f"optional imports not in any pyproject.toml extra: {sorted(lacking)}"


def test_import_scan_follows_trainmap_modules(tmp_path):
    """The scanner finds torch behind `from trainmap.training import ...`."""
    script = tmp_path / "script.py"
    script.write_text("from trainmap.training import trainer\n")
    if _module_file("trainmap.training") is None:
        pytest.skip("trainmap.training does not exist yet")
    assert "torch" in third_party_imports(script)
