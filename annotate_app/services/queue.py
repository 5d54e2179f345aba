"""The annotation queue: handing out leases of annotation tasks, and the counters that keep every step O(1).

Rules (DESIGN.md, Domain): a comparison gets at most ``overlap_k`` submitted
annotations; an annotator never gets the same comparison twice; a slot is held by at
most one lease. Gold items sit outside the slot rules: every annotator may get each one
once, drawn at the project's ``gold_rate`` while ordinary comparisons remain for them.

Invariants, true at every commit (``tests/annotate_app/services/test_queue.py`` checks
them against a recount):

- ``Comparison.slots_held`` = its tasks that are ``submitted`` or ``leased``. A lease
  past its expiry keeps its slot until it is reclaimed (its task becomes ``expired``);
  ``submitted_count`` = its submitted tasks; ``is_full`` = slots_held >= overlap_k.
- ``Project.open_count`` = ordinary (non-gold) comparisons that are not full;
  ``complete_count`` = ordinary comparisons with submitted_count >= overlap_k.
- ``AnnotatorQueue.finished_open`` = ordinary comparisons not full that the annotator
  submitted or skipped; ``submitted`` = their submitted tasks; ``cursor`` >= the id of
  every ordinary comparison they were handed.

So the next lease is the first row of a partial index (open ordinary comparisons of the
project, by id) above the annotator's cursor, and progress is two maintained numbers.

Lock order in every transaction that changes a task: the comparison row, then the
AnnotatorQueue rows it touches (ascending annotator id, in one statement), then the
project row. One order means no deadlock on Postgres; on SQLite every transaction is
``BEGIN IMMEDIATE`` (settings), which serializes them. Candidates are taken with
``FOR UPDATE SKIP LOCKED``: annotators asking at once take different comparisons instead
of queueing on one row, and Postgres re-checks ``is_full`` on the row it locked.
"""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Subquery
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan
from django.db.models.functions import Greatest
from django.utils import timezone

from ..models import AnnotatorQueue, Comparison, Project, Task, TaskStatus

FINISHED = (TaskStatus.SUBMITTED, TaskStatus.SKIPPED)
# Expired leases given back per call to task_next_for. Each call makes at most one lease,
# so reclaiming more than one per call keeps up with any rate of expiry.
RECLAIM_PER_CALL = 4


def task_next_for(*, project: Project, user: AbstractBaseUser) -> Task | None:
    """The task the user should label now: their open lease, else a new lease, else None.

    First gives back a few expired leases of the project (each in its own transaction),
    then renews the user's own expired lease if nobody took its slot, then leases the
    first open comparison above the user's cursor (or, once they reached the end, one
    that reopened below it).
    """
    now = timezone.now()
    _reclaim_expired(project, now)
    with transaction.atomic():
        own = (
            Task.objects.filter(project=project, annotator=user, status=TaskStatus.LEASED)
            .select_related("comparison", "project")  # what the page and the API show of it
            .order_by("leased_at", "id")
            .first()
        )
        if own is not None and own.expires_at <= now:
            own = _renew(own, now)
        if own is not None:
            return own
        queue = _queue_of(project, user)
        if queue.open_count <= queue.finished_open:
            return None  # every open comparison is one they finished: nothing to walk
        candidate = _open_candidate(project, user, above=queue.cursor) or _open_candidate(project, user, above=0)
        if candidate is None:
            return None
        if project.gold_rate and random.random() < project.gold_rate:
            if (gold := _gold_candidate(project, user)) is not None:
                return _lease(gold, project, user, now)
        return _lease(candidate, project, user, now)


def _queue_of(project: Project, user: AbstractBaseUser) -> AnnotatorQueue:
    """The user's queue row (made on their first request), with the project's open count."""
    queue = (
        AnnotatorQueue.objects.filter(project=project, annotator=user)
        .annotate(open_count=F("project__open_count"))
        .first()
    )
    if queue is None:
        AnnotatorQueue.objects.get_or_create(project=project, annotator=user)
        return _queue_of(project, user)
    return queue


