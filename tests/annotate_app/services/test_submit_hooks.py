"""What a submit sets off besides storing it: the automatic retrain's label count (``retrain_every``) and the
``annotation.created`` webhook, each only when the project asks for it, read in statements a submit makes anyway."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotate_app.models import Project, WebhookDelivery, WebhookEvent
from annotate_app.services.annotations import JudgmentInput, annotation_submit
from annotate_app.services.queue import task_next_for
from annotate_app.services.webhooks import webhook_create
from tests.factories import make_project, member

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
