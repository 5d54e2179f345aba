"""Webhooks through their service: subscribing, emitting, signed delivery to a real receiver, retries with
backoff (each attempt logged), and the refusal of private targets.

Deliveries are run by calling the worker's service directly for each attempt the previous one queued:
the backoff is checked on the countdowns queued, never waited for.
"""

import base64
import hashlib
import hmac
import re
import socket
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook as Verifier

from annotate_app.models import DeliveryStatus, Webhook, WebhookDelivery
from annotate_app.services import dispatch
from annotate_app.services.recovery import work_recover
from annotate_app.services.webhooks import (
    MAX_WEBHOOKS_PER_PROJECT,
    webhook_create,
    webhook_delete,
    webhook_deliver,
    webhook_event_emit,
    webhook_retry_delay,
    webhook_set_active,
)
from tests.factories import make_project
from tests.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch, django_capture_on_commit_callbacks):
    """Delivery attempts sent to the worker, as (delivery id, countdown); sent when the test's changes commit."""
    attempts = []

    class Broker:
        def send_task(self, name, args, countdown=None):
            assert name == dispatch.WEBHOOK_TASK
            attempts.append((args[0], countdown))

    monkeypatch.setattr(dispatch, "current_app", Broker())
    return attempts


@pytest.fixture
def allow_private(settings):
    settings.MORM_WEBHOOKS_ALLOW_PRIVATE = True


def _emit(project, event="snapshot.created", **data):
    with transaction.atomic():
        webhook_event_emit(project_id=project.pk, event=event, data=data or {"snapshot": 1})


def _run_attempts(queued, django_capture_on_commit_callbacks) -> list[int | None]:
    """Deliver every queued attempt in turn, the retries they queue included; the countdowns queued."""
    countdowns, done = [], 0
    while done < len(queued):
        delivery_id, countdown = queued[done]
        countdowns.append(countdown)
        done += 1
        with django_capture_on_commit_callbacks(execute=True):
            webhook_deliver(delivery_id=delivery_id)
    return countdowns


def _emit_and_queue(project, django_capture_on_commit_callbacks, **data):
    with django_capture_on_commit_callbacks(execute=True):
        _emit(project, **data)


def test_a_delivery_reaches_a_real_receiver_signed_per_standard_webhooks(
        allow_private, queued, django_capture_on_commit_callbacks):
    project = make_project()
    with webhook_receiver(200) as receiver:
        webhook = webhook_create(project=project, url=receiver.url, events=["snapshot.created"])
        _emit_and_queue(project, django_capture_on_commit_callbacks, snapshot=41, rows=3)
        assert _run_attempts(queued, django_capture_on_commit_callbacks) == [None]

    [got] = receiver.received
    assert got.path == "/hooks/morm?team=7" and got.headers["content-type"] == "application/json"
    # The receiver checks it as any Standard Webhooks consumer would (the reference library) ...
    payload = Verifier(webhook.secret).verify(got.body, got.headers)
    assert payload["type"] == "snapshot.created"
    assert payload["data"] == {"project": project.slug, "snapshot": 41, "rows": 3}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT.*", payload["timestamp"])
    # ... and by hand: v1,<base64 HMAC-SHA256 of "id.timestamp.body"> keyed by the secret after whsec_.
    message_id, timestamp = got.headers["webhook-id"], got.headers["webhook-timestamp"]
    assert re.fullmatch(r"msg_[0-9a-f]{32}", message_id) and re.fullmatch(r"\d{10}", timestamp)
    key = base64.b64decode(webhook.secret.removeprefix("whsec_"))
    expected = hmac.new(key, f"{message_id}.{timestamp}.{got.body}".encode(), hashlib.sha256).digest()
    assert got.headers["webhook-signature"] == "v1," + base64.b64encode(expected).decode()
    with pytest.raises(Exception, match="signature"):
        Verifier(webhook.secret).verify(got.body.replace("41", "42"), got.headers)

    [delivery] = WebhookDelivery.objects.filter(webhook=webhook)
    assert (delivery.status, delivery.attempt, delivery.response_status, delivery.message_id) == (
        DeliveryStatus.SUCCEEDED, 1, 200, message_id)
    assert delivery.response_body == "thanks" and delivery.duration_ms is not None and delivery.error == ""


