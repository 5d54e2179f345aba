"""What a submit sets off besides storing it: the automatic retrain's label count (``retrain_every``) and the
``annotation.created`` webhook, each only when the project asks for it, read in statements a submit makes anyway;
and which submits are one statement on Postgres (the common case) and which take the general path."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from annotate_app import access
from annotate_app.models import Annotation, Project, Task, TaskStatus, WebhookDelivery, WebhookEvent
from annotate_app.services.annotations import JudgmentInput, annotation_submit
from annotate_app.services.queue import task_next_for
from annotate_app.services.webhooks import webhook_create
from tests.conftest import require
from tests.factories import make_project, member
from tests.queue_checks import assert_counts_match_a_recount

pytestmark = pytest.mark.django_db

ROUND_TASK = "rm_worker.start_round_if_due"
HARMLESS_A = {"helpful": JudgmentInput("tie"), "harmless": JudgmentInput("A", 2), "honest": JudgmentInput("tie")}


def _submit(project: Project):
    user = member(project)
    task = task_next_for(project=project, user=user)
    return annotation_submit(task=task, user=user, judgments=HARMLESS_A), task


def test_every_retrain_every_new_labels_ask_a_worker_for_a_round(sent, django_capture_on_commit_callbacks):
    project = make_project(comparisons=6, overlap_k=1, gold_rate=0)
    Project.objects.filter(pk=project.pk).update(retrain_every=2)
    project.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(5):
            _submit(project)
    assert [task for task in sent if task[0] == ROUND_TASK] == [(ROUND_TASK, project.pk)] * 2
    assert Project.objects.get(pk=project.pk).labels_since_retrain == 5


def test_without_retrain_every_a_submit_counts_nothing_and_asks_for_nothing(sent, django_capture_on_commit_callbacks):
    project = make_project(comparisons=3, overlap_k=1, gold_rate=0)
    with django_capture_on_commit_callbacks(execute=True):
        _submit(project)
    assert Project.objects.get(pk=project.pk).labels_since_retrain == 0
    assert not [task for task in sent if task[0] == ROUND_TASK]


def test_a_webhook_listening_for_annotations_gets_the_judgments_in_canonical_orientation(settings, sent):
    settings.MORM_WEBHOOKS_ALLOW_PRIVATE = True
    project = make_project(comparisons=2, overlap_k=1, gold_rate=0, shuffle_sides=True)
    listening = webhook_create(project=project, url="http://127.0.0.1:9/hook", events=[WebhookEvent.ANNOTATION_CREATED])
    webhook_create(project=project, url="http://127.0.0.1:9/other", events=[WebhookEvent.SNAPSHOT_CREATED])
    result, task = _submit(project)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.webhook, delivery.event) == (listening, WebhookEvent.ANNOTATION_CREATED)
    data = delivery.payload["data"]
    assert (data["annotation_id"], data["task_id"], data["comparison_id"]) == (
        result.annotation.pk, task.pk, task.comparison_id)
    harmless = next(judgment for judgment in data["judgments"] if judgment["objective"] == "harmless")
    assert harmless["choice"] == ("B" if task.shown_swapped else "A")  # the annotator saw A on the left


def test_a_project_whose_webhooks_are_paused_pays_no_query_for_them(settings):
    settings.MORM_WEBHOOKS_ALLOW_PRIVATE = True

    def submit_queries(project: Project) -> int:
        user = member(project)
        task = task_next_for(project=project, user=user)
        with CaptureQueriesContext(connection) as queries:
            annotation_submit(task=task, user=user, judgments=HARMLESS_A)
        return len(queries)

    plain = make_project(comparisons=1, overlap_k=1, gold_rate=0)
    paused = make_project(comparisons=1, overlap_k=1, gold_rate=0)
    hook = webhook_create(project=paused, url="http://127.0.0.1:9/hook", events=[WebhookEvent.ANNOTATION_CREATED])
    hook.active = False
    hook.save(update_fields=["active"])
    assert submit_queries(paused) == submit_queries(plain)
    assert not WebhookDelivery.objects.exists()


def _statements_of_a_submit(project: Project, user=None) -> tuple[int, object]:
    """The statements a submit sends when its task is loaded as the API and the labeling page load it."""
    user = user or member(project)
    task = access.task_for(user, task_next_for(project=project, user=user).pk)
    with CaptureQueriesContext(connection) as queries:
        result = annotation_submit(task=task, user=user, judgments=HARMLESS_A)
    return len([q for q in queries.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")]), result


@pytest.mark.postgres
def test_on_postgres_a_common_submit_is_one_statement_and_stores_what_the_general_path_stores():
    require(connection.vendor == "postgresql", "the one-statement submit is Postgres' (set DATABASE_URL)")
    project = make_project(comparisons=2, overlap_k=2, gold_rate=0, shuffle_sides=True)
    first = member(project)
    statements, result = _statements_of_a_submit(project, first)
    assert statements == 1
    annotation = Annotation.objects.get(pk=result.annotation.pk)
    task = Task.objects.get(pk=annotation.task_id)
    assert task.status == TaskStatus.SUBMITTED and task.finished_at is not None
    stored = {j.objective.key: (j.choice, j.strength) for j in annotation.judgments.select_related("objective")}
    assert stored["harmless"] == ("B" if task.shown_swapped else "A", 2) and stored["helpful"] == ("tie", None)
    assert_counts_match_a_recount(project)

    # The second submit of a comparison with k=2 completes it: the project row moves too, so the general path.
    statements, _ = _statements_of_a_submit(project, member(project))
    assert statements > 1
    project.refresh_from_db()
    assert project.complete_count == 1
    assert_counts_match_a_recount(project)


@pytest.mark.postgres
def test_a_submit_that_is_not_the_common_case_takes_the_general_path(settings):
    require(connection.vendor == "postgresql", "the one-statement submit is Postgres' (set DATABASE_URL)")
    settings.MORM_WEBHOOKS_ALLOW_PRIVATE = True
    listened = make_project(comparisons=1, overlap_k=2, gold_rate=0)
    webhook_create(project=listened, url="http://127.0.0.1:9/hook", events=[WebhookEvent.ANNOTATION_CREATED])
    statements, _ = _statements_of_a_submit(listened)
    assert statements > 1 and WebhookDelivery.objects.count() == 1

    counted = make_project(comparisons=1, overlap_k=2, gold_rate=0)
    Project.objects.filter(pk=counted.pk).update(retrain_every=5)
    statements, _ = _statements_of_a_submit(counted)
    assert statements > 1 and Project.objects.get(pk=counted.pk).labels_since_retrain == 1

    # A task reclaimed after the API loaded it as leased: the statement finds it expired, writes nothing, and the
    # general path retakes the free slot.
    reclaimed = make_project(comparisons=1, overlap_k=2, gold_rate=0)
    holder = member(reclaimed)
    task = access.task_for(holder, task_next_for(project=reclaimed, user=holder).pk)
    Task.objects.filter(pk=task.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    task_next_for(project=reclaimed, user=member(reclaimed))  # reclaims it on its way
    assert Task.objects.get(pk=task.pk).status == TaskStatus.EXPIRED
    annotation_submit(task=task, user=holder, judgments=HARMLESS_A)
    assert Task.objects.get(pk=task.pk).status == TaskStatus.SUBMITTED
    assert_counts_match_a_recount(reclaimed)