def _open_candidate(project: Project, user: AbstractBaseUser, *, above: int) -> Comparison | None:
    """The first open ordinary comparison above ``above`` that the user has not finished, locked.

    Called with the user's cursor first: nothing above it was ever handed to them, so the
    walk stops at the first row. Called with 0 once nothing new is left for them, it
    passes over the open comparisons they finished.

    The condition is written as ``(project_id, id) > (project, above)`` with
    ``project_id <= project``, ordered by both, so that Postgres seeks straight to the spot
    in the ``comparison_open_queue`` index. With ``project_id = X AND id > N ORDER BY id``
    its planner preferred the primary key and walked every lower row of every project
    (measured by bench/queue_scale.py: see bench/RESULTS.md).
    """
    finished_by_user = Task.objects.filter(comparison=OuterRef("pk"), annotator=user, status__in=FINISHED)
    return (
        Comparison.objects.filter(
            TupleGreaterThan(Tuple(F("project_id"), F("id")), (project.pk, above)),
            project_id__lte=project.pk,
            is_full=False,
            is_gold=False,
        )
        .exclude(Exists(finished_by_user))
        .annotate(own_task_id=_own_task_id(user))
        .order_by("project_id", "id")
        .select_for_update(skip_locked=True, of=("self",))
        .first()
    )


def _gold_candidate(project: Project, user: AbstractBaseUser) -> Comparison | None:
    done = Task.objects.filter(comparison=OuterRef("pk"), annotator=user, status__in=FINISHED)
    gold = Comparison.objects.filter(project=project, is_gold=True).exclude(Exists(done))
    gold = gold.annotate(own_task_id=_own_task_id(user))
    return gold.order_by("?").select_for_update(skip_locked=True, of=("self",)).first()


def _own_task_id(user: AbstractBaseUser) -> Subquery:
    """The user's task on the comparison, if any (an expired lease, given how candidates are chosen)."""
    return Subquery(Task.objects.filter(comparison=OuterRef("pk"), annotator=user).values("pk")[:1])


def _renew(task: Task, now: datetime) -> Task | None:
    """Extend the user's own lease that ran out, unless it was reclaimed meanwhile."""
    Comparison.objects.select_for_update().filter(pk=task.comparison_id).first()
    task = Task.objects.select_for_update().get(pk=task.pk)
    if task.status != TaskStatus.LEASED:
        return None
    task.leased_at = now
    task.expires_at = now + timedelta(minutes=task.project.lease_minutes)
    task.save(update_fields=["leased_at", "expires_at"])
    return task


def _lease(comparison: Comparison, project: Project, user: AbstractBaseUser, now: datetime) -> Task:
    """Lease the locked candidate to the user: a new task, or their expired one renewed."""
    expires_at = now + timedelta(minutes=project.lease_minutes)
    if comparison.own_task_id is None:
        task = Task.objects.create(
            project=project,
            comparison=comparison,
            annotator=user,
            shown_swapped=project.shuffle_sides and random.random() < 0.5,
            leased_at=now,
            expires_at=expires_at,
        )
    else:
        # Their lease on this comparison expired and was reclaimed: renew it in place,
        # keeping the side order they may already have seen.
        task = Task.objects.get(pk=comparison.own_task_id)
        task.status = TaskStatus.LEASED
        task.leased_at = now
        task.expires_at = expires_at
        task.save(update_fields=["status", "leased_at", "expires_at"])
    counts_update(comparison=comparison, project=project, actor_id=user.pk, held=1)
    return task


def _reclaim_expired(project: Project, now: datetime) -> None:
    """Give back the slots of a few expired leases of the project, oldest first."""
    comparison_ids = list(
        Task.objects.filter(project=project, status=TaskStatus.LEASED, expires_at__lte=now)
        .order_by("expires_at")
        .values_list("comparison_id", flat=True)[:RECLAIM_PER_CALL]
    )
    for comparison_id in sorted(set(comparison_ids)):
        with transaction.atomic():
            comparison = Comparison.objects.select_for_update(skip_locked=True).filter(pk=comparison_id).first()
            if comparison is None:
                continue  # someone is working on it; a later call gets it
            expired = Task.objects.select_for_update().filter(
                comparison=comparison, status=TaskStatus.LEASED, expires_at__lte=now
            )
            for task in expired:
                _expire(task, comparison, project)


