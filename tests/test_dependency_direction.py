"""One direction of dependency: the worker side imports the web side, never the reverse.

Three parts, by module name:

- web: ``annotate_app`` (models, services, views, API) and ``config``. It queues work by Celery
  task name (``annotate_app/services/dispatch.py``) and imports no worker code.
- worker: ``rm_worker`` (Celery tasks, runners, run runtime, the commands that train in-process).
  It imports the web side's models and services.
- training: ``rm_worker.training`` (and the empty ``rm_worker/__init__.py`` that importing it
  runs), a library with no Django: both sides may import it (the web side for the config
  schemas its forms and API read), it imports neither (tests/rm_worker/training/test_training_imports.py).

Every ``import`` statement counts, in function bodies and management commands too
(tests/import_graph.py); a failure names the file and line.
"""

from pathlib import Path

import pytest

from tests.import_graph import ROOT, component_cycle, forbidden, import_graph, imports_in, resolve

PACKAGES = ("annotate_app", "config", "rm_worker")
TRAINING = "rm_worker.training"


def side(module: str) -> str | None:
    """web, worker or training (see the module docstring); None outside the project."""
    if module in ("rm_worker", TRAINING) or module.startswith(TRAINING + "."):
        return "training"
    if module.startswith("rm_worker."):
        return "worker"
    if module.split(".")[0] in ("annotate_app", "config"):
        return "web"
    return None


@pytest.fixture(scope="module")
def graph():
    return import_graph(ROOT, PACKAGES)


def test_the_web_and_worker_sides_import_each_other_in_no_cycle(graph):
    assert component_cycle(graph, side) is None


def test_the_web_side_never_imports_worker_code(graph):
    assert forbidden(graph, lambda source, target: side(source) == "web" and side(target) == "worker") == []


def test_the_worker_side_does_import_the_web_side(graph):
    # The direction the two tests above allow is the one in use (the walker sees the edges).
    assert forbidden(graph, lambda source, target: side(source) == "worker" and side(target) == "web")


def test_only_the_celery_tasks_module_is_named_tasks(graph):
    # The annotation Task model lives in models/annotation_task.py, its reads in selectors/queue.py.
    named = {found.source for found in graph if found.source.rsplit(".", 1)[-1] in ("task", "tasks")}
    assert named == {"rm_worker.tasks"}


# The walker itself, on small made-up packages: each check above can fail.


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def _side(module: str) -> str | None:
    return module.split(".")[0] if module.split(".")[0] in ("web", "worker") else None


CYCLE = {
    "web/__init__.py": "",
    "web/models.py": "import json\n",
    "web/services/__init__.py": "",
    # The import that closes the cycle sits in a function body, behind a relative import.
    "web/services/runs.py": (
        "from ..models import json\n\n\ndef enqueue(pk):\n    from worker.tasks import train\n\n    train(pk)\n"
    ),
    "worker/__init__.py": "",
    "worker/tasks.py": "import web.services.runs\n\n\ndef train(pk):\n    return pk\n",
}


def test_a_cycle_through_a_function_level_import_is_found(tmp_path):
    graph = import_graph(_write(tmp_path, CYCLE), ("web", "worker"))
    assert set(component_cycle(graph, _side)) == {"web", "worker"}
    found = forbidden(graph, lambda source, target: _side(source) == "web" and _side(target) == "worker")
    assert found == [
        f"{Path('web/services/runs.py')}:5 (web.services.runs) imports worker",
        f"{Path('web/services/runs.py')}:5 (web.services.runs) imports worker.tasks",
        f"{Path('web/services/runs.py')}:5 (web.services.runs) imports worker.tasks.train",
    ]


def test_one_direction_is_no_cycle(tmp_path):
    files = {**CYCLE, "web/services/runs.py": "from ..models import json\n"}
    graph = import_graph(_write(tmp_path, files), ("web", "worker"))
    assert component_cycle(graph, _side) is None


def test_dotted_and_relative_imports_resolve_with_their_packages(tmp_path):
    _write(tmp_path, {"a/__init__.py": "from . import b\n", "a/b/__init__.py": "",
                      "a/b/c.py": "import x.y.z\nfrom .. import d\nfrom .e import f\n"})
    assert {found.target for found in imports_in(tmp_path, tmp_path / "a/b/c.py")} == {
        "x", "x.y", "x.y.z", "a", "a.d", "a.b", "a.b.e", "a.b.e.f"}
    assert {found.target for found in imports_in(tmp_path, tmp_path / "a/__init__.py")} == {"a", "a.b"}


@pytest.mark.parametrize(
    "module, level, importer, is_package, absolute",
    [
        ("models", 2, "web.services.runs", False, "web.models"),
        (None, 1, "web.services", True, "web.services"),
        ("runs", 1, "web.services", True, "web.services.runs"),
        ("django.db", 0, "web.models", False, "django.db"),
    ],
)
def test_resolve(module, level, importer, is_package, absolute):
    assert resolve(module, level, importer, is_package) == absolute


def test_a_relative_import_above_the_top_package_is_an_error():
    with pytest.raises(ValueError, match="beyond the top-level package"):
        resolve("x", 3, "web.models", False)
