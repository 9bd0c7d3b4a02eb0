"""The code a workflow script runs: the script and the trainmap modules it imports.

Rules carry :func:`code_digest` of their script as a param, so that a job reruns
when its script or any trainmap module it imports (directly or through other
trainmap modules) changes in content, and only then. The imports are read from
the source (``ast``), not by importing it: the digest of a training script never
loads torch. Imports anywhere in a file count, those inside functions included.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

PACKAGE = "trainmap"
#: The installed package's source folder.
PACKAGE_DIR = Path(__file__).resolve().parent


def module_file(module: str) -> Path | None:
    """The source file of a trainmap module or package (None: not a trainmap module)."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _package_of(path: Path) -> str:
    """The dotted package that holds a file under :data:`PACKAGE_DIR`."""
    parts = path.relative_to(PACKAGE_DIR).parent.parts
    return ".".join((PACKAGE, *parts))


def _imported(path: Path) -> set[str]:
    """The trainmap modules and packages a file imports (with their parent packages)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    inside = PACKAGE_DIR in path.resolve().parents
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if not inside:
                    continue
                package = _package_of(path.resolve()).split(".")
                base = ".".join(package[: len(package) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.add(module)
            # `from trainmap.x import y` imports module trainmap.x.y when there is one.
            names.update(f"{module}.{alias.name}" for alias in node.names)
    found = set()
    for name in names:
        parts = name.split(".")
        for end in range(1, len(parts) + 1):
            prefix = ".".join(parts[:end])
            if module_file(prefix) is not None:
                found.add(prefix)
    return found


@functools.cache
def _imports_of_module(module: str) -> frozenset[str]:
    path = module_file(module)
    return frozenset(_imported(path)) if path else frozenset()


def imported_modules(script: str | Path) -> dict[str, Path]:
    """Every trainmap module ``script`` imports, directly or through other trainmap
    modules: its source file by module name, in name order."""
    seen: set[str] = set()
    todo = list(_imported(Path(script)))
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(_imports_of_module(module) - seen)
    return {module: module_file(module) for module in sorted(seen)}  # type: ignore[misc]


def code_digest(script: str | Path) -> str:
    """SHA-256 of the text of ``script`` and of every trainmap module it imports."""
    digest = hashlib.sha256(Path(script).read_bytes())
    for module, path in imported_modules(script).items():
        digest.update(f"\0{module}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