def leases_release(*, project: Project, user: AbstractBaseUser) -> int:
    """End every lease the user holds in the project now (they left it); returns how many.

    Each task becomes ``expired`` and gives its slot back, as if its lease had run out, so
    the counters stay exact and the comparison goes to someone else. Waits for the row
    locks (no SKIP LOCKED): a lease must not survive because its comparison was busy.
    """
    comparison_ids = Task.objects.filter(project=project, annotator=user, status=TaskStatus.LEASED).values_list(
        "comparison_id", flat=True
    )
    released = 0
    for comparison_id in sorted(set(comparison_ids)):
        with transaction.atomic():
            comparison = Comparison.objects.select_for_update().get(pk=comparison_id)
            task = Task.objects.select_for_update().filter(
                comparison=comparison, annotator=user, status=TaskStatus.LEASED
            ).first()
            if task is not None:
                _expire(task, comparison, project)
                released += 1
    return released


def _expire(task: Task, comparison: Comparison, project: Project) -> None:
    """Turn a lease into an expired task and free its slot (inside the comparison's row lock)."""
    task.status = TaskStatus.EXPIRED
    task.save(update_fields=["status"])
    counts_update(comparison=comparison, project=project, actor_id=task.annotator_id, held=-1)


@dataclass(frozen=True)
class _Standing:
    open: int
    complete: int


def _standing(comparison: Comparison, overlap_k: int) -> _Standing:
    ordinary = not comparison.is_gold
    return _Standing(
        open=int(ordinary and not comparison.is_full),
        complete=int(ordinary and comparison.submitted_count >= overlap_k),
    )


def counts_update(
    *,
    comparison: Comparison,
    project: Project,
    actor_id: int | None = None,
    held: int = 0,
    submitted: int = 0,
    finishes: bool = False,
    is_gold: bool | None = None,
) -> None:
    """Apply one change of a comparison's tasks (or of its gold flag) to every counter.

    Call inside a transaction holding the comparison row lock, with the row as locked,
    and with the actor's task not yet or already finished, whichever: the actor is
    counted through ``finishes`` only. ``held``/``submitted`` change the slots held and
    the submitted annotations; ``finishes`` says the actor submitted or skipped it;
    ``is_gold`` moves the comparison in or out of the ordinary pool.
    """
    k = project.overlap_k
    before = _standing(comparison, k)
    comparison.slots_held += held
    comparison.submitted_count += submitted
    comparison.is_full = comparison.slots_held >= k
    if is_gold is not None:
        comparison.is_gold = is_gold
    comparison.save(update_fields=["slots_held", "submitted_count", "is_full", "is_gold"])
    after = _standing(comparison, k)
    open_step, complete_step = after.open - before.open, after.complete - before.complete

    others = []
    if open_step:
        others = list(
            Task.objects.filter(comparison=comparison, status__in=FINISHED)
            .exclude(annotator_id=actor_id)
            .values_list("annotator_id", flat=True)
        )
    if others:
        # Several queue rows change: lock them in one order first (see the lock order above).
        touched = sorted(set(others) | ({actor_id} if actor_id is not None else set()))
        list(AnnotatorQueue.objects.select_for_update().filter(project=project, annotator_id__in=touched)
             .order_by("annotator_id"))
        AnnotatorQueue.objects.filter(project=project, annotator_id__in=others).update(
            finished_open=F("finished_open") + open_step
        )
    if actor_id is not None:
        _actor_update(comparison, project, actor_id, submitted=submitted, finished_open=int(finishes) * after.open)
    if open_step or complete_step:
        Project.objects.filter(pk=project.pk).update(
            open_count=F("open_count") + open_step, complete_count=F("complete_count") + complete_step
        )


def _actor_update(comparison: Comparison, project: Project, actor_id: int, *, submitted: int,
                  finished_open: int) -> None:
    changes = {}
    if submitted:
        changes["submitted"] = F("submitted") + submitted
    if finished_open:
        changes["finished_open"] = F("finished_open") + finished_open
    if not comparison.is_gold:
        changes["cursor"] = Greatest(F("cursor"), comparison.pk)
    if changes:
        AnnotatorQueue.objects.filter(project=project, annotator_id=actor_id).update(**changes)


def comparisons_added(*, project: Project, created: int, labelled: int) -> None:
    """Count newly imported comparisons (all ordinary and open) and imported label sets."""
    Project.objects.filter(pk=project.pk).update(
        comparison_count=F("comparison_count") + created,
        open_count=F("open_count") + created,
        imported_label_sets=F("imported_label_sets") + labelled,
    )