def test_the_secret_is_whsec_and_base64_of_enough_random_bytes(allow_private):
    project = make_project()
    first = webhook_create(project=project, url="http://127.0.0.1:9/a", events=["annotation.created"])
    second = webhook_create(project=project, url="http://127.0.0.1:9/a", events=["annotation.created"])
    assert first.secret.startswith("whsec_") and first.secret != second.secret
    assert len(base64.b64decode(first.secret.removeprefix("whsec_"))) >= 24


def test_a_failing_receiver_is_retried_with_backoff_and_every_attempt_is_logged(
        allow_private, queued, django_capture_on_commit_callbacks):
    project = make_project()
    with webhook_receiver(500, 500, 200) as receiver:
        webhook = webhook_create(project=project, url=receiver.url, events=["snapshot.created"])
        _emit_and_queue(project, django_capture_on_commit_callbacks)
        countdowns = _run_attempts(queued, django_capture_on_commit_callbacks)

    assert countdowns == [None, webhook_retry_delay(1), webhook_retry_delay(2)] == [None, 5, 25]
    log = list(webhook.deliveries.order_by("attempt"))
    assert [(d.attempt, d.status, d.response_status) for d in log] == [
        (1, "failed", 500), (2, "failed", 500), (3, "succeeded", 200)]
    assert log[0].error == "HTTP 500" and log[0].response_body == "receiver is down for maintenance"
    assert len({d.message_id for d in log}) == 1
    # Each retry was due its backoff after the attempt before it failed.
    assert (log[1].next_attempt_at - log[0].finished_at).total_seconds() == 5
    assert (log[2].next_attempt_at - log[1].finished_at).total_seconds() == 25
    # Every attempt carried the same webhook-id, each signed anew (and verifiable).
    assert {got.headers["webhook-id"] for got in receiver.received} == {log[0].message_id}
    for got in receiver.received:
        Verifier(webhook.secret).verify(got.body, got.headers)


def test_a_receiver_that_always_fails_gets_max_attempts_then_the_message_is_failed(
        allow_private, settings, queued, django_capture_on_commit_callbacks):
    settings.MORM_WEBHOOK_MAX_ATTEMPTS = 4
    project = make_project()
    with webhook_receiver(503) as receiver:
        webhook = webhook_create(project=project, url=receiver.url, events=["snapshot.created"])
        _emit_and_queue(project, django_capture_on_commit_callbacks)
        countdowns = _run_attempts(queued, django_capture_on_commit_callbacks)
    assert countdowns == [None, 5, 25, 125]
    assert len(receiver.received) == 4
    assert [(d.attempt, d.status) for d in webhook.deliveries.order_by("attempt")] == [
        (n, "failed") for n in (1, 2, 3, 4)]


def test_the_backoff_grows_five_fold_and_stops_growing_at_six_hours():
    assert [webhook_retry_delay(n) for n in range(1, 10)] == [
        5, 25, 125, 625, 3125, 15625, 21600, 21600, 21600]


