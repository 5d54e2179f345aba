"""rm_worker.deliver_webhook: the worker's entry point sends one attempt to a real receiver and logs it;
the same task delivered twice sends once."""

import pytest

from annotate_app.models import WebhookDelivery
from annotate_app.services.webhooks import webhook_create, webhook_event_emit
from rm_worker.tasks import deliver_webhook
from tests.factories import make_project
from tests.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.django_db


def test_the_task_delivers_a_signed_attempt_once(settings, sent, django_capture_on_commit_callbacks):
    settings.MORM_WEBHOOKS_ALLOW_PRIVATE = True
    project = make_project()
    with webhook_receiver(200) as receiver:
        webhook_create(project=project, url=receiver.url, events=["policy_run.finished"])
        with django_capture_on_commit_callbacks(execute=True):
            webhook_event_emit(project_id=project.pk, event="policy_run.finished", data={"run": 1})
        [(name, delivery_id)] = sent
        assert name == "rm_worker.deliver_webhook"
        assert deliver_webhook(delivery_id) == "succeeded"
        assert deliver_webhook(delivery_id) == "skipped"
    [got] = receiver.received
    assert got.headers["webhook-id"] == WebhookDelivery.objects.get().message_id
    assert got.headers["webhook-signature"].startswith("v1,")


def test_a_failed_attempt_queues_the_next_one_by_name(settings, sent, django_capture_on_commit_callbacks):
    settings.MORM_WEBHOOKS_ALLOW_PRIVATE = True
    project = make_project()
    with webhook_receiver(500) as receiver:
        webhook_create(project=project, url=receiver.url, events=["policy_run.finished"])
        with django_capture_on_commit_callbacks(execute=True):
            webhook_event_emit(project_id=project.pk, event="policy_run.finished", data={"run": 1})
        with django_capture_on_commit_callbacks(execute=True):
            assert deliver_webhook(sent[0][1]) == "failed"
    retry = WebhookDelivery.objects.get(attempt=2)
    assert sent[1] == ("rm_worker.deliver_webhook", retry.pk) and retry.status == "pending"
