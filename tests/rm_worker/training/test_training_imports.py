"""House rule: the training package never imports Django, Celery or app code.

Every import statement counts, in function bodies too, relative ones resolved (tests/import_graph.py);
``rm_worker/__init__.py`` runs whenever the package is imported, so it is held to the same rule.
"""

from tests.import_graph import ROOT, forbidden, import_graph

FORBIDDEN = ("django", "rest_framework", "drf_spectacular", "celery", "kombu", "annotate_app", "config")
TRAINING = "rm_worker.training"


def _training(module: str) -> bool:
    return module in ("rm_worker", TRAINING) or module.startswith(TRAINING + ".")


def _not_for_training(target: str) -> bool:
    # Outside the training package, rm_worker is worker code (tasks, runners): Django and Celery.
    return target.split(".")[0] in FORBIDDEN or (target.startswith("rm_worker.") and not _training(target))


def test_training_modules_import_no_django():
    graph = [found for found in import_graph(ROOT, ("rm_worker",)) if _training(found.source)]
    assert len({found.source for found in graph}) > 5
    assert forbidden(graph, lambda source, target: _not_for_training(target)) == []