def test_a_connection_error_is_logged_and_retried(allow_private, queued, django_capture_on_commit_callbacks):
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    project = make_project()
    webhook = webhook_create(project=project, url=f"http://127.0.0.1:{port}/", events=["snapshot.created"])
    _emit_and_queue(project, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        first = webhook_deliver(delivery_id=queued[0][0])
    assert first.status == "failed" and first.response_status is None
    assert first.error.startswith("ConnectionRefusedError")
    assert queued[1][1] == 5 and webhook.deliveries.get(attempt=2).status == "pending"


def test_an_attempt_is_sent_once_even_if_its_task_comes_twice(allow_private, queued,
                                                             django_capture_on_commit_callbacks):
    project = make_project()
    with webhook_receiver(200) as receiver:
        webhook_create(project=project, url=receiver.url, events=["snapshot.created"])
        _emit_and_queue(project, django_capture_on_commit_callbacks)
        assert webhook_deliver(delivery_id=queued[0][0]).status == "succeeded"
        assert webhook_deliver(delivery_id=queued[0][0]) is None
    assert len(receiver.received) == 1


def test_a_deleted_webhook_is_sent_nothing_and_a_paused_one_drops_its_retries(
        allow_private, queued, django_capture_on_commit_callbacks):
    project = make_project()
    with webhook_receiver(200) as receiver:
        deleted = webhook_create(project=project, url=receiver.url, events=["snapshot.created"])
        _emit_and_queue(project, django_capture_on_commit_callbacks)
        webhook_delete(webhook=deleted)
        assert webhook_deliver(delivery_id=queued[0][0]) is None
        paused = webhook_create(project=project, url=receiver.url, events=["snapshot.created"])
        _emit_and_queue(project, django_capture_on_commit_callbacks)
        webhook_set_active(webhook=paused, active=False)
        assert webhook_deliver(delivery_id=queued[1][0]).error == "The webhook is paused."
    assert receiver.received == [] and len(queued) == 2


def test_emit_goes_to_the_projects_active_webhooks_of_that_event_only(allow_private, queued,
                                                                      django_capture_on_commit_callbacks):
    project, other = make_project(), make_project()
    url = "http://127.0.0.1:9/hook"
    snapshots = webhook_create(project=project, url=url, events=["snapshot.created", "reward_run.finished"])
    webhook_create(project=project, url=url, events=["policy_run.finished"])
    webhook_set_active(webhook=webhook_create(project=project, url=url, events=["snapshot.created"]), active=False)
    webhook_create(project=other, url=url, events=["snapshot.created"])
    _emit_and_queue(project, django_capture_on_commit_callbacks)
    [delivery] = WebhookDelivery.objects.all()
    assert delivery.webhook == snapshots and queued == [(delivery.pk, None)]
    assert delivery.payload["type"] == delivery.event == "snapshot.created"


def test_emit_costs_one_query_when_the_project_has_no_webhook(queued, django_assert_num_queries):
    project = make_project()
    with django_assert_num_queries(1):
        webhook_event_emit(project_id=project.pk, event="annotation.created", data={"annotation": 1})


def test_emit_in_a_transaction_that_rolls_back_sends_nothing(allow_private, queued,
                                                           django_capture_on_commit_callbacks):
    project = make_project()
    webhook_create(project=project, url="http://127.0.0.1:9/", events=["annotation.created"])
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        with transaction.atomic():
            webhook_event_emit(project_id=project.pk, event="annotation.created", data={"annotation": 1})
            raise RuntimeError("the submit failed after the event")
    assert queued == [] and not WebhookDelivery.objects.exists()


def test_an_unknown_event_is_a_programming_error():
    with pytest.raises(ValueError, match="annotation.deleted"):
        webhook_event_emit(project_id=1, event="annotation.deleted", data={})


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook", "http://10.1.2.3/hook", "http://169.254.169.254/latest/meta-data",
    "http://[::1]:8000/", "http://[::ffff:127.0.0.1]/", "https://192.168.0.10/", "http://0.0.0.0/",
    "http://224.0.0.1/", "http://100.64.0.1/", "http://localhost:8000/",
])
def test_private_loopback_link_local_and_multicast_targets_are_refused_at_creation(url):
    with pytest.raises(ValidationError) as refused:
        webhook_create(project=make_project(), url=url, events=["snapshot.created"])
    assert set(refused.value.message_dict) == {"url"}
    assert "MORM_WEBHOOKS_ALLOW_PRIVATE" in refused.value.message_dict["url"][0]
    assert not Webhook.objects.exists()


@pytest.mark.parametrize("url, message", [
    ("ftp://93.184.215.14/hook", "http://"),
    ("file:///etc/passwd", "http://"),
    ("http:///nohost", "http://"),
    ("http://93.184.215.14:99999/", "Not a valid URL: Port out of range"),
    ("http://[::1/", "Not a valid URL: Invalid IPv6 URL"),
    ("http://93.184.215.14/a\x00b", "control characters"),
    ("http://93.184.215.14/a b", "spaces"),
    ("http://" + "a" * 70 + ".example/", "does not resolve"),
    ("https://no-such-host.invalid/hook", "does not resolve"),
])
def test_other_bad_urls_are_refused_naming_url(url, message):
    with pytest.raises(ValidationError) as refused:
        webhook_create(project=make_project(), url=url, events=["snapshot.created"])
    assert message in refused.value.message_dict["url"][0]


