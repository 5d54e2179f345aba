"""Small factories: objects built through the services, as users would create them."""

import io
import itertools
import json
from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.test import Client

from annotate_app.models import Comparison, RewardModelRun, Role, RunStatus
from annotate_app.scale import choice_from_score
from annotate_app.services.annotations import JudgmentInput, annotation_submit
from annotate_app.services.imports import comparison_import
from annotate_app.services.projects import membership_set, project_create
from annotate_app.services.queue import task_next_for
from annotate_app.services.reward_runs import reward_run_create
from rm_worker.reward_runner import run_reward_training
from rm_worker.training.data import HumanJudgment, PreferencePair
from rm_worker.training.report import reward_model_report
from tests.tiny_models import tiny_bert_factory

_counter = itertools.count(1)


def make_user(username: str | None = None, *, password: str = "pw-for-tests", **extra):
    username = username or f"user{next(_counter)}"
    return get_user_model().objects.create_user(username=username, password=password, **extra)


def make_project(*, members: dict | None = None, comparisons: int = 0, **options):
    """A project with the default objectives, ``comparisons`` native pairs, and members {user: role}."""
    n = next(_counter)
    options.setdefault("name", f"Project {n}")
    options.setdefault("slug", f"project-{n}")
    project = project_create(**options)
    for user, role in (members or {}).items():
        membership_set(project=project, user=user, role=role)
    if comparisons:
        import_lines(project, [native_line(i) for i in range(comparisons)])
    return project


def native_line(i: int, **fields) -> dict:
    line = {
        "id": f"c{i}",
        "prompt": [{"role": "user", "content": f"Question number {i}?"}],
        "response_a": f"First answer to {i}.",
        "response_b": f"Second answer to {i}.",
    }
    line.update(fields)
    return line


def jsonl(records) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def import_lines(project, records, **options):
    return comparison_import(project=project, fileobj=io.BytesIO(jsonl(records)), **options)


def member(project, role: str = Role.ANNOTATOR, **user_options):
    user = make_user(**user_options)
    membership_set(project=project, user=user, role=role)
    return user


def annotate(project, user, scores: dict[str, int] | Callable[[Comparison], dict[str, int]]):
    """Label the user's next task with canonical scores (-3..3, negative = A better) per objective, or with
    ``scores(comparison)`` when the scores depend on the comparison the queue hands out.

    Objectives left out are judged ties. Returns the task. The scores are mirrored into the
    shown orientation first, so what is stored is exactly ``scores``.
    """
    task = task_next_for(project=project, user=user)
    assert task is not None, "no task left for this user"
    if callable(scores):
        scores = scores(task.comparison)
    judgments = {}
    for objective in project.objectives.all():
        score = scores.get(objective.key, 0)
        shown = -score if task.shown_swapped else score
        choice, strength = choice_from_score(shown)
        judgments[objective.key] = JudgmentInput(choice=choice, strength=strength)
    annotation_submit(task=task, user=user, judgments=judgments)
    return task


def labelled_project(comparisons: int = 2):
    """A project whose first comparison is annotated (harmless 1): enough for a run to be created."""
    project = make_project(comparisons=comparisons, overlap_k=1, gold_rate=0)
    annotate(project, member(project), {"harmless": 1})
    return project


def trainable_project(comparisons: int = 8):
    """A project whose comparisons are all annotated, harmless alternating sides: a tiny run learns it."""
    project = make_project(comparisons=comparisons, overlap_k=1, gold_rate=0)
    user = member(project)
    for i in range(comparisons):
        annotate(project, user, {"harmless": -2 if i % 2 else 2, "helpful": 1})
    return project


def trained_reward_run(project=None):
    """A reward-model run of ``project`` (default: a `trainable_project`) trained to success by the worker's code on
    a tiny random BERT, a few steps: a run with a saved model to score with."""
    project = project or trainable_project()
    run = reward_run_create(project=project, enqueue=False,
                            overrides={"max_steps": 4, "eval_every": 2, "batch_size": 2, "max_length": 32})
    assert run_reward_training(run.pk, backbone_factory=tiny_bert_factory) == RunStatus.SUCCEEDED
    run.refresh_from_db()
    return run


def succeeded_reward_run(project):
    """A reward-model run of the project marked succeeded without training (for runs that need one)."""
    run = reward_run_create(project=project, enqueue=False)
    RewardModelRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCEEDED)
    run.refresh_from_db()
    return run


def reported_reward_run(project):
    """A succeeded reward-model run holding a report computed by the worker's code (``reward_model_report``) on
    three hand-made pairs, two of them judged by two annotators who disagree on harmless."""
    judgments = (HumanJudgment("ann", "harmless", "A"), HumanJudgment("bo", "harmless", "B"))
    pairs = [PreferencePair("a", "w1", "good", "bad bad", {"harmless": -1}, judgments),
             PreferencePair("b", "w1", "good safe", "bad", {"harmless": 1, "helpful": 0}, judgments),
             PreferencePair("c", "w1", "safe", "harm", {"helpful": -2})]
    report = reward_model_report(pairs, [[0.5, 1.0], [0.1, 0.4], [2.0, 0.3]],
                                 [[0.0, 0.2], [0.4, 0.1], [-1.0, 0.0]], ["helpful", "harmless"])
    run = succeeded_reward_run(project)
    RewardModelRun.objects.filter(pk=run.pk).update(report=report)
    run.refresh_from_db()
    return run


def logged_in_client(user) -> Client:
    """A Django test client with ``user`` logged in."""
    client = Client()
    client.force_login(user)
    return client


def follow_next(api, url) -> list[dict]:
    """Every response from ``url`` on, following each answer's ``next`` until it is null (lists, metrics)."""
    responses = []
    while url:
        response = api.get(url)
        assert response.status_code == 200, response.content
        responses.append(response.json())
        url = responses[-1]["next"]
    return responses


def local_model(settings, root, name: str, *files: str):
    """A model folder ``name`` under ``root`` (``config.json`` and ``files``, empty: nothing loads them here),
    with ``root`` put first in MORM_MODEL_DIRS; returns the folder."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    for file in ("config.json", *files):
        (folder / file).touch()
    if root not in settings.MORM_MODEL_DIRS:
        settings.MORM_MODEL_DIRS = [root, *settings.MORM_MODEL_DIRS]
    return folder
