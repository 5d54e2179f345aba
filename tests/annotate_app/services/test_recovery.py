"""Crash recovery in one process: stale work is queued again, failed or cancelled; a resumed run
continues at its checkpoint; a given-up attempt writes nothing; cancel ends a run whose worker died.

The same with a real worker killed by SIGKILL: tests/rm_worker/test_crash_recovery.py.
"""

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from annotate_app.models import RewardModelRun, Role, RunStatus, Snapshot, SnapshotStatus
from annotate_app.services.recovery import heartbeat, work_recover
from annotate_app.services.reward_runs import reward_run_create
from annotate_app.services.snapshots import snapshot_create
from rm_worker.reward_runner import run_reward_training
from rm_worker.runtime import MetricsWriter, cancel_poller, run_claim, run_finish
from tests.factories import member, trainable_project
from tests.tiny_models import tiny_bert_factory

TINY = {"max_steps": 8, "eval_every": 3, "log_every": 1, "batch_size": 2, "max_length": 32, "eval_fraction": 0.25}


class WorkerKilled(BaseException):
    """Stands for SIGKILL: nothing in the run's own code catches it, so nothing is recorded."""


@pytest.fixture
def project(settings, tmp_path):
    settings.MORM_ARTIFACTS_DIR = tmp_path / "artifacts"
    return trainable_project()


def _running(project, *, attempts=1, beat_seconds_ago=600, **fields):
    run = reward_run_create(project=project, overrides=TINY, enqueue=False)
    RewardModelRun.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING, attempts=attempts, heartbeat_at=timezone.now() - timedelta(seconds=beat_seconds_ago),
        **fields)
    return RewardModelRun.objects.get(pk=run.pk)


@pytest.mark.django_db
def test_stale_runs_are_queued_again_failed_or_cancelled_and_live_ones_left_alone(
    project, sent, django_capture_on_commit_callbacks
):
    resumed = _running(project)
    exhausted = _running(project, attempts=3)
    cancelled = _running(project, cancel_requested=True)
    alive = _running(project, beat_seconds_ago=1)
    with django_capture_on_commit_callbacks(execute=True):
        counts = work_recover()
    assert counts["reward_runs"] == 3 and counts["policy_runs"] == 0
    # The run queued again is sent to a worker; the two it ended let the loop check whether a round is due.
    assert sorted(sent) == [("rm_worker.start_round_if_due", project.pk)] * 2 + [("rm_worker.train_reward_model",
                                                                                  resumed.pk)]
    statuses = dict(RewardModelRun.objects.values_list("pk", "status"))
    assert statuses[resumed.pk] == RunStatus.QUEUED and statuses[alive.pk] == RunStatus.RUNNING
    exhausted.refresh_from_db()
    assert exhausted.status == RunStatus.FAILED and "on each of its 3 attempts" in exhausted.error
    cancelled.refresh_from_db()
    assert cancelled.status == RunStatus.CANCELLED and "Its worker stopped" in cancelled.error
    assert work_recover()["reward_runs"] == 0  # idempotent


@pytest.mark.django_db
def test_a_run_killed_after_a_checkpoint_resumes_there(project, sent, monkeypatch, django_capture_on_commit_callbacks):
    run = reward_run_create(project=project, overrides=TINY, enqueue=False)
    original = MetricsWriter.progress

    def dies_at_step_5(self, step, total):
        original(self, step, total)
        if step == 5:  # after the checkpoint of step 3
            self.flush()
            raise WorkerKilled

    monkeypatch.setattr(MetricsWriter, "progress", dies_at_step_5)
    with pytest.raises(WorkerKilled):
        run_reward_training(run.pk, backbone_factory=tiny_bert_factory)
    monkeypatch.setattr(MetricsWriter, "progress", original)
    assert RewardModelRun.objects.get(pk=run.pk).status == RunStatus.RUNNING
    RewardModelRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        work_recover()
    assert sent == [("rm_worker.train_reward_model", run.pk)]

    assert run_reward_training(run.pk, backbone_factory=tiny_bert_factory) == RunStatus.SUCCEEDED
    run.refresh_from_db()
    assert run.attempts == 2 and run.resumed_from_step == 3 and run.step == 8
    steps = list(run.metric_points.filter(key="train/loss").values_list("step", flat=True))
    assert steps == list(range(1, 9))  # steps 4 and 5 of the first attempt were dropped, then logged again


