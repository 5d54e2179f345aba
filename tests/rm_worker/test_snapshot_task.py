"""The Celery task that builds queued snapshots."""

import pytest

from annotate_app.models import SnapshotStatus
from annotate_app.services.snapshots import snapshot_create
from rm_worker.tasks import build_snapshot
from tests.factories import annotate, make_project, member

pytestmark = pytest.mark.django_db


def test_build_snapshot_task_builds_a_queued_snapshot_once():
    project = make_project(comparisons=1, overlap_k=1)
    annotate(project, member(project), {"helpful": 2})
    snapshot = snapshot_create(project=project, format="jsonl", background=True)
    assert snapshot.status == SnapshotStatus.QUEUED
    assert build_snapshot.apply(args=[snapshot.pk]).get() == SnapshotStatus.READY
    snapshot.refresh_from_db()
    sha = snapshot.sha256
    assert build_snapshot.apply(args=[snapshot.pk]).get() == SnapshotStatus.READY
    snapshot.refresh_from_db()
    assert snapshot.sha256 == sha and snapshot.judgments_read == 3


def test_a_failed_build_is_recorded_on_the_snapshot(settings, tmp_path):
    project = make_project(comparisons=1, overlap_k=1)
    annotate(project, member(project), {"helpful": 2})
    snapshot = snapshot_create(project=project, format="csv", background=True)
    settings.MEDIA_ROOT = tmp_path / "a-file"  # the snapshot folder cannot be made under a file
    settings.MEDIA_ROOT.write_text("")
    with pytest.raises(OSError):
        build_snapshot.apply(args=[snapshot.pk], throw=True)
    snapshot.refresh_from_db()
    assert snapshot.status == SnapshotStatus.FAILED and snapshot.error.startswith("NotADirectoryError")
