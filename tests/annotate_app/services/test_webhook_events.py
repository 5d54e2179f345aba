"""The events the app emits to webhooks: snapshot.created when a snapshot is written, reward_run.finished and
policy_run.finished wherever a run ends (on the worker, cancelled while queued, given up on by recovery)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from annotate_app.models import RewardModelRun, RunStatus, WebhookDelivery, WebhookEvent
from annotate_app.services.policy_runs import policy_run_create
from annotate_app.services.recovery import work_recover
from annotate_app.services.reward_runs import reward_run_create
from annotate_app.services.runs import run_cancel
from annotate_app.services.snapshots import snapshot_create
from annotate_app.services.webhooks import webhook_create
from rm_worker.runtime import run_execute
from tests.factories import labelled_project, succeeded_reward_run

pytestmark = pytest.mark.django_db

EVERY_EVENT = list(WebhookEvent.values)


@pytest.fixture
def project():
    project = labelled_project()
    webhook_create(project=project, url="https://93.184.215.14/hook", events=EVERY_EVENT)
    return project


def _messages(event: str) -> list[dict]:
    return [delivery.payload["data"] for delivery in WebhookDelivery.objects.filter(event=event).order_by("id")]


def test_a_written_snapshot_is_announced_with_its_counts_and_hash(project, sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        snapshot = snapshot_create(project=project, format="jsonl")
    [data] = _messages("snapshot.created")
    assert data == {"project": project.slug, "snapshot": snapshot.pk, "format": "jsonl", "objective": None,
                    "rows": snapshot.manifest["rows"], "sha256": snapshot.sha256, "size_bytes": snapshot.size_bytes}
    assert ("rm_worker.deliver_webhook", WebhookDelivery.objects.get().pk) in sent


def test_a_queued_snapshot_is_announced_only_once_written(project, sent, settings):
    settings.MORM_EXPORT_BACKGROUND_ROWS = 1
    snapshot_create(project=project, format="jsonl")
    assert _messages("snapshot.created") == []


def test_a_run_that_ends_on_the_worker_is_announced_with_its_final_metrics(project, sent):
    run = reward_run_create(project=project, enqueue=False)

    def train(run, writer, should_stop):
        return RunStatus.SUCCEEDED, {"final_metrics": {"eval/accuracy/helpful": 0.75}}

    assert run_execute(RewardModelRun, run.pk, train) == RunStatus.SUCCEEDED
    [data] = _messages("reward_run.finished")
    assert data["run"] == run.pk and data["snapshot"] == run.snapshot_id and data["status"] == "succeeded"
    assert data["final_metrics"] == {"eval/accuracy/helpful": 0.75} and data["finished_at"]


def test_a_failed_run_is_announced_with_its_error(project, sent):
    run = reward_run_create(project=project, enqueue=False)

    def train(run, writer, should_stop):
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError):
        run_execute(RewardModelRun, run.pk, train)
    [data] = _messages("reward_run.finished")
    assert data["status"] == "failed" and data["error"] == "RuntimeError: out of memory"


def test_a_queued_policy_run_cancelled_is_announced_once(project, sent):
    run = policy_run_create(project=project, reward_run=succeeded_reward_run(project), enqueue=False)
    run_cancel(run=run)
    run_cancel(run=run)  # already finished: nothing new
    [data] = _messages("policy_run.finished")
    assert data["run"] == run.pk and data["status"] == "cancelled" and data["reward_run"] == run.reward_run_id
    assert _messages("reward_run.finished") == []


def test_a_run_recovery_gives_up_on_is_announced(project, sent, settings):
    run = reward_run_create(project=project, enqueue=False)
    RewardModelRun.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING, attempts=settings.MORM_MAX_ATTEMPTS, heartbeat_at=timezone.now() - timedelta(hours=1))
    work_recover()
    [data] = _messages("reward_run.finished")
    assert data["status"] == "failed" and "attempts" in data["error"]
