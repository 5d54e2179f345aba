"""The project's import graph, read with ``ast`` rather than by importing anything: every
``import`` statement counts, in function bodies too, with relative imports resolved.

Used by tests/test_dependency_direction.py and tests/rm_worker/training/test_training_imports.py.
"""

import ast
import graphlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Import:
    """``source`` (a module) imports ``target`` at ``path``:``line``."""

    source: str
    target: str
    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line} ({self.source}) imports {self.target}"


def module_name(root: Path, path: Path) -> str:
    """``root/a/b/c.py`` → ``a.b.c``; ``root/a/b/__init__.py`` → ``a.b``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def resolve(module: str | None, level: int, importer: str, importer_is_package: bool) -> str:
    """The absolute name of ``from <level dots><module> import ...`` written in ``importer``."""
    if level == 0:
        return module or ""
    package = importer.split(".") if importer_is_package else importer.split(".")[:-1]
    if level - 1 >= len(package):
        raise ValueError(f"{importer}: relative import beyond the top-level package")
    base = package[: len(package) - (level - 1)]
    return ".".join([*base, module] if module else base)


def _with_parents(name: str) -> list[str]:
    # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
    parts = name.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def imports_in(root: Path, path: Path) -> list[Import]:
    """What the file at ``path`` imports: each name with the packages above it; for
    ``from x import y``, ``x.y`` too (``y`` may be a module)."""
    source = module_name(root, path)
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = resolve(node.module, node.level, source, is_package)
            names = [base, *(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")]
        else:
            continue
        targets = dict.fromkeys(parent for name in names for parent in _with_parents(name))
        found.extend(Import(source, target, path.relative_to(root), node.lineno) for target in targets)
    return found


def import_graph(root: Path, packages: tuple[str, ...]) -> list[Import]:
    """Every import in every ``.py`` file of ``packages`` under ``root`` (migrations and
    management commands included)."""
    files = sorted(path for package in packages for path in (root / package).rglob("*.py"))
    assert files, f"no Python files in {packages} under {root}"
    return [found for path in files for found in imports_in(root, path)]


def forbidden(graph: list[Import], rule: Callable[[str, str], bool]) -> list[str]:
    """The imports for which ``rule(source, target)`` is true, for a failure message."""
    return [str(found) for found in graph if rule(found.source, found.target)]


def component_cycle(graph: list[Import], component_of: Callable[[str], str | None]) -> list[str] | None:
    """A cycle between components (``component_of(module)``; None: outside them all), as the
    list of components around it, or None when the components' imports form no cycle."""
    edges: dict[str, set[str]] = {}
    for found in graph:
        source, target = component_of(found.source), component_of(found.target)
        if source is not None and target is not None and source != target:
            edges.setdefault(source, set()).add(target)
    try:
        tuple(graphlib.TopologicalSorter(edges).static_order())
    except graphlib.CycleError as error:
        return list(error.args[1])
    return None
