"""Crash recovery: work in progress heartbeats; work whose worker died is queued again or failed.

A worker may die at any instruction (SIGKILL, OOM, preemption), and kombu's filesystem
transport (``make demo``) has no redelivery at all, so recovery does not rely on the broker:
the process doing the work touches ``heartbeat_at`` every ``MORM_HEARTBEAT_SECONDS`` from a
thread, and ``work_recover`` (a Celery beat task every ``MORM_RECOVER_EVERY_SECONDS``) finds
work still ``running`` whose heartbeat is older than ``MORM_STALE_AFTER_SECONDS``. A training
run is queued again and its next attempt resumes from its last checkpoint; an export is
rebuilt from the start. After ``MORM_MAX_ATTEMPTS`` starts, or when a cancel was asked for,
the work ends (failed or cancelled) with a message instead.

Each attempt is fenced by its ``attempts`` number: a worker that was given up on (a network
partition rather than a death) can no longer write its heartbeat or its outcome.
"""

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.db.models import Model, Q, QuerySet
from django.utils import timezone

from ..models import RunStatus, Snapshot, SnapshotStatus, TrainingRun
from ..models.runs import FINISHED
from .dispatch import RUN_TASKS, round_check_enqueue, run_enqueue, snapshot_enqueue
from .webhooks import run_finished_emit, webhook_deliveries_recover

logger = logging.getLogger(__name__)


def _stale_before() -> datetime:
    return timezone.now() - timedelta(seconds=settings.MORM_STALE_AFTER_SECONDS)


def _stale() -> Q:
    # No heartbeat at all: running since before heartbeats existed.
    return Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=_stale_before())


def is_stale(work: TrainingRun | Snapshot) -> bool:
    """Whether running ``work`` has lost its worker (no heartbeat for MORM_STALE_AFTER_SECONDS)."""
    return work.heartbeat_at is None or work.heartbeat_at < _stale_before()


def lost_message(work: TrainingRun | Snapshot) -> str:
    """Why ``work`` stopped, for its ``error``."""
    since = f"since {work.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC" if work.heartbeat_at else "at all"
    return f"Its worker stopped (no heartbeat {since})"


@contextmanager
def heartbeat(attempt: QuerySet) -> Iterator[None]:
    """Touch ``heartbeat_at`` of ``attempt`` (the row, filtered to the running attempt) every
    MORM_HEARTBEAT_SECONDS from a thread while the body runs.

    A thread, not the training loop: loading a model or one long step must not look like a
    death. Skipped inside an open transaction (tests, ``train_rm --wait`` inside one): no other
    connection sees the row before commit, so there is nobody to tell.
    """
    if connection.in_atomic_block:
        yield
        return
    stop = threading.Event()
    thread = threading.Thread(target=_beat, args=(attempt, stop), name="morm-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _beat(attempt: QuerySet, stop: threading.Event) -> None:
    try:
        while not stop.wait(settings.MORM_HEARTBEAT_SECONDS):
            try:
                attempt.update(heartbeat_at=timezone.now())
            except DatabaseError:
                # The database may be back by the next beat; a few missed beats are what
                # MORM_STALE_AFTER_SECONDS allows for.
                logger.warning("heartbeat of %s failed", attempt.model.__name__, exc_info=True)
                close_old_connections()
    finally:
        connection.close()  # this thread's own connection


def work_recover() -> dict[str, int]:
    """Queue again, fail or cancel every run and export whose worker stopped, and send again the webhook
    deliveries a worker lost; counts by kind.

    Idempotent and safe to run from several processes at once (each row is re-checked under
    its lock). Exports go first: a run that was building its own snapshot rebuilds it.
    """
    counts = {"snapshots": _recover_all(Snapshot, SnapshotStatus.RUNNING, _recover_snapshot)}
    for model in RUN_TASKS:
        counts[model.metric_field + "s"] = _recover_all(model, RunStatus.RUNNING, _recover_run)
    counts["webhook_deliveries"] = webhook_deliveries_recover()
    return counts


def _recover_all(model: type[Model], running: str, recover) -> int:
    stale = model.objects.filter(_stale(), status=running).values_list("pk", flat=True)
    return sum(recover(model, pk) for pk in stale)


def _locked_if_stale(model: type[Model], pk: int, running: str):
    return model.objects.select_for_update().filter(_stale(), pk=pk, status=running).first()


@transaction.atomic
def _recover_run(model: type[TrainingRun], pk: int) -> bool:
    run = _locked_if_stale(model, pk, RunStatus.RUNNING)
    if run is None:
        return False
    lost = lost_message(run)
    if run.cancel_requested:
        _end(run, RunStatus.CANCELLED, f"{lost}; cancelled as asked.")
    elif run.attempts >= settings.MORM_MAX_ATTEMPTS:
        _end(run, RunStatus.FAILED, f"{lost}, on each of its {run.attempts} attempts; not started again.")
    else:
        logger.warning("%s: %s; queued again to resume (attempt %d next)", run, lost, run.attempts + 1)
        _requeue(run, RunStatus.QUEUED)
        run_enqueue(run)
        # A run's own snapshot (of the latest labels) is built by the run: its next attempt rebuilds it.
        Snapshot.objects.filter(pk=getattr(run, "snapshot_id", None), status=SnapshotStatus.RUNNING).update(
            status=SnapshotStatus.QUEUED, judgments_read=0
        )
    return True


@transaction.atomic
def _recover_snapshot(model: type[Snapshot], pk: int) -> bool:
    snapshot = _locked_if_stale(model, pk, SnapshotStatus.RUNNING)
    if snapshot is None or snapshot.reward_runs.exclude(status__in=FINISHED).exists():
        return False  # the snapshot of a run's latest labels is rebuilt by the run (above)
    lost = lost_message(snapshot)
    if snapshot.attempts >= settings.MORM_MAX_ATTEMPTS:
        _end(snapshot, SnapshotStatus.FAILED, f"{lost}, on each of its {snapshot.attempts} attempts; create it again.")
    else:
        logger.warning("%s: %s; queued again (attempt %d next)", snapshot, lost, snapshot.attempts + 1)
        _requeue(snapshot, SnapshotStatus.QUEUED)
        snapshot_enqueue(snapshot)
    return True


def _end(work: TrainingRun | Snapshot, status: str, error: str) -> None:
    work.status, work.error, work.finished_at = status, error, timezone.now()
    work.save(update_fields=["status", "error", "finished_at"])
    logger.warning("%s: %s", work, error)
    if isinstance(work, TrainingRun):
        run_finished_emit(work)
        round_check_enqueue(work)


def _requeue(work: TrainingRun | Snapshot, queued: str) -> None:
    type(work).objects.filter(pk=work.pk).update(status=queued)