@pytest.mark.django_db
def test_a_given_up_attempt_stops_and_records_nothing(project):
    run = reward_run_create(project=project, overrides=TINY, enqueue=False)
    first = run_claim(RewardModelRun, run.pk)
    RewardModelRun.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED)  # the recovery gave up on it
    second = run_claim(RewardModelRun, run.pk)
    assert cancel_poller(first)() and not cancel_poller(second)()
    run_finish(first, status=RunStatus.FAILED, error="late")
    assert RewardModelRun.objects.get(pk=run.pk).status == RunStatus.RUNNING
    run_finish(second, status=RunStatus.SUCCEEDED)
    assert RewardModelRun.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED


@pytest.mark.django_db
def test_cancel_ends_a_run_whose_worker_died_and_asks_a_live_one(project, api):
    api.force_authenticate(member(project, Role.RESEARCHER))
    dead, alive = _running(project), _running(project, beat_seconds_ago=1)
    url = f"/api/v1/projects/{project.slug}/reward-runs/{{}}/cancel"
    body = api.post(url.format(dead.pk)).json()
    assert body["status"] == "cancelled" and "Its worker stopped" in body["error"] and body["attempts"] == 1
    body = api.post(url.format(alive.pk)).json()
    assert body["status"] == "running" and body["cancel_requested"]


@pytest.mark.django_db
def test_stale_exports_are_built_again_or_failed_and_a_runs_own_goes_with_its_run(
    project, sent, django_capture_on_commit_callbacks
):
    export = snapshot_create(project=project, format="csv", background=True, enqueue=False)
    exhausted = snapshot_create(project=project, format="csv", background=True, enqueue=False)
    run = _running(project)  # its snapshot of the latest labels was being built when the worker died
    long_ago = timezone.now() - timedelta(hours=1)
    Snapshot.objects.filter(pk__in=[export.pk, run.snapshot_id]).update(
        status=SnapshotStatus.RUNNING, attempts=1, heartbeat_at=long_ago)
    Snapshot.objects.filter(pk=exhausted.pk).update(status=SnapshotStatus.RUNNING, attempts=3, heartbeat_at=long_ago)
    with django_capture_on_commit_callbacks(execute=True):
        counts = work_recover()
    assert counts["snapshots"] == 2 and counts["reward_runs"] == 1
    assert sorted(sent) == [("rm_worker.build_snapshot", export.pk), ("rm_worker.train_reward_model", run.pk)]
    statuses = dict(Snapshot.objects.values_list("pk", "status"))
    assert statuses[export.pk] == statuses[run.snapshot_id] == SnapshotStatus.QUEUED
    exhausted.refresh_from_db()
    assert exhausted.status == SnapshotStatus.FAILED and "create it again" in exhausted.error


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_beats_from_a_thread_until_the_work_ends(project, settings):
    settings.MORM_HEARTBEAT_SECONDS = 0.05
    run = _running(project)
    before = run.heartbeat_at
    attempt = RewardModelRun.objects.filter(pk=run.pk)
    beaten = threading.Event()
    with heartbeat(attempt):
        for _ in range(200):
            if attempt.get().heartbeat_at > before:
                beaten.set()
                break
            beaten.wait(0.05)
    assert beaten.is_set()
    assert not any(thread.name == "morm-heartbeat" for thread in threading.enumerate())  # stopped with the work


@pytest.mark.django_db
def test_a_run_on_the_latest_labels_builds_its_snapshot_on_the_worker(project):
    run = reward_run_create(project=project, overrides=TINY, enqueue=False)
    assert run.snapshot.status == SnapshotStatus.QUEUED and not run.snapshot.file  # nothing built in the request
    assert run_reward_training(run.pk, backbone_factory=tiny_bert_factory) == RunStatus.SUCCEEDED
    run.snapshot.refresh_from_db()
    assert run.snapshot.status == SnapshotStatus.READY and run.snapshot.sha256
