"""House rule: the training package never imports Django or the web app."""

import ast
from pathlib import Path

import rm_worker.training

FORBIDDEN = ("django", "rest_framework", "annotate_app", "config", "celery")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_training_modules_import_no_django():
    package = Path(rm_worker.training.__file__).parent
    modules = sorted(package.glob("*.py"))
    assert len(modules) > 5
    for path in modules:
        bad = {name for name in imported_modules(path) if name.split(".")[0] in FORBIDDEN}
        assert not bad, f"{path.name} imports {bad}"