def test_a_public_address_is_accepted_without_the_setting():
    webhook = webhook_create(project=make_project(), url=" https://93.184.215.14/hook ", events=["snapshot.created"])
    assert webhook.url == "https://93.184.215.14/hook"


@pytest.mark.parametrize("events, message", [
    ([], "at least one"), (["snapshot.created", "nope"], "Unknown event: nope"),
])
def test_events_must_be_known_and_not_none(allow_private, events, message):
    with pytest.raises(ValidationError) as refused:
        webhook_create(project=make_project(), url="http://127.0.0.1:9/", events=events)
    assert message in refused.value.message_dict["events"][0]


def test_a_project_has_a_bounded_number_of_webhooks(allow_private):
    project = make_project()
    for _ in range(MAX_WEBHOOKS_PER_PROJECT):
        webhook_create(project=project, url="http://127.0.0.1:9/", events=["snapshot.created"])
    with pytest.raises(ValidationError, match="at most"):
        webhook_create(project=project, url="http://127.0.0.1:9/", events=["snapshot.created"])


def test_a_target_that_turned_private_is_refused_at_delivery(settings, queued, django_capture_on_commit_callbacks):
    settings.MORM_WEBHOOKS_ALLOW_PRIVATE = True
    project = make_project()
    with webhook_receiver(200) as receiver:
        webhook_create(project=project, url=receiver.url, events=["snapshot.created"])
        _emit_and_queue(project, django_capture_on_commit_callbacks)
        settings.MORM_WEBHOOKS_ALLOW_PRIVATE = False  # as if the name now resolved inside
        with django_capture_on_commit_callbacks(execute=True):
            attempt = webhook_deliver(delivery_id=queued[0][0])
    assert receiver.received == []
    assert attempt.status == "failed" and "loopback" in attempt.error and attempt.error.startswith("WebhookTarget")


def test_recovery_resends_an_attempt_whose_task_was_lost_once_per_stale_period(
        allow_private, queued, settings, django_capture_on_commit_callbacks):
    project = make_project()
    webhook_create(project=project, url="http://127.0.0.1:9/", events=["snapshot.created"])
    _emit_and_queue(project, django_capture_on_commit_callbacks)
    _emit_and_queue(project, django_capture_on_commit_callbacks)
    lost, recent = WebhookDelivery.objects.order_by("id")
    long_ago = timezone.now() - timedelta(seconds=settings.MORM_STALE_AFTER_SECONDS + 60)
    WebhookDelivery.objects.filter(pk=lost.pk).update(next_attempt_at=long_ago)
    queued.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert work_recover()["webhook_deliveries"] == 1
        assert work_recover()["webhook_deliveries"] == 0  # due again from now: not resent at every pass
    assert queued == [(lost.pk, None)]


def test_recovery_fails_an_attempt_cut_off_by_its_worker_and_queues_the_next(
        allow_private, queued, settings, django_capture_on_commit_callbacks):
    project = make_project()
    webhook_create(project=project, url="http://127.0.0.1:9/", events=["snapshot.created"])
    _emit_and_queue(project, django_capture_on_commit_callbacks)
    taken_long_ago = timezone.now() - timedelta(seconds=settings.MORM_STALE_AFTER_SECONDS + 600)
    WebhookDelivery.objects.update(sent_at=taken_long_ago)
    with django_capture_on_commit_callbacks(execute=True):
        assert work_recover()["webhook_deliveries"] == 1
    first, second = WebhookDelivery.objects.order_by("attempt")
    assert (first.status, first.error) == ("failed", "The worker stopped during this attempt.")
    assert (second.attempt, second.status) == (2, "pending") and queued[-1] == (second.pk, 5)
