"""Creating work sends its Celery task by name once the transaction commits, and only then.

That the names are tasks the worker registers, on the right queues: tests/rm_worker/test_task_names.py.
"""

import pytest
from django.db import transaction

from annotate_app.models import RewardModelRun, SnapshotStatus
from annotate_app.services.policy_runs import policy_run_create
from annotate_app.services.reward_runs import reward_run_create
from annotate_app.services.snapshots import snapshot_create
from tests.factories import labelled_project, succeeded_reward_run

pytestmark = pytest.mark.django_db


def test_runs_and_background_exports_send_their_task_after_commit(sent, settings, django_capture_on_commit_callbacks):
    project = labelled_project()
    settings.MORM_EXPORT_BACKGROUND_ROWS = 1
    with django_capture_on_commit_callbacks(execute=True):
        reward_run = reward_run_create(project=project)
        assert sent == []  # nothing before commit: a worker would not see the row yet
    done = succeeded_reward_run(project)
    with django_capture_on_commit_callbacks(execute=True):
        policy_run = policy_run_create(project=project, reward_run=done)
    with django_capture_on_commit_callbacks(execute=True):
        snapshot = snapshot_create(project=project, format="jsonl")
    assert snapshot.status == SnapshotStatus.QUEUED
    # The reward run's own snapshot is built by its training task, not sent on its own.
    assert sent == [("rm_worker.train_reward_model", reward_run.pk), ("rm_worker.run_ppo", policy_run.pk),
                    ("rm_worker.build_snapshot", snapshot.pk)]


def test_nothing_is_sent_when_the_transaction_rolls_back(sent, django_capture_on_commit_callbacks):
    project = labelled_project()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        with transaction.atomic():
            reward_run_create(project=project)
            raise RuntimeError("the request failed after the run was created")
    assert sent == [] and not RewardModelRun.objects.exists()


def test_enqueue_false_leaves_the_run_for_the_caller(sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        reward_run_create(project=labelled_project(), enqueue=False)
    assert sent == []
